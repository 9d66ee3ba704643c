//! Cost functions of chapters 1 and 3, as `network2.py`'s `QuadraticCost` and
//! `CrossEntropyCost`: each gives the cost of one output `a` against its one-hot target `y`
//! (`fn` in the book, [`Cost::value`] here) and the output error δᴸ (`delta`, eq. BP1).
//!
//! The quadratic and cross-entropy costs go with sigmoid output neurons; chapter 3's
//! log-likelihood cost goes with a softmax output layer ([`Cost::output`]), and with it δᴸ is
//! a − y as well (eq. 84). The regularisation term of eq. (87) is not part of the cost here; it
//! enters the update as weight decay (see [`crate::model::network::Network::update`]).

use serde::{Deserialize, Serialize};

use crate::model::activation::{sigmoid_prime_from_output, Output};
use crate::real::Real;

/// Which cost the network is trained on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Cost {
    /// C = ½‖y − a‖², eq. (6); sigmoid output neurons.
    Quadratic,
    /// C = −Σⱼ [yⱼ ln aⱼ + (1 − yⱼ) ln(1 − aⱼ)], eq. (63); sigmoid output neurons.
    CrossEntropy,
    /// C = −ln a_y, eq. (80), on a softmax output layer.
    LogLikelihood,
}

impl Cost {
    /// The output layer this cost is defined on.
    pub fn output(self) -> Output {
        match self {
            Cost::Quadratic | Cost::CrossEntropy => Output::Sigmoid,
            Cost::LogLikelihood => Output::Softmax,
        }
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Cost::Quadratic => "quadratic",
            Cost::CrossEntropy => "cross-entropy",
            Cost::LogLikelihood => "log-likelihood",
        }
    }

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
            // −Σⱼ yⱼ ln aⱼ, which for a one-hot y is −ln a_y.
            Cost::LogLikelihood => pairs
                .filter(|&(_, y)| y != 0.0)
                .map(|(a, y)| -y * a.ln())
                .sum(),
        }
    }

    /// δᴸ = ∂C/∂zᴸ for one output neuron with activation `a` and target `y` (eq. BP1):
    /// (a − y)σ′(z) for the quadratic cost, a − y for cross-entropy (eq. 66), where the σ′
    /// cancels — the reason the book introduces it — and a − y for log-likelihood on softmax
    /// (eq. 84), where the softmax's derivative cancels the same way.
    #[inline]
    pub fn delta<F: Real>(self, a: F, y: F) -> F {
        match self {
            Cost::Quadratic => (a - y) * sigmoid_prime_from_output(a),
            Cost::CrossEntropy | Cost::LogLikelihood => a - y,
        }
    }
}
