//! Weight initialisers of chapters 1 and 3: `network.py`'s N(0, 1) weights and biases
//! (`large_weight_initializer` in `network2.py`) and `default_weight_initializer`'s
//! N(0, 1/n_in) weights, which keep hidden neurons out of saturation (ch. 3, "Weight
//! initialization"). Biases are N(0, 1) in both, as in the book.

use crate::rng::SeededRng;
use ndarray::{Array1, Array2};
use rand::RngExt;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::real::Real;

/// How the weights and biases of a new network are drawn. On the command line
/// (`--weight-init`) they are `large` and `scaled`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Init {
    /// Weights and biases N(0, 1): network2.py's large_weight_initializer (and network.py's
    /// only one).
    #[value(name = "large")]
    StandardNormal,
    /// Weights N(0, 1/n_in), biases N(0, 1): network2.py's default_weight_initializer.
    #[value(name = "scaled")]
    ScaledNormal,
}

impl Init {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Init::StandardNormal => "large",
            Init::ScaledNormal => "scaled",
        }
    }

    /// `network2.py`'s name for this initialiser.
    pub fn book_name(self) -> &'static str {
        match self {
            Init::StandardNormal => "large_weight_initializer",
            Init::ScaledNormal => "default_weight_initializer",
        }
    }

    /// The distribution of a weight, as the book writes it.
    pub fn weight_distribution(self) -> &'static str {
        match self {
            Init::StandardNormal => "N(0, 1)",
            Init::ScaledNormal => "N(0, 1/n_in)",
        }
    }

    /// Weights `(n_out, n_in)` of one layer, row-major. The draw order is the book's: all
    /// biases of the network first, then all weights. Drawn in `f64` and rounded, so an `f32`
    /// network starts from the same weights as an `f64` one with the same seed.
    pub fn layer_weights<F: Real>(
        self,
        n_out: usize,
        n_in: usize,
        rng: &mut SeededRng,
    ) -> Array2<F> {
        let scale = match self {
            Init::StandardNormal => 1.0,
            Init::ScaledNormal => 1.0 / (n_in as f64).sqrt(),
        };
        Array2::from_shape_simple_fn((n_out, n_in), || {
            F::of(scale * rng.sample::<f64, _>(StandardNormal))
        })
    }

    /// Biases `(n_out,)` of one layer, N(0, 1) for every initialiser.
    pub fn layer_biases<F: Real>(self, n_out: usize, rng: &mut SeededRng) -> Array1<F> {
        Array1::from_shape_simple_fn(n_out, || F::of(rng.sample::<f64, _>(StandardNormal)))
    }
}
