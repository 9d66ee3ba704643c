//! `network3.py`'s training step on several threads. A mini-batch goes through the network
//! in two parts ([`super::spec::shared_head`]):
//!
//! - the convolutions at its head run on shares of the examples: the examples are split into
//!   consecutive shares, one per thread, and each thread runs the forward and backward passes
//!   of its share in a [`Pass`] of its own; the shares' gradients are then added up and
//!   `network3.py`'s update applied once, as for the whole mini-batch;
//! - the dense layers after them run once on the whole mini-batch, in one more pass, each
//!   splitting its neurons — consecutive rows of W — between the threads
//!   ([`super::dense::split`]): a thread computes its neurons' weighted inputs, their part of
//!   the input error and their update, so that W stays where it is used, each thread's rows
//!   in its own core's cache, from one mini-batch to the next.
//!
//! Between the two, each thread puts its share's output of the head into the whole
//! mini-batch's pass, and takes the error of that output back from it, each share's examples
//! staying on its thread where the dense layers split examples too (their input errors). The
//! dropout masks (of the dense layers) are drawn from the run's one generator, each thread
//! drawing those of its share of the examples from where their draws begin in its stream
//! ([`Pass::draw_masks`]): the same masks as on one thread.
//!
//! What the thread count changes, in the last bits: the sum of the m examples' gradients of a
//! convolution (BP3, BP4 summed over the mini-batch) is added share by share, ∇₁ + ∇₂ + … in
//! that order for every parameter, whichever thread adds it; a dense layer's input error is
//! added up from the threads' parts in their order ([`super::dense`]). A dense layer's
//! weighted inputs and its update of W are the values one thread computes. So a run repeats
//! to the last bit for a given thread count, and differs in the last bits from another
//! count's.
//!
//! A step forks and joins with the calling thread's team ([`crate::backend::fork_join`]) for
//! the head's forward pass, its backward pass and its update, and inside each dense layer's
//! products, and to draw the masks; gathering the examples stays on the calling thread (a
//! few kilobytes).

use crate::backend::{even_ranges, fork_join};
use crate::data::Dataset;
use crate::real::Real;
use crate::rng::SeededRng;

use super::kind::Rate;
use super::pass::{self, Pass};
use super::spec::shared_head;
use super::LayerNetwork;

/// Values added per block of the update: short enough to stay in registers and L1, long
/// enough to vectorise.
const BLOCK: usize = 64;

/// The passes of a shared training step: one per thread through the head, and one of the
/// whole mini-batch.
#[derive(Clone, Debug)]
pub struct Shards<F: Real> {
    /// The layers run on shares of the examples ([`shared_head`]).
    head: usize,
    /// One per thread, through the head's layers only (none without a head).
    shares: Vec<Pass<F>>,
    /// The whole mini-batch, its layers splitting their work between the threads.
    whole: Pass<F>,
}

/// One thread's part of the head's update: for each parameter array, a range of its values,
/// the same range of each share's gradient, and the array's decay (1 for biases).
type UpdatePart<'a, F> = Vec<(&'a mut [F], Vec<&'a [F]>, F)>;

impl<F: Real> Shards<F> {
    /// Passes for mini-batches of up to `mini_batch` examples of `net` shared between
    /// `threads` threads (no more threads than examples).
    pub fn new(net: &LayerNetwork<F>, mini_batch: usize, threads: usize) -> Self {
        let threads = threads.clamp(1, mini_batch.max(1));
        let head = shared_head(&net.specs());
        let m = mini_batch.div_ceil(threads);
        let shares = if head > 0 {
            (0..threads).map(|_| Pass::head(net, head, m)).collect()
        } else {
            Vec::new()
        };
        Shards {
            head,
            shares,
            whole: Pass::split(net, mini_batch, threads),
        }
    }

    /// `batch` in `parts` consecutive shares whose sizes differ by at most one, the larger
    /// first ([`even_ranges`]).
    pub fn shares(batch: &[usize], parts: usize) -> impl Iterator<Item = &[usize]> {
        even_ranges(batch.len(), parts).map(move |range| &batch[range])
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
        let (head, whole) = (self.head, &mut self.whole);
        if head > 0 {
            whole.gather_labels(data, batch);
        } else {
            whole.gather(data, batch);
        }
        whole.draw_masks(rng);
        let parts = self.shares.len().min(batch.len());
        let shares = &mut self.shares[..parts];
        let sizes: Vec<usize> = even_ranges(batch.len(), parts).map(|r| r.len()).collect();
        if head > 0 {
            // Each share's forward pass, its output put straight into the whole pass's.
            let shared: &LayerNetwork<F> = net;
            let outputs = whole.output_windows(head - 1, &sizes);
            let mut work: Vec<_> = shares
                .iter_mut()
                .zip(Self::shares(batch, parts))
                .zip(outputs)
                .collect();
            fork_join(&mut work, |((pass, share), output)| {
                pass.gather(data, share);
                pass.forward_layers(shared, 0..head);
                pass.put_output(head - 1, output);
            });
        }
        let layers = net.layers.len();
        whole.forward_layers(net, head..layers);
        let rate = pass::rate::<F>(eta, lambda, batches, batch.len());
        whole.backward_update_from(net, head, rate);
        if head > 0 {
            let shared: &LayerNetwork<F> = net;
            let errors = whole.error_windows(head - 1, &sizes);
            let mut work: Vec<_> = shares.iter_mut().zip(errors).collect();
            fork_join(&mut work, |(pass, error)| {
                pass.take_error(head - 1, error.view());
                pass.backward_layers(shared, 0..head);
            });
            let mut work = update_work(net, shares, head, rate, parts);
            fork_join(&mut work, |part| {
                for (values, gradients, decay) in part.iter_mut() {
                    descend(values, gradients, *decay, rate.1);
                }
            });
        }
    }
}

/// The update of the first `head` layers of `net` after the shares' backward passes
/// (`passes`), in `parts` parts of about equal size: each parameter array is cut into `parts`
/// ranges, range k going to part k with the same range of every share's gradient and the
/// array's decay.
fn update_work<'a, F: Real>(
    net: &'a mut LayerNetwork<F>,
    passes: &'a [Pass<F>],
    head: usize,
    (decay, _): Rate<F>,
    parts: usize,
) -> Vec<UpdatePart<'a, F>> {
    // [share][array]: each share's gradients of the head's layers, in the order of the
    // parameters.
    let gradients: Vec<Vec<&'a [F]>> = passes
        .iter()
        .map(|pass| {
            (0..head)
                .flat_map(|l| pass.gradients(net, l))
                .map(|g| g.to_slice().expect("gradients are contiguous"))
                .collect()
        })
        .collect();
    let decays: Vec<F> = net.layers[..head]
        .iter()
        .flat_map(|l| l.parameters())
        .map(|p| if p.decays { decay } else { F::one() })
        .collect();
    let mut work: Vec<UpdatePart<'a, F>> = (0..parts).map(|_| Vec::new()).collect();
    let arrays = net.layers[..head]
        .iter_mut()
        .flat_map(|layer| layer.parameters_mut());
    for (a, values) in arrays.enumerate() {
        let values = values.into_slice().expect("parameters are contiguous");
        let len = values.len().div_ceil(parts).max(1);
        for (k, range) in values.chunks_mut(len).enumerate() {
            let start = k * len;
            let sums = gradients
                .iter()
                .map(|share| &share[a][start..start + range.len()])
                .collect();
            work[k].push((range, sums, decays[a]));
        }
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
