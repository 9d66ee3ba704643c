//! `network3.py`'s training step on several threads: each mini-batch's examples are split
//! into consecutive shares, one per thread, and each thread runs the forward and backward
//! passes of its share in a [`Pass`] of its own; the shares' gradients are then added up and
//! `network3.py`'s update applied once, as for the whole mini-batch.
//!
//! The sum of the m examples' gradients (BP3, BP4 summed over the mini-batch) does not depend
//! on how they are grouped, but its rounding does: with one share per thread, ∇ = ∇₁ + ∇₂ +
//! … + ∇ₙ is added in that order for every parameter, whichever thread adds it, so a run
//! repeats to the last bit for a given thread count — and differs in the last bits from
//! another count's. The dropout masks are drawn on the calling thread, example by example in
//! the mini-batch's order, from the run's one generator: the same masks as on one thread.
//!
//! One step is two forks and joins with the calling thread's team ([`crate::backend::fork_join`]):
//! the shares' passes, then the update, each thread taking its part of every layer: of each
//! dense layer, consecutive rows of W, updated from δ and the input of the whole mini-batch
//! put together share after share (W ← decay·W − scale·δ·input: no share computes a ∇W as
//! large as W); of the other layers, a range of every parameter array, updated from the sum
//! of the shares' gradients of that range (W ← decay·W − scale·Σ∇W, b ← b − scale·Σ∇b).
//! Gathering the examples and drawing the masks stay on the calling thread: they copy a few
//! kilobytes.

use crate::backend::fork_join;
use crate::data::Dataset;
use crate::real::Real;
use crate::rng::SeededRng;

use super::kind::{Rate, Work};
use super::pass::{self, Pass};
use super::LayerNetwork;

/// Values added per block of the update: short enough to stay in registers and L1, long
/// enough to vectorise.
const BLOCK: usize = 64;

/// Whether sharing a mini-batch of `net` between threads pays: when its dense layers hold
/// less than [`DENSE_SHARE`] of its multiply-adds per example. Each share reads all of a
/// dense layer's W for its forward pass and its input error, and the update writes W's rows
/// from every thread, so W goes back and forth between the cores' caches every mini-batch:
/// measured on 2 cores of an AMD EPYC (`nndl bench --threads 1|2 --train-size 10000`,
/// 2026-12-06), `ch6-relu` (dense layers 4% of the work) trained 1.5–1.7× faster on two
/// threads, and `ch6-conv` (50%), `ch6-dropout` (51%) and `ch6-fc` (100%) 1.1–2.6× slower.
/// Those train on one thread (and score on all). A rule on the network's shape, not a timing,
/// so that a run repeats on any machine for a given `--threads`.
pub fn pays(net: &LayerNetwork<impl Real>) -> bool {
    let classes = net.classes();
    let (mut dense, mut all) = (0.0, 0.0);
    for layer in &net.layers {
        let work = layer.spec().multiply_adds(layer.input(), classes);
        all += work;
        if layer.updates_from_shares() {
            dense += work;
        }
    }
    dense < DENSE_SHARE * all
}

/// See [`pays`].
pub const DENSE_SHARE: f64 = 0.25;

/// The passes of a data-parallel training step, one per thread.
#[derive(Clone, Debug)]
pub struct Shards<F: Real> {
    passes: Vec<Pass<F>>,
}

/// One thread's part of the update: for each parameter array, a range of its values, the
/// same range of each share's gradient, and the array's decay (1 for biases).
type UpdatePart<'a, F> = Vec<(&'a mut [F], Vec<&'a [F]>, F)>;

impl<F: Real> Shards<F> {
    /// Passes for mini-batches of up to `mini_batch` examples of `net` split between
    /// `threads` threads (no more threads than examples).
    pub fn new(net: &LayerNetwork<F>, mini_batch: usize, threads: usize) -> Self {
        let threads = threads.clamp(1, mini_batch.max(1));
        let m = mini_batch.div_ceil(threads);
        Shards {
            passes: (0..threads).map(|_| Pass::new(net, m, true)).collect(),
        }
    }

    /// The threads a mini-batch is split between (fewer for a shorter mini-batch).
    pub fn threads(&self) -> usize {
        self.passes.len()
    }

    /// `batch` in `parts` consecutive shares whose sizes differ by at most one, the larger
    /// first.
    pub fn shares(batch: &[usize], parts: usize) -> impl Iterator<Item = &[usize]> {
        let (base, extra) = (batch.len() / parts, batch.len() % parts);
        (0..parts).scan(0, move |start, k| {
            let len = base + usize::from(k < extra);
            let share = &batch[*start..*start + len];
            *start += len;
            Some(share)
        })
    }

    /// One training step of `net` on the examples `batch` of `data`: `network3.py`'s
    /// `train_mb` with `(eta, lambda)` and `batches` mini-batches in the training set (its
    /// L2 term), the dropout masks drawn from `rng`.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        net: &mut LayerNetwork<F>,
        data: &Dataset<F>,
        batch: &[usize],
        (eta, lambda): (f64, f64),
        batches: usize,
        rng: &mut SeededRng,
    ) {
        let parts = self.passes.len().min(batch.len());
        let passes = &mut self.passes[..parts];
        for (pass, share) in passes.iter_mut().zip(Self::shares(batch, parts)) {
            pass.gather(data, share);
            pass.draw_masks(rng);
        }
        let shared: &LayerNetwork<F> = net;
        fork_join(passes, |pass| {
            pass.forward(shared);
            pass.backward_share(shared);
        });
        let rate = pass::rate::<F>(eta, lambda, batches, batch.len());
        let mut work = update_work(net, passes, rate, parts);
        fork_join(&mut work, |part| {
            for piece in part.drain(..) {
                piece();
            }
        });
    }
}

/// The update of `net` after the shares' backward passes (`passes`), in `parts` parts of
/// about equal size, part k's pieces of work in `[k]`. A layer updated from its shares
/// (dense) gives its own pieces ([`super::kind::Kind::update_from_shares`]); the others'
/// parameter arrays are each cut into `parts` ranges, range k going to part k with the same
/// range of every share's gradient and the array's decay.
fn update_work<'a, F: Real>(
    net: &'a mut LayerNetwork<F>,
    passes: &'a [Pass<F>],
    (decay, scale): Rate<F>,
    parts: usize,
) -> Vec<Vec<Work<'a>>> {
    let summed: Vec<bool> = net
        .layers
        .iter()
        .map(|l| !l.updates_from_shares())
        .collect();
    let layers = || (0..net.layers.len()).filter(|&l| summed[l]);
    // [share][array]: each share's gradients of the summed layers, in the order of the
    // parameters.
    let gradients: Vec<Vec<&'a [F]>> = passes
        .iter()
        .map(|pass| {
            layers()
                .flat_map(|l| pass.gradients(net, l))
                .map(|g| g.to_slice().expect("gradients are contiguous"))
                .collect()
        })
        .collect();
    let decays: Vec<F> = layers()
        .flat_map(|l| net.layers[l].parameters())
        .map(|p| if p.decays { decay } else { F::one() })
        .collect();
    let mut work: Vec<Vec<Work<'a>>> = (0..parts).map(|_| Vec::new()).collect();
    let mut ranges: Vec<UpdatePart<'a, F>> = (0..parts).map(|_| Vec::new()).collect();
    let mut a = 0;
    for (l, layer) in net.layers.iter_mut().enumerate() {
        if !summed[l] {
            let shares: Vec<_> = passes.iter().map(|pass| pass.layer_share(l)).collect();
            let pieces = layer.update_from_shares(&shares, (decay, scale), parts);
            for (k, piece) in pieces.into_iter().enumerate() {
                work[k].push(piece);
            }
            continue;
        }
        for values in layer.parameters_mut() {
            let values = values.into_slice().expect("parameters are contiguous");
            let len = values.len().div_ceil(parts).max(1);
            for (k, range) in values.chunks_mut(len).enumerate() {
                let start = k * len;
                let sums = gradients
                    .iter()
                    .map(|share| &share[a][start..start + range.len()])
                    .collect();
                ranges[k].push((range, sums, decays[a]));
            }
            a += 1;
        }
    }
    for (part, mut ranges) in work.iter_mut().zip(ranges) {
        part.push(Box::new(move || {
            for (values, gradients, decay) in ranges.iter_mut() {
                descend(values, gradients, *decay, scale);
            }
        }));
    }
    work
}

/// `values ← decay·values − scale·(g₁ + g₂ + … + gₙ)`, the gradients added in the order
/// given, block by block.
fn descend<F: Real>(values: &mut [F], gradients: &[&[F]], decay: F, scale: F) {
    let mut sum = [F::zero(); BLOCK];
    for (b, block) in values.chunks_mut(BLOCK).enumerate() {
        let (start, sum) = (b * BLOCK, &mut sum[..block.len()]);
        let (first, rest) = gradients.split_first().expect("one share at least");
        sum.copy_from_slice(&first[start..start + block.len()]);
        for share in rest {
            for (s, &g) in sum.iter_mut().zip(&share[start..start + block.len()]) {
                *s += g;
            }
        }
        for (w, &g) in block.iter_mut().zip(sum.iter()) {
            *w = decay * *w - scale * g;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Shards;

    #[test]
    fn shares_are_consecutive_and_as_even_as_can_be() {
        let batch: Vec<usize> = (0..10).collect();
        let sizes = |parts| -> Vec<usize> {
            Shards::<f32>::shares(&batch, parts)
                .map(|s| s.len())
                .collect()
        };
        assert_eq!(sizes(1), [10]);
        assert_eq!(sizes(3), [4, 3, 3]);
        assert_eq!(sizes(4), [3, 3, 2, 2]);
        assert_eq!(sizes(10), [1; 10]);
        let joined: Vec<usize> = Shards::<f32>::shares(&batch, 3)
            .flatten()
            .copied()
            .collect();
        assert_eq!(joined, batch);
    }
}
