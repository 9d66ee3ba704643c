//! The forward and backward passes of a whole mini-batch through a [`LayerNetwork`], with
//! every buffer they need allocated once ([`Pass::new`]) and reused: after the first
//! mini-batch a training step allocates no buffer, only the short lists that hand each
//! thread its part of a layer (one part on one thread). A smaller last mini-batch uses the first
//! columns of each buffer (the first rows of a dense layer's `input`, `mask` and `d_input`).
//!
//! The pass knows layers only through [`super::kind::Kind`]: it gathers the mini-batch, draws
//! the dropout masks, calls each layer's forward, the cost's δ, and each layer's backward (and
//! update) in reverse. Forward: each layer reads the previous layer's output (the images, for
//! the first) and writes its own — im2col, one product and the pooling for a
//! [`super::ConvPool`] (or, for one with short sums like the book's first,
//! [`super::direct_conv`]'s product without im2col), a gather and one product for a dense
//! layer. Backward (BP1–BP4 in matrix form): the
//! softmax layer's error is δᴸ = a − y (eq. 84, log-likelihood cost); each layer turns the
//! error of its output into ∇W, ∇b (summed over the mini-batch) and the error of its input,
//! which is the previous layer's output error. The update is then `network3.py`'s:
//! W ← W − η(∇W/m + λW/B), b ← b − η∇b/m, with B = n/m mini-batches in the training set.
//!
//! Two ways through the backward pass: [`Pass::backward`] leaves ∇W and ∇b in the pass (for
//! the gradient checks, and to read), and [`Pass::update`] then applies them; the training
//! step, [`Pass::backward_update`], updates each layer as soon as its input's error is known.
//! There a dense layer never stores ∇W (see [`super::dense`]). The tests hold the two ways to
//! each other.
//!
//! Buffers ([`buffers`], m examples): the pass's own — the gathered images `x`, one image,
//! the labels — and for every layer its output `out` and, in training, its error `d_out` and
//! the dropout masks of its inputs (a layer that drops any), beside those its kind declares
//! ([`super::kind::KindSpec::buffers`]). [`Pass::new`] allocates exactly these, and the memory
//! estimate ([`super::spec::bytes_needed`]) adds them up.

use std::ops::Range;
use std::time::Instant;

use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewD, ArrayViewMut2, Axis};

use crate::backend::{even_ranges, fork_join};
use crate::data::Dataset;
use crate::model::dropout;
use crate::real::Real;
use crate::rng::SeededRng;

use super::item::Shape;
use super::kind::{self, Backward, Buffer, Element, Forward, Rate, Role};
use super::phase::{mark, restart, Clock, Phase, Timer};
use super::small_batch;
use super::LayerSpec;
use super::{LayerBuffers, LayerNetwork};

/// The buffers of one layer in a pass.
#[derive(Clone, Debug)]
struct Slot<F: Real> {
    /// `(C, m_max·H·W)` or `(n_out, m_max)`: the layer's output.
    out: Array2<F>,
    /// Same shape as `out`: ∂C/∂out, then δ (training).
    d_out: Array2<F>,
    /// `(m_max, n_in)`: 1 for a kept input, 0 for a dropped one (training, with dropout).
    mask: Array2<F>,
    /// The probability of dropping each input.
    dropout: f64,
    /// Those of its kind.
    kind: LayerBuffers<F>,
}

/// Every buffer of a pass of up to `m` examples through `layers` (`shapes` as
/// [`super::spec::check`] returns them, or their first `layers.len() + 1`) with floats of
/// type `F`, its layers splitting their work between `parts` threads: the pass's own, then
/// each layer's — its output, in `training` its error and dropout masks, and its kind's.
/// `None` past the address space.
#[allow(clippy::type_complexity)]
pub fn buffers<F: Real>(
    layers: &[LayerSpec],
    shapes: &[Shape],
    m: usize,
    training: bool,
    parts: usize,
) -> Option<(Vec<Buffer>, Vec<Vec<Buffer>>)> {
    let [c, h, w] = *shapes.first()?;
    let own = vec![
        Buffer::real("x", &[c], &[m, h, w])?,
        Buffer::flat("row", Element::Real, &[c, h, w])?,
        Buffer::flat("labels", Element::Label, &[m])?,
    ];
    let mut per_layer = Vec::with_capacity(layers.len());
    for (l, (layer, pair)) in layers.iter().zip(shapes.windows(2)).enumerate() {
        let (input, [oc, oh, ow]) = (pair[0], pair[1]);
        let mut buffers = vec![Buffer::real("out", &[oc], &[m, oh, ow])?];
        if training {
            buffers.push(Buffer::real("d_out", &[oc], &[m, oh, ow])?);
            if layer.dropout() > 0.0 {
                buffers.push(Buffer::real("mask", &[m], &input)?);
            }
        }
        let role = Role {
            training,
            first: l == 0,
            parts,
        };
        buffers.extend(layer.buffers::<F>(input, pair[1], m, role)?);
        per_layer.push(buffers);
    }
    Some((own, per_layer))
}

/// The buffers of a forward (and, when made for training, backward) pass of up to `m_max`
/// examples.
#[derive(Clone, Debug)]
pub struct Pass<F: Real> {
    m_max: usize,
    /// Examples gathered (≤ m_max).
    m: usize,
    training: bool,
    /// `(C, m_max·H·W)`: the gathered images, in the activations' layout.
    x: Array2<F>,
    /// One image, as the data set stores it.
    row: Array1<F>,
    labels: Vec<u8>,
    /// Whether `mask`s were drawn for the gathered mini-batch.
    masked: bool,
    layers: Vec<Slot<F>>,
    /// Whether a dense layer's products go through [`small_batch`]'s kernels when the
    /// mini-batch is small enough (on CPUs with FMA).
    small_batch: bool,
    /// The threads each layer may split its work between ([`Pass::split`]).
    parts: usize,
    /// Per-phase times, when asked for.
    clock: Option<Clock>,
}

impl<F: Real> Pass<F> {
    /// Buffers for `net` and up to `m_max` examples; `training` adds the backward pass's.
    /// Allocates what [`buffers`] declares, nothing else.
    pub fn new(net: &LayerNetwork<F>, m_max: usize, training: bool) -> Self {
        Self::build(net, net.layers.len(), m_max, training, 1)
    }

    /// A training pass whose layers split their work between `parts` threads, the calling
    /// thread's team: a dense layer its neurons ([`super::dense::split`]). The whole
    /// mini-batch of a shared training step ([`super::shards`]).
    pub fn split(net: &LayerNetwork<F>, m_max: usize, parts: usize) -> Self {
        Self::build(net, net.layers.len(), m_max, true, parts)
    }

    /// A training pass through the first `layers` layers of `net` only: one thread's share
    /// of the examples in a shared training step ([`super::shards`]).
    pub fn head(net: &LayerNetwork<F>, layers: usize, m_max: usize) -> Self {
        Self::build(net, layers, m_max, true, 1)
    }

    fn build(
        net: &LayerNetwork<F>,
        layers: usize,
        m_max: usize,
        training: bool,
        parts: usize,
    ) -> Self {
        let specs = net.specs();
        let shapes: Vec<Shape> = std::iter::once(net.input)
            .chain(net.layers.iter().map(|l| l.output()))
            .collect();
        let (own, per_layer) =
            buffers::<F>(&specs[..layers], &shapes[..=layers], m_max, training, parts)
                .expect("a built network's buffers fit in memory");
        let layers = net
            .layers
            .iter()
            .zip(&per_layer)
            .map(|(layer, declared)| Slot {
                out: kind::zeros(declared, "out"),
                d_out: kind::zeros(declared, "d_out"),
                mask: kind::zeros(declared, "mask"),
                dropout: layer.dropout(),
                kind: layer.allocate(declared),
            })
            .collect();
        Pass {
            m_max,
            m: 0,
            training,
            x: kind::zeros(&own, "x"),
            row: kind::zeros_1d(&own, "row"),
            labels: kind::reserve(&own, "labels"),
            masked: false,
            layers,
            small_batch: small_batch::available(),
            parts,
            clock: None,
        }
    }

    /// Sends every product through `general_mat_mul` — a dense layer's, as for mini-batches
    /// larger than [`small_batch::MAX_EXAMPLES`], and a convolution's, after im2col — to test
    /// and time [`small_batch`]'s and [`super::direct_conv`]'s kernels against them.
    pub fn use_general_products(&mut self, net: &LayerNetwork<F>) {
        self.small_batch = false;
        for (layer, slot) in net.layers.iter().zip(&mut self.layers) {
            layer.use_general_products(&mut slot.kind);
        }
    }

    /// Whether a mini-batch of `m` examples goes through [`small_batch`]'s kernels (where the
    /// weights are contiguous, as a network's always are; otherwise general products).
    pub fn small_batch_kernels(&self, m: usize) -> bool {
        self.small_batch && (1..=small_batch::MAX_EXAMPLES).contains(&m)
    }

    /// From now on, adds the time each [`Phase`] of each layer takes to
    /// [`Pass::phase_seconds`].
    pub fn time_phases(&mut self) {
        self.clock = Some(Clock {
            last: Instant::now(),
            seconds: vec![[0.0; Phase::ALL.len()]; self.layers.len()],
        });
    }

    /// Seconds spent so far in each phase of each layer, `[layer][phase as usize]`, if
    /// [`Pass::time_phases`] was called.
    pub fn phase_seconds(&self) -> Option<&[[f64; Phase::ALL.len()]]> {
        self.clock.as_ref().map(|c| c.seconds.as_slice())
    }

    /// Copies the examples `batch` of `data` (at most `m_max`) into the input buffer.
    pub fn gather(&mut self, data: &Dataset<F>, batch: &[usize]) {
        self.gather_labels(data, batch);
        let hw = self.x.ncols() / self.m_max;
        for (e, &k) in batch.iter().enumerate() {
            data.copy_row(k, self.row.view_mut());
            for (c, mut channel) in self.x.outer_iter_mut().enumerate() {
                channel
                    .slice_mut(s![e * hw..(e + 1) * hw])
                    .assign(&self.row.slice(s![c * hw..(c + 1) * hw]));
            }
        }
        mark(&mut self.clock, 0, Phase::Gather);
    }

    /// [`Pass::gather`] without the images: the labels of `batch`, for a pass that starts
    /// after the first layer ([`Pass::output_windows`]).
    pub fn gather_labels(&mut self, data: &Dataset<F>, batch: &[usize]) {
        assert!(
            batch.len() <= self.m_max,
            "a mini-batch larger than its buffers"
        );
        restart(&mut self.clock);
        self.m = batch.len();
        self.masked = false;
        self.labels.clear();
        self.labels.extend(batch.iter().map(|&k| data.labels()[k]));
    }

    /// Draws the dropout masks of the gathered mini-batch — example by example, within an
    /// example layer by layer, input by input — each input kept with probability 1 − p of
    /// its layer. The next [`Pass::forward`] in training applies them.
    ///
    /// Split between the pass's threads by examples: each thread draws the masks of
    /// consecutive examples from a copy of the generator set to where those examples' draws
    /// begin (every mask takes one `u64`, two of its 32-bit words), and `rng` is then moved
    /// past them all — the masks, and the generator after them, of one thread drawing all.
    pub fn draw_masks(&mut self, rng: &mut SeededRng) {
        restart(&mut self.clock);
        self.masked = true;
        if self.layers.iter().all(|s| s.dropout == 0.0) {
            return;
        }
        let ranges: Vec<Range<usize>> = even_ranges(self.m, self.parts).collect();
        let mut work: Vec<_> = ranges.iter().map(|_| Vec::new()).collect();
        let mut words_per_example = 0u128;
        for slot in self.layers.iter_mut().filter(|s| s.dropout > 0.0) {
            words_per_example += 2 * slot.mask.ncols() as u128;
            let mut rest = slot.mask.view_mut();
            for (rows, part) in ranges.iter().zip(&mut work) {
                let (these, after) = rest.split_at(Axis(0), rows.len());
                part.push((slot.dropout, these));
                rest = after;
            }
        }
        let start = rng.get_word_pos();
        let mut work: Vec<_> = work
            .into_iter()
            .zip(&ranges)
            .map(|(masks, rows)| {
                let mut part_rng = crate::rng::restore(&crate::rng::save(rng));
                part_rng.set_word_pos(start + rows.start as u128 * words_per_example);
                (masks, rows.len(), part_rng)
            })
            .collect();
        fork_join(&mut work, |(masks, examples, rng)| {
            for e in 0..*examples {
                for (p, mask) in masks.iter_mut() {
                    dropout::keep(*p, rng, mask.row_mut(e));
                }
            }
        });
        rng.set_word_pos(start + self.m as u128 * words_per_example);
        // Drawn example by example across the layers, so timed as a whole, at the first
        // layer that drops inputs.
        if let Some(l) = self.layers.iter().position(|s| s.dropout > 0.0) {
            mark(&mut self.clock, l, Phase::Masks);
        }
    }

    /// The mask buffer of layer `l` (`(m_max, n_in)`, empty without dropout), to set masks by
    /// hand as the reference tests do; the next training pass applies them.
    pub fn masks_mut(&mut self, l: usize) -> &mut Array2<F> {
        self.masked = true;
        &mut self.layers[l].mask
    }

    /// Whether the layer of `slot` applies its masks in this pass: drawn, in training, where
    /// it drops inputs.
    fn mask(&self, slot: &Slot<F>) -> bool {
        self.training && self.masked && slot.dropout > 0.0
    }

    /// The forward pass of the gathered examples. In training the drawn dropout masks apply;
    /// otherwise every input is used and a dense layer's weighted input is scaled by 1 − p.
    pub fn forward(&mut self, net: &LayerNetwork<F>) {
        self.forward_layers(net, 0..net.layers.len());
    }

    /// [`Pass::forward`] through the layers `layers` only, the output of the one before them
    /// already in place.
    pub fn forward_layers(&mut self, net: &LayerNetwork<F>, layers: Range<usize>) {
        let small = self.small_batch_kernels(self.m);
        restart(&mut self.clock);
        for l in layers {
            let masked = self.mask(&self.layers[l]);
            let (before, rest) = self.layers.split_at_mut(l);
            let slot = &mut rest[0];
            let mut pass = Forward {
                m: self.m,
                training: self.training,
                small,
                parts: self.parts,
                input: before.last().map_or(self.x.view(), |p| p.out.view()),
                mask: masked.then(|| slot.mask.view()),
                out: slot.out.view_mut(),
                timer: Timer {
                    clock: &mut self.clock,
                    layer: l,
                },
            };
            net.layers[l].forward(&mut slot.kind, &mut pass);
        }
    }

    /// Layer `l`'s output `(C, m_max·H·W)` in windows of consecutive examples, `sizes`
    /// examples each, in order: where the passes of a mini-batch's shares put theirs
    /// ([`Pass::put_output`]) for this pass to go on from.
    pub fn output_windows(&mut self, l: usize, sizes: &[usize]) -> Vec<ArrayViewMut2<'_, F>> {
        let out = self.layers[l].out.view_mut();
        let hw = out.ncols() / self.m_max;
        let mut rest = out;
        let mut windows = Vec::with_capacity(sizes.len());
        for &n in sizes {
            let (window, after) = rest.split_at(Axis(1), n * hw);
            windows.push(window);
            rest = after;
        }
        windows
    }

    /// Layer `l`'s output error in the windows of [`Pass::output_windows`], after a backward
    /// pass through the layers after it: where the shares' passes take theirs from
    /// ([`Pass::take_error`]).
    pub fn error_windows(&self, l: usize, sizes: &[usize]) -> Vec<ArrayView2<'_, F>> {
        let d_out = &self.layers[l].d_out;
        let hw = d_out.ncols() / self.m_max;
        let starts = sizes.iter().scan(0, |at, &n| {
            *at += n * hw;
            Some((*at - n * hw, n * hw))
        });
        starts
            .map(|(at, len)| d_out.slice(s![.., at..at + len]))
            .collect()
    }

    /// Copies layer `l`'s output of the gathered examples, `(C, m·H·W)`, into `to`.
    pub fn put_output(&self, l: usize, to: &mut ArrayViewMut2<F>) {
        let cols = to.ncols();
        to.assign(&self.layers[l].out.slice(s![.., ..cols]));
    }

    /// Sets the error of layer `l`'s output of the gathered examples, `(C, m·H·W)`, from
    /// `from`.
    pub fn take_error(&mut self, l: usize, from: ArrayView2<F>) {
        let cols = from.ncols();
        self.layers[l].d_out.slice_mut(s![.., ..cols]).assign(&from);
    }

    /// The network's output for the gathered examples, `(classes, m)`.
    pub fn output(&self) -> ArrayView2<'_, F> {
        let last = self.layers.last().expect("a network has layers");
        last.out.slice(s![.., ..self.m])
    }

    /// The labels of the gathered examples.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The backward pass after a training [`Pass::forward`]: leaves ∇ of every parameter of
    /// every layer, summed over the mini-batch, in the pass ([`Pass::gradients`]).
    pub fn backward(&mut self, net: &LayerNetwork<F>) {
        self.output_error();
        self.backward_layers(net, 0..net.layers.len());
    }

    /// [`Pass::backward`] through the layers `layers` only, the error of the last one's
    /// output already in place (its `d_out`).
    pub fn backward_layers(&mut self, net: &LayerNetwork<F>, layers: Range<usize>) {
        for l in layers.rev() {
            self.backward_layer(l, |slot, pass| net.layers[l].backward(slot, pass));
        }
    }

    /// The training step's backward pass after a training [`Pass::forward`]: the same
    /// errors as [`Pass::backward`], with each layer updated by `network3.py`'s rule (see
    /// [`Pass::update`]) as soon as the error of its input has been computed from its weights.
    pub fn backward_update(
        &mut self,
        net: &mut LayerNetwork<F>,
        eta: f64,
        lambda: f64,
        batches: usize,
    ) {
        let rate = self.rate(eta, lambda, batches);
        self.backward_update_from(net, 0, rate);
    }

    /// [`Pass::backward_update`] of the layers from `first` on, with the update's `rate`:
    /// the error of layer `first`'s input is left in the output error of the layer before.
    pub fn backward_update_from(&mut self, net: &mut LayerNetwork<F>, first: usize, rate: Rate<F>) {
        self.output_error();
        for (l, layer) in net.layers.iter_mut().enumerate().skip(first).rev() {
            self.backward_layer(l, |slot, pass| layer.backward_update(slot, pass, rate));
        }
    }

    /// `(decay, scale)` of `network3.py`'s update of the gathered mini-batch.
    fn rate(&self, eta: f64, lambda: f64, batches: usize) -> Rate<F> {
        rate(eta, lambda, batches, self.m)
    }

    /// Examples gathered.
    pub fn examples(&self) -> usize {
        self.m
    }

    /// BP1 for softmax and the log-likelihood cost, δᴸ = a − y, into the last layer's `d_out`.
    fn output_error(&mut self) {
        assert!(self.training, "backward needs a pass made for training");
        let m = self.m;
        restart(&mut self.clock);
        let last = self.layers.last_mut().expect("a network has layers");
        let mut delta = last.d_out.slice_mut(s![.., ..m]);
        delta.assign(&last.out.slice(s![.., ..m]));
        for (e, &label) in self.labels.iter().enumerate() {
            delta[[usize::from(label), e]] -= F::one();
        }
    }

    /// Layer `l`'s part of the backward pass, `step`: from the error of its output (in its
    /// `d_out`) to its gradients — or its update — and the error of its input (the previous
    /// layer's `d_out`).
    fn backward_layer(
        &mut self,
        l: usize,
        step: impl FnOnce(&mut LayerBuffers<F>, &mut Backward<'_, F>),
    ) {
        let small = self.small_batch_kernels(self.m);
        let masked = self.mask(&self.layers[l]);
        let (before, rest) = self.layers.split_at_mut(l);
        let slot = &mut rest[0];
        let (input, d_input) = match before.last_mut() {
            Some(prev) => (prev.out.view(), Some(prev.d_out.view_mut())),
            None => (self.x.view(), None),
        };
        let mut pass = Backward {
            m: self.m,
            small,
            parts: self.parts,
            input,
            mask: masked.then(|| slot.mask.view()),
            out: slot.out.view(),
            d_out: slot.d_out.view_mut(),
            d_input,
            timer: Timer {
                clock: &mut self.clock,
                layer: l,
            },
        };
        step(&mut slot.kind, &mut pass);
    }

    /// The gradients of layer `l`'s parameters from the last [`Pass::backward`], summed over
    /// the mini-batch, in the order of [`super::Layer::parameters`].
    pub fn gradients(&self, net: &LayerNetwork<F>, l: usize) -> Vec<ArrayViewD<'_, F>> {
        net.layers[l].gradients(&self.layers[l].kind)
    }

    /// `network3.py`'s update from the last [`Pass::backward`]: W ← (1 − ηλ/B)·W − (η/m)·∇W
    /// and b ← b − (η/m)·∇b, where B is the number of mini-batches in the training set (the
    /// L2 term ½λ‖W‖²/B of its cost).
    pub fn update(&mut self, net: &mut LayerNetwork<F>, eta: f64, lambda: f64, batches: usize) {
        let rate = self.rate(eta, lambda, batches);
        restart(&mut self.clock);
        for (l, (layer, slot)) in net.layers.iter_mut().zip(&self.layers).enumerate() {
            layer.update(&slot.kind, rate);
            mark(&mut self.clock, l, Phase::Update);
        }
    }
}

/// `(decay, scale)` of `network3.py`'s update after a mini-batch of `m` examples, with
/// `batches` mini-batches in the training set: W ← decay·W − scale·∇W with decay = 1 − ηλ/B
/// and scale = η/m.
pub fn rate<F: Real>(eta: f64, lambda: f64, batches: usize, m: usize) -> Rate<F> {
    (
        F::of(1.0 - eta * lambda / batches as f64),
        F::of(eta / m as f64),
    )
}

/// Examples scored per forward pass when evaluating a whole data set. Larger chunks make
/// longer products, but past about 50 examples a convolution's unrolled patches and weighted
/// inputs outgrow the caches: scoring the 10,000 test images with the book's two-conv network
/// took a quarter less time in chunks of 50 than of 200 or 20.
pub const EVAL_CHUNK: usize = 50;

impl<F: Real> LayerNetwork<F> {
    /// `f(output, labels)` for consecutive chunks of `data`, in order, each output `(classes,
    /// chunk)` computed as at evaluation (no dropout), with the chunk's labels. The chunks
    /// ([`EVAL_CHUNK`] examples) are shared between the threads, consecutive chunks to each,
    /// with a pass of its own ([`crate::backend::map_ranges`]); they are the same on any number of threads, and so is
    /// every output.
    pub fn map_outputs<'d, R: Send>(
        &self,
        data: &'d Dataset<F>,
        f: impl Fn(ArrayView2<F>, &'d [u8]) -> R + Sync,
    ) -> Vec<R> {
        let m = EVAL_CHUNK.min(data.len()).max(1);
        let indices: Vec<usize> = (0..data.len()).collect();
        let chunks: Vec<&[usize]> = indices.chunks(EVAL_CHUNK).collect();
        let parts = crate::backend::map_ranges(chunks.len(), |range| {
            let mut pass = Pass::new(self, m, false);
            let mut results = Vec::with_capacity(range.len());
            for chunk in &chunks[range] {
                pass.gather(data, chunk);
                pass.forward(self);
                let start = chunk.first().copied().unwrap_or(0);
                results.push(f(pass.output(), &data.labels()[start..start + chunk.len()]));
            }
            results
        });
        parts.into_iter().flatten().collect()
    }

    /// Calls `visit(output, labels)` for consecutive chunks of `data`, in order
    /// ([`LayerNetwork::map_outputs`]).
    pub fn for_each_output(&self, data: &Dataset<F>, mut visit: impl FnMut(ArrayView2<F>, &[u8])) {
        for (out, labels) in self.map_outputs(data, |out, labels| (out.to_owned(), labels)) {
            visit(out.view(), labels);
        }
    }
}
