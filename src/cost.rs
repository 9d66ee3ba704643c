//! Cost functions of chapters 1 and 3, as `network2.py`'s `QuadraticCost` and
//! `CrossEntropyCost`: each gives the cost of one output `a` against its one-hot target `y`
//! (`fn` in the book, [`Cost::value`] here) and the output error δᴸ (`delta`, eq. BP1).
//!
//! Both assume sigmoid output neurons. The regularisation term of eq. (87) is not part of the
//! cost here; it enters the update as weight decay (see [`crate::network::Network::update`]).
//! Softmax with log-likelihood (ch. 3) is not here yet.

use serde::{Deserialize, Serialize};

use crate::activation::sigmoid_prime_from_output;
use crate::real::Real;

/// Which cost the network is trained on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cost {
    /// C = ½‖y − a‖², eq. (6).
    Quadratic,
    /// C = −Σⱼ [yⱼ ln aⱼ + (1 − yⱼ) ln(1 − aⱼ)], eq. (63).
    CrossEntropy,
}

impl Cost {
    /// The cost of one output `a` against its target `y` (not averaged), summed in `f64`.
    pub fn value<F: Real>(self, a: &[F], y: &[F]) -> f64 {
        let pairs = a.iter().zip(y).map(|(a, y)| (a.as_f64(), y.as_f64()));
        match self {
            Cost::Quadratic => 0.5 * pairs.map(|(a, y)| (a - y) * (a - y)).sum::<f64>(),
            Cost::CrossEntropy => pairs
                .map(|(a, y)| {
                    // network2.py's np.nan_to_num: 0·ln 0 counts as 0.
                    let t = |p: f64, q: f64| if p == 0.0 { 0.0 } else { p * q.ln() };
                    -(t(y, a) + t(1.0 - y, 1.0 - a))
                })
                .sum(),
        }
    }

    /// δᴸ = ∂C/∂zᴸ for one output neuron with activation `a` and target `y` (eq. BP1):
    /// (a − y)σ′(z) for the quadratic cost, a − y for cross-entropy (eq. 66), where the σ′
    /// cancels — the reason the book introduces it.
    #[inline]
    pub fn delta<F: Real>(self, a: F, y: F) -> F {
        match self {
            Cost::Quadratic => (a - y) * sigmoid_prime_from_output(a),
            Cost::CrossEntropy => a - y,
        }
    }
}
