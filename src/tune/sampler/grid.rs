//! Grid search: every combination of the parameters' values, each run once.
//!
//! A choice contributes its choices; a range is split into K points (`grid:K`), evenly
//! for `float` and `int` and evenly in the logarithm for `log` and `intlog` (0.01, 0.1, 1, 10
//! for `log:0.01:10` and K = 4). Integer points that round to the same whole number are kept
//! once, and an integer range without K gives every whole number in it. A float range without
//! K has no finite grid and is refused.
//!
//! Trial `number` gets grid point `number`, counted like nested loops with the first parameter
//! outermost. Since the store hands out each trial number once, every point is run exactly
//! once however many workers share the study, and the grid's size caps the study's trials.
//! Optuna's `GridSampler` instead picks a random point not yet run; a fixed order keeps the
//! sampler free of state and makes the order of a grid study readable.

use super::{SampleError, Sampler};
use crate::tune::space::{Kind, Params, Space, Value};
use crate::tune::study::Trial;

/// The most points one axis of a grid may have (`grid:K`, or the whole numbers of an integer
/// range without K). A grid that size is far more trials than a study runs; the cap keeps a
/// mistyped K or range from allocating its axis before anything is trained.
pub const MAX_AXIS: u64 = 100_000;

/// Grid search over a space, ranges split into `points` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    /// K, the number of points of each range; `None` enumerates integer ranges and refuses
    /// float ones.
    pub points: Option<usize>,
}

impl Grid {
    pub fn new(points: Option<usize>) -> Self {
        Grid { points }
    }

    /// Each parameter's values along its axis of the grid, in the space's order.
    pub fn axes(&self, space: &Space) -> Result<Vec<Vec<Value>>, SampleError> {
        if let Some(k) = self.points {
            if k < 2 {
                return Err(SampleError::TooFewGridPoints(k));
            }
            if k as u64 > MAX_AXIS {
                return Err(SampleError::TooManyGridPoints(k));
            }
        }
        space
            .params
            .iter()
            .map(|param| match (&param.kind, self.points) {
                (Kind::Choice { choices }, _) => {
                    Ok(choices.iter().cloned().map(Value::Choice).collect())
                }
                (Kind::Float { lo, hi }, Some(k)) => {
                    Ok(spaced(*lo, *hi, k, false).map(Value::Float).collect())
                }
                (Kind::Log { lo, hi }, Some(k)) => {
                    Ok(spaced(*lo, *hi, k, true).map(Value::Float).collect())
                }
                (Kind::Int { lo, hi } | Kind::IntLog { lo, hi }, Some(k)) => {
                    let mut ints: Vec<i64> = spaced(*lo as f64, *hi as f64, k, param.kind.is_log())
                        .map(|x| (x.round() as i64).clamp(*lo, *hi))
                        .collect();
                    ints.dedup();
                    Ok(ints.into_iter().map(Value::Int).collect())
                }
                (Kind::Int { lo, hi } | Kind::IntLog { lo, hi }, None) => {
                    let len = i128::from(*hi) - i128::from(*lo) + 1;
                    if len > i128::from(MAX_AXIS) {
                        return Err(SampleError::AxisTooLong {
                            param: param.to_string(),
                            len,
                        });
                    }
                    Ok((*lo..=*hi).map(Value::Int).collect())
                }
                (Kind::Float { .. } | Kind::Log { .. }, None) => {
                    Err(SampleError::ContinuousWithoutPoints {
                        param: param.to_string(),
                    })
                }
            })
            .collect()
    }

    /// The number of grid points: the product of the axes' lengths.
    pub fn size(&self, space: &Space) -> Result<u64, SampleError> {
        self.axes(space)?
            .iter()
            .try_fold(1u64, |size, axis| size.checked_mul(axis.len() as u64))
            .ok_or(SampleError::GridTooLarge)
    }
}

/// `k` points from `lo` to `hi`, both included, evenly spaced (in the logarithm if `log`).
/// The ends are exact, not recomputed through `exp(ln x)`.
fn spaced(lo: f64, hi: f64, k: usize, log: bool) -> impl Iterator<Item = f64> {
    let last = k - 1;
    (0..k).map(move |i| {
        let t = i as f64 / last as f64;
        match i {
            0 => lo,
            i if i == last => hi,
            _ if log => (lo.ln() + t * (hi.ln() - lo.ln())).exp(),
            _ => lo + t * (hi - lo),
        }
    })
}

impl Sampler for Grid {
    /// Grid point `number`: its index along each axis are the digits of `number` in the mixed
    /// radix of the axes' lengths, the last parameter's digit changing fastest.
    fn sample(&self, space: &Space, number: u32, _trials: &[Trial]) -> Result<Params, SampleError> {
        let axes = self.axes(space)?;
        let size = self.size(space)?;
        if u64::from(number) >= size {
            return Err(SampleError::GridExhausted { number, size });
        }
        let mut rest = u64::from(number);
        let mut params = Params::new();
        for (param, axis) in space.params.iter().zip(&axes).rev() {
            let len = axis.len() as u64;
            let index = (rest % len) as usize;
            rest /= len;
            params.insert(param.name.clone(), axis[index].clone());
        }
        Ok(params)
    }

    fn max_trials(&self, space: &Space) -> Result<Option<u64>, SampleError> {
        self.size(space).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(args: &[&str]) -> Space {
        match Space::parse(args) {
            Ok(space) => space,
            Err(e) => panic!("{e}"),
        }
    }

    fn floats(values: &[Value]) -> Vec<f64> {
        values.iter().filter_map(Value::as_f64).collect()
    }

    #[test]
    fn ranges_split_evenly_or_on_a_log_scale() {
        let grid = Grid::new(Some(4));
        let axes = grid
            .axes(&space(&["eta=log:0.01:10", "lambda=float:0:3"]))
            .unwrap_or_default();
        let eta = floats(&axes[0]);
        let expected = [0.01, 0.1, 1.0, 10.0];
        assert_eq!(eta.len(), 4);
        for (got, want) in eta.iter().zip(expected) {
            assert!((got / want - 1.0).abs() < 1e-12, "{got} vs {want}");
        }
        assert_eq!(floats(&axes[1]), [0.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn integer_points_are_kept_once() {
        let grid = Grid::new(Some(5));
        let axes = grid
            .axes(&space(&["epochs=int:1:3", "hidden=intlog:10:1000"]))
            .unwrap_or_default();
        assert_eq!(axes[0], [Value::Int(1), Value::Int(2), Value::Int(3)]);
        let hidden: Vec<i64> = axes[1].iter().filter_map(Value::as_i64).collect();
        assert_eq!(hidden, [10, 32, 100, 316, 1000]);
        // Without K an integer range gives every whole number.
        let every = Grid::new(None).axes(&space(&["epochs=int:2:5"]));
        assert_eq!(every.map(|a| a[0].len()), Ok(4));
    }

    #[test]
    fn every_point_is_run_exactly_once() {
        let space = space(&[
            "eta=log:0.1:10",
            "mini-batch=choice:10,20",
            "hidden=int:10:40",
        ]);
        let grid = Grid::new(Some(3));
        let size = grid.size(&space);
        assert_eq!(size, Ok(3 * 2 * 3));
        assert_eq!(grid.max_trials(&space), Ok(Some(18)));
        let points: Vec<Params> = (0..18)
            .filter_map(|k| grid.sample(&space, k, &[]).ok())
            .collect();
        assert_eq!(points.len(), 18);
        for (i, a) in points.iter().enumerate() {
            assert_eq!(a.len(), 3);
            for b in &points[..i] {
                assert_ne!(a, b, "a point is proposed twice");
            }
        }
        assert_eq!(
            grid.sample(&space, 18, &[]),
            Err(SampleError::GridExhausted {
                number: 18,
                size: 18
            })
        );
    }

    #[test]
    fn continuous_ranges_need_k() {
        let space = space(&["mini-batch=choice:10,20", "eta=log:0.1:10"]);
        let refused = Err(SampleError::ContinuousWithoutPoints {
            param: "eta=log:0.1:10".into(),
        });
        assert_eq!(Grid::new(None).size(&space), refused);
        assert_eq!(
            Grid::new(None).max_trials(&space).map(|_| 0),
            refused.map(|_: u64| 0)
        );
        assert!(Grid::new(None).sample(&space, 0, &[]).is_err());
        assert_eq!(
            Grid::new(Some(1)).size(&space),
            Err(SampleError::TooFewGridPoints(1))
        );
    }

    /// A K or an integer range past [`MAX_AXIS`] is refused before its axis is built: the
    /// huge ones allocated (or overflowed) their axis before they failed.
    #[test]
    fn huge_axes_are_refused_before_they_are_built() {
        let eta = space(&["eta=log:0.1:1"]);
        for k in [usize::MAX, 1 << 32, MAX_AXIS as usize + 1] {
            assert_eq!(
                Grid::new(Some(k)).size(&eta),
                Err(SampleError::TooManyGridPoints(k))
            );
        }
        assert_eq!(Grid::new(Some(MAX_AXIS as usize)).size(&eta), Ok(MAX_AXIS));
        let hidden = space(&["hidden=int:1:9223372036854775807"]);
        assert_eq!(
            Grid::new(None).size(&hidden),
            Err(SampleError::AxisTooLong {
                param: "hidden=int:1:9223372036854775807".into(),
                len: i128::from(i64::MAX),
            })
        );
        assert_eq!(Grid::new(Some(3)).size(&hidden), Ok(3));
    }
}
