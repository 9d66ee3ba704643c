//! Activation functions: the sigmoid neuron of chapter 1, σ(z) = 1 / (1 + e^(−z)) (eq. 3),
//! chapter 3's tanh and chapter 6's rectified linear unit for the hidden layers, and the two
//! output layers of chapter 3: sigmoid neurons, or a softmax layer (eq. 78).
//!
//! Mirrors `sigmoid` and `sigmoid_prime` of `network.py`. Every derivative here can be written
//! in terms of the neuron's output a = f(z) — σ′ = a(1 − a), tanh′ = 1 − a², and ReLU′ is 1
//! where a > 0, else 0 — so the fast backward passes compute f′ from the stored activations
//! ([`Activation::prime_from_output`]) instead of keeping every weighted input z; it is the same
//! number, one fewer matrix per layer. The reference backprop in [`crate::model::network`] keeps the
//! z's, as the book does, and uses [`Activation::prime`].

use ndarray::{ArrayView1, ArrayViewMut1, ArrayViewMut2};
use serde::{Deserialize, Serialize};

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

/// The activation function of the hidden layers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// σ(z), the book's neuron from chapter 1 on.
    #[default]
    Sigmoid,
    /// tanh(z) = 2σ(2z) − 1, ch. 3's "other models of artificial neuron"; outputs in (−1, 1).
    Tanh,
    /// max(0, z), the rectified linear unit of ch. 3 and ch. 6.
    Relu,
}

impl Activation {
    /// f(z).
    #[inline]
    pub fn apply<F: Real>(self, z: F) -> F {
        match self {
            Activation::Sigmoid => sigmoid(z),
            Activation::Tanh => z.tanh(),
            Activation::Relu => z.max(F::zero()),
        }
    }

    /// f′(z). ReLU's derivative at the kink z = 0 is taken as 0.
    #[inline]
    pub fn prime<F: Real>(self, z: F) -> F {
        match self {
            Activation::Sigmoid => sigmoid_prime(z),
            Activation::Tanh => {
                let t = z.tanh();
                F::one() - t * t
            }
            Activation::Relu => relu_step(z),
        }
    }

    /// f′(z) written in terms of the output a = f(z).
    #[inline]
    pub fn prime_from_output<F: Real>(self, a: F) -> F {
        match self {
            Activation::Sigmoid => sigmoid_prime_from_output(a),
            Activation::Tanh => F::one() - a * a,
            Activation::Relu => relu_step(a),
        }
    }

    /// δ ← δ ⊙ f′, with f′ from the outputs `a` (BP2's Hadamard product). The `match` is
    /// outside the loop, so each arm is a plain loop the compiler vectorises.
    #[inline]
    pub fn scale_by_prime<F: Real>(self, delta: &mut [F], a: &[F]) {
        let pairs = delta.iter_mut().zip(a);
        match self {
            Activation::Sigmoid => pairs.for_each(|(d, &a)| *d *= sigmoid_prime_from_output(a)),
            Activation::Tanh => pairs.for_each(|(d, &a)| *d *= F::one() - a * a),
            Activation::Relu => pairs.for_each(|(d, &a)| *d *= relu_step(a)),
        }
    }

    /// Sets every element of `z` to f(z).
    #[inline]
    pub fn apply_slice<F: Real>(self, z: &mut [F]) {
        match self {
            Activation::Sigmoid => z.iter_mut().for_each(|z| *z = sigmoid(*z)),
            Activation::Tanh => z.iter_mut().for_each(|z| *z = z.tanh()),
            Activation::Relu => z.iter_mut().for_each(|z| *z = z.max(F::zero())),
        }
    }

    /// Sets every element of `z` to f(z + b): the bias and the activation in one pass.
    /// The `match` is outside the loop, so each arm is a plain loop the compiler vectorises,
    /// except the sigmoid's: it calls the C library's e^x per value, as the fully-connected
    /// programs always have (their runs are pinned bit for bit, `tests/repeatable.rs`).
    #[inline]
    pub fn apply_biased<F: Real>(self, z: &mut [F], b: F) {
        match self {
            Activation::Sigmoid => z.iter_mut().for_each(|z| *z = sigmoid(*z + b)),
            Activation::Tanh => z.iter_mut().for_each(|z| *z = (*z + b).tanh()),
            Activation::Relu => z.iter_mut().for_each(|z| *z = (*z + b).max(F::zero())),
        }
    }

    /// [`Activation::apply_biased`] with the sigmoid's e^x computed in vectorised code
    /// ([`crate::real::vmath`], within 1.25 ε of the exact e^x): what chapter 6's layers
    /// use, where the sigmoid after a convolution costs as much as its products otherwise.
    #[inline]
    pub fn apply_biased_vectorised<F: Real>(self, z: &mut [F], b: F) {
        match self {
            Activation::Sigmoid => F::sigmoid_biased(z, b),
            _ => self.apply_biased(z, b),
        }
    }

    /// A layer's outputs from its weighted inputs without the bias, in place:
    /// Z ← f(Z + b), with `z` `(n_out, m)`, one example per column, and `b` `(n_out,)`.
    /// `vectorised` picks [`Activation::apply_biased_vectorised`] for each contiguous row (a
    /// row with gaps, which no caller passes, takes the scalar [`Activation::apply`]).
    pub fn apply_layer<F: Real>(self, mut z: ArrayViewMut2<F>, b: ArrayView1<F>, vectorised: bool) {
        for (mut row, &b) in z.rows_mut().into_iter().zip(b) {
            match row.as_slice_mut() {
                Some(row) if vectorised => self.apply_biased_vectorised(row, b),
                Some(row) => self.apply_biased(row, b),
                None => row.mapv_inplace(|z| self.apply(z + b)),
            }
        }
    }

    /// The name used on the command line and in model files.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
        }
    }
}

/// 1 for x > 0, else 0: ReLU′ from its input or its output.
#[inline]
fn relu_step<F: Real>(x: F) -> F {
    if x > F::zero() {
        F::one()
    } else {
        F::zero()
    }
}

/// The output layer, which the cost decides ([`crate::model::cost::Cost::output`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    /// Sigmoid neurons, each output in (0, 1) on its own.
    Sigmoid,
    /// Softmax, a_j = e^(z_j) / Σ_k e^(z_k) (eq. 78): the outputs are positive and sum to 1, a
    /// probability distribution over the classes.
    Softmax,
}

impl Output {
    /// Turns one example's weighted inputs `z` into the layer's outputs, in place.
    pub fn apply<F: Real>(self, mut z: ArrayViewMut1<F>) {
        match self {
            Output::Sigmoid => z.mapv_inplace(sigmoid),
            Output::Softmax => softmax(z),
        }
    }

    /// As [`Activation::apply_layer`]: Z ← output(Z + b), `z` `(n_out, m)` with one example
    /// per column; softmax normalises each column.
    pub fn apply_layer<F: Real>(self, mut z: ArrayViewMut2<F>, b: ArrayView1<F>) {
        match self {
            Output::Sigmoid => Activation::Sigmoid.apply_layer(z, b, false),
            Output::Softmax => {
                for (mut row, &b) in z.rows_mut().into_iter().zip(b) {
                    row += b;
                }
                for column in z.columns_mut() {
                    softmax(column);
                }
            }
        }
    }

    /// The name used in model files.
    pub fn name(self) -> &'static str {
        match self {
            Output::Sigmoid => "sigmoid",
            Output::Softmax => "softmax",
        }
    }
}

/// Softmax of `z` in place (eq. 78). The largest z is subtracted from every z first, which
/// leaves the result unchanged (the factor e^(−max) cancels) but keeps e^z from overflowing.
fn softmax<F: Real>(mut z: ArrayViewMut1<F>) {
    let max = z.iter().fold(F::neg_infinity(), |m, &v| m.max(v));
    z.mapv_inplace(|v| (v - max).exp());
    let sum = z.sum();
    z.mapv_inplace(|v| v / sum);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn derivatives_match_finite_differences() {
        for act in [Activation::Sigmoid, Activation::Tanh, Activation::Relu] {
            for &z in &[-6.0f64, -1.0, -0.3, 0.5, 3.0] {
                let h = 1e-6;
                let numeric = (act.apply(z + h) - act.apply(z - h)) / (2.0 * h);
                assert!((numeric - act.prime(z)).abs() < 1e-9, "{act:?} at {z}");
                let from_output = act.prime_from_output(act.apply(z));
                assert!((from_output - act.prime(z)).abs() < 1e-15, "{act:?} at {z}");
            }
        }
    }

    #[test]
    fn biased_application_is_f_of_z_plus_b() {
        for act in [Activation::Sigmoid, Activation::Tanh, Activation::Relu] {
            let mut z = [-2.0f64, -0.25, 0.0, 0.75, 4.0];
            let want: Vec<f64> = z.iter().map(|&z| act.apply(z + 0.5)).collect();
            act.apply_biased(&mut z, 0.5);
            assert_eq!(z.to_vec(), want, "{act:?}");
        }
    }

    #[test]
    fn softmax_is_a_distribution_and_survives_large_inputs() {
        let mut z = array![1.0f64, 2.0, 3.0];
        Output::Softmax.apply(z.view_mut());
        let e = [1f64.exp(), 2f64.exp(), 3f64.exp()];
        let sum: f64 = e.iter().sum();
        for (a, e) in z.iter().zip(e) {
            assert!((a - e / sum).abs() < 1e-15);
        }
        let mut big = array![1000.0f64, 1000.0, -1000.0];
        Output::Softmax.apply(big.view_mut());
        assert_eq!(big.to_vec(), vec![0.5, 0.5, 0.0]);
    }
}
