//! The sigmoid neuron of chapter 1: σ(z) = 1 / (1 + e^(−z)) (eq. 3) and its derivative.
//!
//! Mirrors `sigmoid` and `sigmoid_prime` of `network.py`. Because σ′(z) = σ(z)(1 − σ(z)), the
//! backward pass computes σ′ from the stored activation `a = σ(z)` ([`sigmoid_prime_from_output`])
//! instead of keeping every weighted input `z`; it is the same number, one fewer matrix per
//! layer. The book's later activations (tanh, ReLU, softmax) are not here yet.

/// σ(z), eq. (3).
#[inline]
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// σ′(z) = σ(z)(1 − σ(z)), as `network.py`'s `sigmoid_prime`.
#[inline]
pub fn sigmoid_prime(z: f64) -> f64 {
    let s = sigmoid(z);
    s * (1.0 - s)
}

/// σ′(z) written in terms of the output a = σ(z).
#[inline]
pub fn sigmoid_prime_from_output(a: f64) -> f64 {
    a * (1.0 - a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivative_matches_finite_difference() {
        for &z in &[-6.0, -1.0, 0.0, 0.5, 3.0] {
            let h = 1e-6;
            let numeric = (sigmoid(z + h) - sigmoid(z - h)) / (2.0 * h);
            assert!((numeric - sigmoid_prime(z)).abs() < 1e-9);
            assert!((sigmoid_prime_from_output(sigmoid(z)) - sigmoid_prime(z)).abs() < 1e-15);
        }
    }
}
