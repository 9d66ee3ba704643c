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
use rand::RngExt;

use crate::model::activation::Activation;
use crate::real::Real;

/// Fills `masks` with fresh masks, in order: each 0 with probability `p`, otherwise 1/(1 − p).
/// The mask is the 0-or-1 outcome times 1/(1 − p), arithmetic rather than a branch, which a
/// coin flip would mispredict half the time.
#[inline]
pub fn fill<'a, F: Real>(p: f64, rng: &mut SeededRng, masks: impl IntoIterator<Item = &'a mut F>) {
    draw(p, F::of(1.0 / (1.0 - p)), rng, masks);
}

/// Fills `masks` with `network3.py`'s masks, in the same order as [`fill`]: each 0 with
/// probability `p`, otherwise 1 (no rescaling; chapter 6's layers scale at evaluation instead).
#[inline]
pub fn keep<'a, F: Real>(p: f64, rng: &mut SeededRng, masks: impl IntoIterator<Item = &'a mut F>) {
    draw(p, F::one(), rng, masks);
}

/// Each mask `kept`·`scale`, kept with probability 1 − `p`.
#[inline]
fn draw<'a, F: Real>(
    p: f64,
    scale: F,
    rng: &mut SeededRng,
    masks: impl IntoIterator<Item = &'a mut F>,
) {
    for s in masks {
        let kept = rng.random::<f64>() >= p;
        *s = scale * F::from_u8(u8::from(kept));
    }
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
    use rand::SeedableRng;

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
