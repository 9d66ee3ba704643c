//! Samplers: what the next trial of a study tries.
//!
//! A [`Sampler`] is asked for the parameters of trial `number` with every trial of the study so
//! far (the store asks inside the transaction that creates the trial, so two workers never get
//! the same number). A sampler keeps no state between calls: what it proposes is a function
//! of the space, the trial number, the trials and its own seed, so a study re-run or shared
//! by many workers proposes the same trials.
//!
//! - [`grid::Grid`]: every combination of choices and of ranges split into K points, trial
//!   `number` taking point `number` (Optuna's `GridSampler`, in a fixed order).
//! - [`random::Random`]: each parameter drawn independently, on a log scale for log kinds
//!   (Optuna's `RandomSampler`; chapter 3's "randomised search").
//! - [`book::Book`]: chapter 3's recipe — η by factors of ten up to its threshold, half of
//!   that; then λ; then the mini-batch size.
//! - [`tpe::Tpe`]: the Tree-structured Parzen Estimator (Bergstra et al. 2011), Optuna's
//!   default sampler: random trials first, then values more likely among the best trials
//!   than among the rest.

pub mod book;
pub mod grid;
pub mod random;
pub mod tpe;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::space::{Params, Space};
use super::study::Trial;

/// Proposes the parameters of a study's trials.
pub trait Sampler {
    /// The parameters of trial `number` of a study over `space`, given every trial created so
    /// far (`trials`, in any state; a sampler reads only those it needs). The same inputs
    /// always give the same parameters. `space` is a checked one ([`Space::parse`] or
    /// [`Space::check`]): samplers draw from its ranges as they are.
    fn sample(&self, space: &Space, number: u32, trials: &[Trial]) -> Result<Params, SampleError>;

    /// How many trials the sampler can propose over `space` in all, or `None` for no limit.
    /// A grid is exhausted after its last point; the others never are. Fails early for a
    /// space the sampler cannot search (a continuous range on a grid without K points).
    fn max_trials(&self, space: &Space) -> Result<Option<u64>, SampleError> {
        let _ = space;
        Ok(None)
    }
}

/// A space a sampler cannot search, or a trial past what it can propose.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SampleError {
    #[error(
        "grid search cannot enumerate the continuous range {param}; use the sampler grid:K to \
         split it into K points"
    )]
    ContinuousWithoutPoints { param: String },
    #[error("grid:K must have K of at least 2 (the two ends of each range), got {0}")]
    TooFewGridPoints(usize),
    #[error("grid:K takes at most {max} points a range, got {0}", max = grid::MAX_AXIS)]
    TooManyGridPoints(usize),
    #[error(
        "{param} has {len} whole numbers, more than the {max} a grid axis takes; use the \
         sampler grid:K to split it into K points",
        max = grid::MAX_AXIS
    )]
    AxisTooLong { param: String, len: i128 },
    #[error("the grid has more points than can be counted (over 2^64)")]
    GridTooLarge,
    #[error(
        "the grid has {size} points, so there is no trial {number} (trials are numbered from 0)"
    )]
    GridExhausted { number: u32, size: u64 },
    #[error("{param} cannot be searched by TPE: {reason}")]
    Tpe { param: String, reason: String },
    /// A sequential strategy needs results first: ask again once running trials finish.
    #[error("the next trial waits for the results of the running ones")]
    Waiting,
    #[error("the book's recipe is done after {trials} trials")]
    RecipeDone { trials: u64 },
}

/// A sampler as a study's definition names it ([`crate::tune::study::StudySpec::sampler`]):
/// `random`, `tpe`, `grid`, `grid:K` (ranges split into K points) or `book` (chapter 3's recipe).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamplerSpec {
    Random,
    Tpe,
    Grid { points: Option<usize> },
    Book,
}

/// A sampler name that is not one of [`SamplerSpec`]'s.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown sampler {0:?}; use random, tpe, grid, grid:K or book")]
pub struct UnknownSampler(pub String);

impl std::str::FromStr for SamplerSpec {
    type Err = UnknownSampler;

    fn from_str(text: &str) -> Result<SamplerSpec, UnknownSampler> {
        let unknown = || UnknownSampler(text.to_string());
        match text.split_once(':') {
            None => match text {
                "random" => Ok(SamplerSpec::Random),
                "tpe" => Ok(SamplerSpec::Tpe),
                "grid" => Ok(SamplerSpec::Grid { points: None }),
                "book" => Ok(SamplerSpec::Book),
                _ => Err(unknown()),
            },
            Some(("grid", k)) => {
                let points = k.parse().map_err(|_| unknown())?;
                Ok(SamplerSpec::Grid {
                    points: Some(points),
                })
            }
            Some(_) => Err(unknown()),
        }
    }
}

impl std::fmt::Display for SamplerSpec {
    /// The name [`SamplerSpec::from_str`](std::str::FromStr::from_str) reads back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SamplerSpec::Random => f.write_str("random"),
            SamplerSpec::Tpe => f.write_str("tpe"),
            SamplerSpec::Grid { points: None } => f.write_str("grid"),
            SamplerSpec::Grid { points: Some(k) } => write!(f, "grid:{k}"),
            SamplerSpec::Book => f.write_str("book"),
        }
    }
}

impl SamplerSpec {
    /// The sampler, seeded with the study's `seed` (the grid has no randomness).
    pub fn build(self, seed: u64) -> Box<dyn Sampler> {
        match self {
            SamplerSpec::Random => Box::new(random::Random::new(seed)),
            SamplerSpec::Tpe => Box::new(tpe::Tpe::new(seed)),
            SamplerSpec::Grid { points } => Box::new(grid::Grid::new(points)),
            SamplerSpec::Book => Box::new(book::Book),
        }
    }
}

/// The random-number generator of trial `number`: a fresh `StdRng` seeded from the study's
/// `seed` and the trial number, so each trial's draws are independent of the others' and of
/// the order in which workers asked for them.
///
/// The two numbers are mixed by SplitMix64's finaliser (Steele et al. 2014) rather than added,
/// so that seed s, trial k+1 is not seed s+1, trial k.
pub fn trial_rng(seed: u64, number: u32) -> StdRng {
    StdRng::seed_from_u64(mix(seed ^ mix(u64::from(number))))
}

/// SplitMix64's output function: a bijection on u64 that spreads every input bit over the
/// whole word.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampler_names_read_back() {
        for text in ["random", "tpe", "grid", "grid:5"] {
            let spec: Result<SamplerSpec, _> = text.parse();
            assert_eq!(spec.map(|s| s.to_string()), Ok(text.to_string()));
        }
        assert_eq!("grid:5".parse(), Ok(SamplerSpec::Grid { points: Some(5) }));
        for bad in ["gp", "grid:", "grid:x", "tpe:3", ""] {
            assert_eq!(
                bad.parse::<SamplerSpec>(),
                Err(UnknownSampler(bad.to_string()))
            );
        }
    }

    #[test]
    fn trial_rngs_differ_by_seed_and_number() {
        use rand::RngExt;
        let draw = |seed, number| trial_rng(seed, number).random::<u64>();
        assert_eq!(draw(1, 2), draw(1, 2));
        assert_ne!(draw(1, 2), draw(2, 1));
        assert_ne!(draw(1, 2), draw(1, 3));
        assert_ne!(draw(1, 2), draw(2, 2));
    }
}
