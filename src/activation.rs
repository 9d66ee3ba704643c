//! The sigmoid neuron of chapter 1: σ(z) = 1 / (1 + e^(−z)) (eq. 3) and its derivative.
//!
//! Mirrors `sigmoid` and `sigmoid_prime` of `network.py`. Because σ′(z) = σ(z)(1 − σ(z)), the
//! backward pass computes σ′ from the stored activation `a = σ(z)` ([`sigmoid_prime_from_output`])
//! instead of keeping every weighted input `z`; it is the same number, one fewer matrix per
//! layer. The book's later activations (tanh, ReLU, softmax) are not here yet.

use crate::real::Real;

/// σ(z), eq. (3).
#[inline]
pub fn sigmoid<F: Real>(z: F) -> F {
    F::one() / (F::one() + (-z).exp())
}

/// σ′(z) = σ(z)(1 − σ(z)), as `network.py`'s `sigmoid_prime`.
#[inline]
pub fn sigmoid_prime<F: Real>(z: F) -> F {
    let s = sigmoid(z);
    s * (F::one() - s)
}

/// σ′(z) written in terms of the output a = σ(z).
#[inline]
pub fn sigmoid_prime_from_output<F: Real>(a: F) -> F {
    a * (F::one() - a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivative_matches_finite_difference() {
        for &z in &[-6.0f64, -1.0, 0.0, 0.5, 3.0] {
            let h = 1e-6;
            let numeric = (sigmoid(z + h) - sigmoid(z - h)) / (2.0 * h);
            assert!((numeric - sigmoid_prime(z)).abs() < 1e-9);
            assert!((sigmoid_prime_from_output(sigmoid(z)) - sigmoid_prime(z)).abs() < 1e-15);
        }
    }
}
