//! Dropout (ch. 3, "Regularization"): while training, every hidden neuron is switched off
//! with probability p, afresh for every example, so the network cannot rely on any one of
//! them.
//!
//! This is *inverted* dropout: a neuron that stays is scaled by 1/(1 − p) during training, so
//! its expected output is unchanged and the trained network is evaluated as it is, with every
//! neuron on and no rescaling. (The book instead halves the outgoing weights after training;
//! the two are the same network.) Each hidden neuron's factor s, 0 or 1/(1 − p), is its
//! *mask*; the layer's output is s·f(z), and backprop multiplies the neuron's δ by s (BP2
//! with the mask: δˡ = (wˡ⁺¹)ᵀδˡ⁺¹ ⊙ f′(zˡ) ⊙ sˡ). Input and output neurons are never dropped.
//!
//! Every implementation draws the masks from the training run's `SeededRng` in one order —
//! example by example in mini-batch order, within an example hidden layer by hidden layer from
//! the input, within a layer neuron by neuron — so the book-style reference step and the fast
//! per-example and batched steps train the same network under one seed. With p = 0 nothing is
//! drawn and a run is exactly the run without dropout.

use crate::rng::SeededRng;
use rand::Rng;

use crate::model::activation::Activation;
use crate::real::Real;

/// Fills `masks` with fresh masks, in order: each 0 with probability `p`, otherwise 1/(1 − p).
#[inline]
pub fn fill<'a, F: Real, M>(p: f64, rng: &mut SeededRng, masks: M)
where
    M: IntoIterator<Item = &'a mut F>,
    M::IntoIter: ExactSizeIterator,
{
    draw(p, F::of(1.0 / (1.0 - p)), rng, masks);
}

/// Fills `masks` with `network3.py`'s masks, in the same order as [`fill`]: each 0 with
/// probability `p`, otherwise 1 (no rescaling; chapter 6's layers scale at evaluation instead).
#[inline]
pub fn keep<'a, F: Real, M>(p: f64, rng: &mut SeededRng, masks: M)
where
    M: IntoIterator<Item = &'a mut F>,
    M::IntoIter: ExactSizeIterator,
{
    draw(p, F::one(), rng, masks);
}

/// How many draws [`draw`] takes from the generator at a time: 512 bytes on the stack.
const DRAWS_AT_ONCE: usize = 64;

/// Each mask `scale` if kept, 0 if not, kept with probability 1 − `p`: kept when the
/// generator's next `u64`, as `rand` turns it into an `f64` in [0, 1), is at least `p` (the
/// mask's one draw; the tests' `draw_one_by_one` is that, written out).
///
/// The draws are taken [`DRAWS_AT_ONCE`] at a time as bytes, which the generator copies out
/// of its block of results (little-endian, as `next_u64` puts two words together), and
/// compared as integers. Chapter 6's dropout network draws 2,640 masks an example; one
/// `next_u64` call, one conversion to `f64` and a branch per mask took three times as long
/// (0.134 s against 0.043 s for 5,000 examples, `nndl bench --nets ch6-dropout --phases`).
#[inline]
fn draw<'a, F: Real, M>(p: f64, scale: F, rng: &mut SeededRng, masks: M)
where
    M: IntoIterator<Item = &'a mut F>,
    M::IntoIter: ExactSizeIterator,
{
    let threshold = keep_threshold(p);
    let mut masks = masks.into_iter();
    let mut bytes = [0u8; 8 * DRAWS_AT_ONCE];
    let mut chosen = [F::zero(); DRAWS_AT_ONCE];
    while masks.len() > 0 {
        let n = masks.len().min(DRAWS_AT_ONCE);
        let (bytes, chosen) = (&mut bytes[..8 * n], &mut chosen[..n]);
        rng.fill_bytes(bytes);
        // Array to array, so that the compiler compares and chooses in vector registers:
        // choosing one mask at a time, it branched, and a coin flip is mispredicted half the
        // time.
        for (word, s) in bytes.as_chunks::<8>().0.iter().zip(chosen.iter_mut()) {
            let kept = u64::from_le_bytes(*word) >> 11 >= threshold;
            *s = if kept { scale } else { F::zero() };
        }
        // `chosen` first: a zip that runs out of it takes no further mask from `masks`.
        for (&c, s) in chosen.iter().zip(masks.by_ref()) {
            *s = c;
        }
    }
}

/// The least top-53-bit value x of a draw with x·2⁻⁵³ ≥ `p`: `rand`'s `random::<f64>()` is
/// (u >> 11)·2⁻⁵³ for the draw u, and p·2⁵³ is exact for p in [0, 1], so `u >> 11 >=
/// keep_threshold(p)` decides exactly as `random::<f64>() >= p`.
fn keep_threshold(p: f64) -> u64 {
    (p * (1u64 << 53) as f64).ceil() as u64
}

/// s·f′(z) for a neuron with mask `s` whose masked output is `a` = s·f(z): the factor BP2
/// multiplies its δ by, for dropout probability `p`. A kept neuron's unmasked output is
/// a·(1 − p), and a dropped one (s = 0, a = 0) passes no error back whatever f′(0) is — so
/// there is neither a division nor a branch, which at p = 0.5 the processor could not predict.
#[inline]
pub fn masked_prime<F: Real>(activation: Activation, a: F, s: F, p: F) -> F {
    s * activation.prime_from_output(a * (F::one() - p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// [`draw`] as the obvious loop: one `f64` draw per mask, compared with `p`.
    fn draw_one_by_one(p: f64, scale: f64, rng: &mut SeededRng, masks: &mut [f64]) {
        for s in masks {
            let kept = rng.random::<f64>() >= p;
            *s = scale * f64::from(u8::from(kept));
        }
    }

    #[test]
    fn masks_drawn_at_once_are_the_masks_drawn_one_by_one() {
        // Every p whose threshold sits at an edge, lengths across the blocks of draws, and
        // the generator started at either end, at odd words and past the end of its block of
        // 64 results (at word 63 a draw straddles two blocks): the same masks, and the
        // generator left where it was.
        let ps = [
            0.0,
            1e-300,
            0.25,
            1.0 / 3.0,
            0.5,
            0.5 + f64::EPSILON,
            0.7,
            1.0 - 1e-16,
            1.0,
        ];
        for (i, &p) in ps.iter().enumerate() {
            for len in [0, 1, 7, 63, 64, 65, 640, 1000] {
                for skip in [0, 1, 2, 61, 63, 64, 127] {
                    let mut rng = SeededRng::seed_from_u64(i as u64);
                    for _ in 0..skip {
                        rng.next_u32();
                    }
                    let mut obvious = crate::rng::restore(&crate::rng::save(&rng));
                    let (mut fast, mut slow) = (vec![9.0; len], vec![9.0; len]);
                    draw(p, 2.0, &mut rng, &mut fast);
                    draw_one_by_one(p, 2.0, &mut obvious, &mut slow);
                    assert_eq!(fast, slow, "p {p}, {len} masks after {skip} words");
                    assert_eq!(rng.next_u64(), obvious.next_u64(), "p {p}, {len}, {skip}");
                }
            }
        }
    }

    #[test]
    fn the_threshold_decides_as_the_f64_draw_at_its_edges() {
        // A draw whose top 53 bits are x is kept when x·2⁻⁵³ ≥ p: at x = threshold − 1 it is
        // not, at the threshold it is.
        for p in [1e-300, 0.1, 0.25, 1.0 / 3.0, 0.5, 0.9, 1.0 - 1e-16, 1.0] {
            let t = keep_threshold(p);
            assert!(t as f64 / (1u64 << 53) as f64 >= p, "p {p}");
            assert!(((t - 1) as f64) / ((1u64 << 53) as f64) < p, "p {p}");
        }
        assert_eq!(keep_threshold(0.0), 0);
    }

    #[test]
    fn masks_drop_a_share_p_and_keep_the_mean() {
        let mut rng = SeededRng::seed_from_u64(1);
        let p = 0.3;
        let mut masks = vec![0.0f64; 100_000];
        fill(p, &mut rng, &mut masks);
        let dropped = masks.iter().filter(|&&s| s == 0.0).count() as f64 / masks.len() as f64;
        let mean = masks.iter().sum::<f64>() / masks.len() as f64;
        assert!((dropped - p).abs() < 0.01, "dropped {dropped}");
        assert!((mean - 1.0).abs() < 0.01, "mean mask {mean}");
        assert!(masks.iter().all(|&s| s == 0.0 || s == 1.0 / 0.7));
    }

    #[test]
    fn no_dropout_draws_ones() {
        let mut rng = SeededRng::seed_from_u64(2);
        let mut masks = vec![0.0f64; 1000];
        fill(0.0, &mut rng, &mut masks);
        assert!(masks.iter().all(|&s| s == 1.0));
    }

    #[test]
    fn masked_prime_is_s_times_f_prime_of_the_unmasked_output() {
        for act in [Activation::Sigmoid, Activation::Tanh, Activation::Relu] {
            let z = 0.4f64;
            let s = 1.0 / 0.6;
            let got = masked_prime(act, s * act.apply(z), s, 0.4);
            assert!((got - s * act.prime(z)).abs() < 1e-15, "{act:?}");
            assert_eq!(masked_prime(act, 0.0, 0.0, 0.4), 0.0);
        }
    }
}
