//! The forward and backward passes of a whole mini-batch through a [`LayerNetwork`], with
//! every buffer they need allocated once ([`Pass::new`]) and reused: after the first
//! mini-batch a training step allocates nothing. A smaller last mini-batch uses the first
//! columns of each buffer (the first rows of a dense layer's `input`, `mask` and `d_input`).
//!
//! Forward: each layer reads the previous layer's output (the images, for the first) and
//! writes its own — im2col, one product and the pooling for a [`super::ConvPool`] (or, for one
//! with short sums like the book's first, [`direct_conv`]'s product without im2col), a gather
//! and one product for a [`super::Dense`] layer. Backward (BP1–BP4 in matrix form): the
//! softmax layer's error is δᴸ = a − y (eq. 84, log-likelihood cost); each layer turns the
//! error of its output into ∇W, ∇b (summed over the mini-batch) and the error of its input,
//! which is the previous layer's output error. The update is then `network3.py`'s:
//! W ← W − η(∇W/m + λW/B), b ← b − η∇b/m, with B = n/m mini-batches in the training set.
//!
//! Two ways through the backward pass: [`Pass::backward`] leaves ∇W and ∇b in the pass (for
//! the gradient checks, and to read), and [`Pass::update`] then applies them; the training
//! step, [`Pass::backward_update`], updates each layer as soon as its input's error is known.
//! There a dense layer never stores ∇W: with a mini-batch of up to
//! [`small_batch::MAX_EXAMPLES`] its input error and update are one pass over W
//! ([`small_batch::backward_update`]), otherwise the update is one product into W
//! (W ← decay·W − scale·δ·x, as network2's step does). The tests hold the two ways to each
//! other.
//!
//! Buffers per layer (m examples; see [`super::conv_pool`] and [`super::dense`] for shapes):
//! `cols` (none where [`direct_conv`] needs neither patches nor ∂C/∂cols) and `z` for a
//! convolution (reused for ∂C/∂cols and δ_Z on the way back), `input`, `mask` and `d_input` (∂C/∂input) for a
//! dense layer, `out` and `d_out` — the output and its error — for every layer, and the sums
//! `nabla_w`, `nabla_b`.

use std::time::Instant;

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, ArrayView2, Zip};

use crate::data::Dataset;
use crate::model::activation::Output;
use crate::model::dropout;
use crate::real::Real;
use crate::rng::SeededRng;

use super::conv_pool::{col2im, im2col, pool_backward, pool_forward, ConvPool};
use super::dense::{gather, scatter, Dense};
use super::{direct_conv, small_batch};
use super::{Layer, LayerNetwork};

/// One layer's buffers; those its kind does not use are empty.
#[derive(Clone, Debug)]
struct Buffers<F: Real> {
    /// Convolution: whether its forward product and ∇W go through [`direct_conv`]'s kernels
    /// instead of im2col and general products.
    direct: bool,
    /// Convolution: `(C·K·K, m·H′·W′)`, the unrolled patches, then ∂C/∂cols (empty where
    /// the products are [`direct`](Buffers::direct) and no ∂C/∂cols is computed: a first
    /// layer, or any layer outside training).
    cols: Array2<F>,
    /// Convolution: `(F, m·H′·W′)`, the weighted inputs before pooling, then δ_Z.
    z: Array2<F>,
    /// Convolution: for each pooled output, where its block's maximum was (its offset from the
    /// block's corner in `z`).
    argmax: Vec<u32>,
    /// Dense: `(m, n_in)`, the layer's (masked) input.
    input: Array2<F>,
    /// Dense with dropout: `(m, n_in)`, 1 for a kept input, 0 for a dropped one.
    mask: Array2<F>,
    /// Dense after another layer, in training: `(m, n_in)`, ∂C/∂input.
    d_input: Array2<F>,
    /// Dense: scratch space of [`small_batch`]'s kernels.
    packed: Vec<F>,
    /// `(C, m·H·W)` or `(n_out, m)`: the layer's output.
    out: Array2<F>,
    /// Same shape as `out`: ∂C/∂out, then δ.
    d_out: Array2<F>,
    nabla_w: Array2<F>,
    nabla_b: Array1<F>,
}

/// The parts of a training step, timed per layer when [`Pass::time_phases`] asks (`nndl
/// bench --phases`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Copying the mini-batch's images into the input buffer (counted at the first layer).
    Gather,
    /// Drawing a dense layer's dropout masks.
    Masks,
    /// A convolution's [`im2col`].
    Im2col,
    /// A convolution's forward product W·cols.
    ConvForward,
    /// Max-pooling, bias and activation ([`pool_forward`]).
    Pool,
    /// A dense layer's gather, forward product and activation (or softmax).
    DenseForward,
    /// Backprop through the activation and the pooling ([`pool_backward`]).
    PoolBackward,
    /// A convolution's ∇W = δ_Z·colsᵀ.
    ConvGradient,
    /// A convolution's ∂C/∂cols = Wᵀ·δ_Z.
    ConvInputError,
    /// A convolution's [`col2im`].
    Col2im,
    /// A dense layer's f′, ∇b, ∇W = δ·input and ∂C/∂input = δᵀ·W with its scatter (and in
    /// the training step its update, done in the same pass over W).
    DenseBackward,
    /// The update of the layer's weights and biases (a dense layer's in the training step:
    /// see [`Phase::DenseBackward`]).
    Update,
}

impl Phase {
    pub const ALL: [Phase; 12] = [
        Phase::Gather,
        Phase::Masks,
        Phase::Im2col,
        Phase::ConvForward,
        Phase::Pool,
        Phase::DenseForward,
        Phase::PoolBackward,
        Phase::ConvGradient,
        Phase::ConvInputError,
        Phase::Col2im,
        Phase::DenseBackward,
        Phase::Update,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Gather => "gather the mini-batch",
            Phase::Masks => "draw dropout masks",
            Phase::Im2col => "im2col",
            Phase::ConvForward => "product W·cols",
            Phase::Pool => "max-pool, bias, activation",
            Phase::DenseForward => "gather, product W·x, activation",
            Phase::PoolBackward => "f′ and unpool",
            Phase::ConvGradient => "product ∇W = δ·colsᵀ",
            Phase::ConvInputError => "product Wᵀ·δ",
            Phase::Col2im => "col2im",
            Phase::DenseBackward => "f′, products δᵀ·W and ∇W = δ·x, update",
            Phase::Update => "update",
        }
    }
}

/// Seconds spent in each [`Phase`] of each layer.
#[derive(Clone, Debug)]
struct Clock {
    last: Instant,
    /// `seconds[layer][phase]`.
    seconds: Vec<[f64; Phase::ALL.len()]>,
}

/// Adds the time since the last mark to `phase` of `layer`, when timing.
fn mark(clock: &mut Option<Clock>, layer: usize, phase: Phase) {
    if let Some(clock) = clock {
        let now = Instant::now();
        clock.seconds[layer][phase as usize] += (now - clock.last).as_secs_f64();
        clock.last = now;
    }
}

/// Starts the time of the next phase now, when timing.
fn restart(clock: &mut Option<Clock>) {
    if let Some(clock) = clock {
        clock.last = Instant::now();
    }
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
    layers: Vec<Buffers<F>>,
    /// Whether a dense layer's products go through [`small_batch`]'s kernels when the
    /// mini-batch is small enough (on CPUs with FMA).
    small_batch: bool,
    /// Per-phase times, when asked for.
    clock: Option<Clock>,
}

impl<F: Real> Pass<F> {
    /// Buffers for `net` and up to `m_max` examples; `training` adds the backward pass's.
    pub fn new(net: &LayerNetwork<F>, m_max: usize, training: bool) -> Self {
        let empty = || Array2::zeros((0, 0));
        let [c, h, w] = net.input;
        let layers = net
            .layers
            .iter()
            .enumerate()
            .map(|(l, layer)| {
                let [oc, oh, ow] = layer.output();
                let out = Array2::zeros((oc, m_max * oh * ow));
                let d_out = if training { out.clone() } else { empty() };
                let (nabla_w, nabla_b) = if training {
                    (
                        Array2::zeros(layer.weights().raw_dim()),
                        Array1::zeros(layer.biases().len()),
                    )
                } else {
                    (empty(), Array1::zeros(0))
                };
                let mut buffers = Buffers {
                    direct: false,
                    cols: empty(),
                    z: empty(),
                    argmax: Vec::new(),
                    input: empty(),
                    mask: empty(),
                    d_input: empty(),
                    packed: Vec::new(),
                    out,
                    d_out,
                    nabla_w,
                    nabla_b,
                };
                match layer {
                    Layer::ConvPool(conv) => {
                        let (ho, wo) = conv.map();
                        buffers.direct = direct_conv::applies::<F>(conv.input, conv.filter);
                        // Without im2col, cols holds only ∂C/∂cols, which a first layer
                        // and evaluation do not compute.
                        if !buffers.direct || (training && l > 0) {
                            buffers.cols = cols_buffer(conv, m_max);
                        }
                        buffers.z = Array2::zeros((conv.filters, m_max * ho * wo));
                        buffers.argmax = vec![0; oc * m_max * oh * ow];
                    }
                    Layer::FullyConnected { dense, .. } | Layer::Softmax(dense) => {
                        let n_in = dense.weights.ncols();
                        buffers.input = Array2::zeros((m_max, n_in));
                        if training && dense.dropout > 0.0 {
                            buffers.mask = Array2::zeros((m_max, n_in));
                        }
                        if training && l > 0 {
                            buffers.d_input = Array2::zeros((m_max, n_in));
                        }
                    }
                }
                buffers
            })
            .collect();
        Pass {
            m_max,
            m: 0,
            training,
            x: Array2::zeros((c, m_max * h * w)),
            row: Array1::zeros(c * h * w),
            labels: Vec::with_capacity(m_max),
            masked: false,
            layers,
            small_batch: small_batch::available(),
            clock: None,
        }
    }

    /// Sends every product through `general_mat_mul` — a dense layer's, as for mini-batches
    /// larger than [`small_batch::MAX_EXAMPLES`], and a convolution's, after im2col — to test
    /// and time [`small_batch`]'s and [`direct_conv`]'s kernels against them.
    pub fn use_general_products(&mut self, net: &LayerNetwork<F>) {
        self.small_batch = false;
        for (layer, buffers) in net.layers.iter().zip(&mut self.layers) {
            if let Layer::ConvPool(conv) = layer {
                if buffers.direct && buffers.cols.is_empty() {
                    buffers.cols = cols_buffer(conv, self.m_max);
                }
                buffers.direct = false;
            }
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
        assert!(
            batch.len() <= self.m_max,
            "a mini-batch larger than its buffers"
        );
        restart(&mut self.clock);
        let hw = self.x.ncols() / self.m_max;
        self.m = batch.len();
        self.masked = false;
        self.labels.clear();
        for (e, &k) in batch.iter().enumerate() {
            data.copy_row(k, self.row.view_mut());
            for (c, mut channel) in self.x.outer_iter_mut().enumerate() {
                channel
                    .slice_mut(s![e * hw..(e + 1) * hw])
                    .assign(&self.row.slice(s![c * hw..(c + 1) * hw]));
            }
            self.labels.push(data.labels()[k]);
        }
        mark(&mut self.clock, 0, Phase::Gather);
    }

    /// Draws the dropout masks of the gathered mini-batch — example by example, within an
    /// example layer by layer, input by input — each input kept with probability 1 − p of
    /// its layer. The next [`Pass::forward`] in training applies them.
    pub fn draw_masks(&mut self, net: &LayerNetwork<F>, rng: &mut SeededRng) {
        restart(&mut self.clock);
        for e in 0..self.m {
            for (layer, buffers) in net.layers.iter().zip(&mut self.layers) {
                if let Some(p) = layer.dropout().filter(|&p| p > 0.0) {
                    dropout::keep(p, rng, buffers.mask.row_mut(e));
                }
            }
        }
        // Drawn example by example across the layers, so timed as a whole, at the first
        // layer that drops inputs.
        if let Some(l) = net
            .layers
            .iter()
            .position(|l| l.dropout().is_some_and(|p| p > 0.0))
        {
            mark(&mut self.clock, l, Phase::Masks);
        }
        self.masked = true;
    }

    /// The mask buffer of layer `l` (`(m_max, n_in)`, empty without dropout), to set masks by
    /// hand as the reference tests do; the next training pass applies them.
    pub fn masks_mut(&mut self, l: usize) -> &mut Array2<F> {
        self.masked = true;
        &mut self.layers[l].mask
    }

    /// The forward pass of the gathered examples. In training the drawn dropout masks apply;
    /// otherwise every input is used and a dense layer's weighted input is scaled by 1 − p.
    pub fn forward(&mut self, net: &LayerNetwork<F>) {
        let m = self.m;
        let small = self.small_batch_kernels(m);
        let clock = &mut self.clock;
        restart(clock);
        for (l, layer) in net.layers.iter().enumerate() {
            let (before, rest) = self.layers.split_at_mut(l);
            let buffers = &mut rest[0];
            let prev = layer_input(before, &self.x);
            let [_, h, w] = layer.input();
            match layer {
                Layer::ConvPool(conv) => {
                    let (ho, wo) = conv.map();
                    let n = m * ho * wo;
                    if buffers.direct {
                        direct_conv::forward(
                            conv.weights.view(),
                            prev,
                            conv.input,
                            conv.filter,
                            m,
                            buffers.z.view_mut(),
                        );
                    } else {
                        im2col(prev, conv.input, conv.filter, m, buffers.cols.view_mut());
                        mark(clock, l, Phase::Im2col);
                        general_mat_mul(
                            F::one(),
                            &conv.weights,
                            &buffers.cols.slice(s![.., ..n]),
                            F::zero(),
                            &mut buffers.z.slice_mut(s![.., ..n]),
                        );
                    }
                    mark(clock, l, Phase::ConvForward);
                    pool_forward(
                        buffers.z.view(),
                        (ho, wo),
                        conv.pool,
                        m,
                        conv.biases.view(),
                        conv.activation,
                        buffers.out.view_mut(),
                        &mut buffers.argmax,
                    );
                    mark(clock, l, Phase::Pool);
                }
                Layer::FullyConnected { dense, .. } | Layer::Softmax(dense) => {
                    let use_mask = self.training && self.masked && dense.dropout > 0.0;
                    let mask = use_mask.then(|| buffers.mask.view());
                    gather(prev, h * w, m, mask, buffers.input.view_mut());
                    let scale = if self.training {
                        F::one()
                    } else {
                        F::of(1.0 - dense.dropout)
                    };
                    let input = buffers.input.slice(s![..m, ..]);
                    match (dense.weights.as_slice(), input.to_slice()) {
                        (Some(w), Some(x)) if small => {
                            let n_in = dense.weights.ncols();
                            let out = buffers.out.as_slice_mut().expect("outputs are contiguous");
                            small_batch::forward(
                                scale,
                                w,
                                n_in,
                                x,
                                m,
                                out,
                                self.m_max,
                                &mut buffers.packed,
                            );
                        }
                        _ => general_mat_mul(
                            scale,
                            &dense.weights,
                            &input.t(),
                            F::zero(),
                            &mut buffers.out.slice_mut(s![.., ..m]),
                        ),
                    }
                    let out = buffers.out.slice_mut(s![.., ..m]);
                    match layer {
                        Layer::FullyConnected { activation, .. } => {
                            activation.apply_layer(out, dense.biases.view(), true)
                        }
                        _ => Output::Softmax.apply_layer(out, dense.biases.view()),
                    }
                    mark(clock, l, Phase::DenseForward);
                }
            }
        }
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

    /// The backward pass after a training [`Pass::forward`]: leaves ∇W and ∇b of every layer,
    /// summed over the mini-batch, in `nabla_w` and `nabla_b` ([`Pass::nabla`]).
    pub fn backward(&mut self, net: &LayerNetwork<F>) {
        self.output_error();
        for (l, layer) in net.layers.iter().enumerate().rev() {
            self.backward_layer(l, LayerRef::Read(layer));
        }
    }

    /// The training step's backward pass after a training [`Pass::forward`]: the same
    /// errors as [`Pass::backward`], with each layer updated by `network3.py`'s rule (see
    /// [`Pass::update`]) as soon as the error of its input has been computed from its weights.
    /// Dense layers do not store ∇W (see the module's introduction).
    pub fn backward_update(
        &mut self,
        net: &mut LayerNetwork<F>,
        eta: f64,
        lambda: f64,
        batches: usize,
    ) {
        let step = self.step(eta, lambda, batches);
        self.output_error();
        for (l, layer) in net.layers.iter_mut().enumerate().rev() {
            self.backward_layer(l, LayerRef::Update(layer, step));
        }
    }

    /// `(decay, scale)` of `network3.py`'s update: W ← decay·W − scale·∇W.
    fn step(&self, eta: f64, lambda: f64, batches: usize) -> (F, F) {
        (
            F::of(1.0 - eta * lambda / batches as f64),
            F::of(eta / self.m as f64),
        )
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

    /// Layer `l`'s part of the backward pass: from the error of its output (in its `d_out`)
    /// to its gradients — or its update — and the error of its input (the previous layer's
    /// `d_out`).
    fn backward_layer(&mut self, l: usize, mut layer: LayerRef<'_, F>) {
        let m = self.m;
        let small = self.small_batch_kernels(m);
        let clock = &mut self.clock;
        let (before, rest) = self.layers.split_at_mut(l);
        let buffers = &mut rest[0];
        let [_, h, w] = layer.get().input();
        match layer.get() {
            Layer::ConvPool(conv) => {
                let (ho, wo) = conv.map();
                let n = m * ho * wo;
                pool_backward(
                    buffers.out.view(),
                    buffers.d_out.view_mut(),
                    &buffers.argmax,
                    (ho, wo),
                    conv.pool,
                    m,
                    conv.activation,
                    buffers.z.view_mut(),
                    &mut buffers.nabla_b,
                );
                mark(clock, l, Phase::PoolBackward);
                // BP4: ∇W = δ_Z · colsᵀ.
                if buffers.direct {
                    direct_conv::weight_gradient(
                        buffers.z.view(),
                        layer_input(before, &self.x),
                        conv.input,
                        conv.filter,
                        m,
                        buffers.nabla_w.view_mut(),
                    );
                } else {
                    general_mat_mul(
                        F::one(),
                        &buffers.z.slice(s![.., ..n]),
                        &buffers.cols.slice(s![.., ..n]).t(),
                        F::zero(),
                        &mut buffers.nabla_w,
                    );
                }
                mark(clock, l, Phase::ConvGradient);
                let dz = buffers.z.slice(s![.., ..n]);
                if let Some(prev) = before.last_mut() {
                    // BP2: ∂C/∂cols = Wᵀ · δ_Z, folded back onto the input.
                    let mut d_cols = buffers.cols.slice_mut(s![.., ..n]);
                    general_mat_mul(F::one(), &conv.weights.t(), &dz, F::zero(), &mut d_cols);
                    mark(clock, l, Phase::ConvInputError);
                    col2im(
                        buffers.cols.view(),
                        conv.input,
                        conv.filter,
                        m,
                        prev.d_out.view_mut(),
                    );
                    mark(clock, l, Phase::Col2im);
                }
                if let LayerRef::Update(layer, step) = &mut layer {
                    let (weights, biases) = layer.parameters_mut();
                    apply_update(weights, biases, &buffers.nabla_w, &buffers.nabla_b, *step);
                    mark(clock, l, Phase::Update);
                }
            }
            Layer::FullyConnected { .. } | Layer::Softmax(_) => {
                if let Layer::FullyConnected { activation, .. } = layer.get() {
                    // BP2's ⊙ f′(z), from the stored outputs.
                    Zip::from(&mut buffers.d_out.slice_mut(s![.., ..m]))
                        .and(buffers.out.slice(s![.., ..m]))
                        .for_each(|d, &a| *d *= activation.prime_from_output(a));
                }
                let has_prev = !before.is_empty();
                match &mut layer {
                    LayerRef::Read(layer) => {
                        let delta = buffers.d_out.slice(s![.., ..m]);
                        let input = buffers.input.slice(s![..m, ..]);
                        let dense = layer.dense().expect("a dense layer");
                        // BP3 and BP4: ∇b = Σ δ, ∇W = δ · input.
                        for (nb, row) in buffers.nabla_b.iter_mut().zip(delta.rows()) {
                            *nb = row.sum();
                        }
                        general_mat_mul(F::one(), &delta, &input, F::zero(), &mut buffers.nabla_w);
                        if has_prev {
                            input_error(delta, &dense.weights, &mut buffers.d_input);
                        }
                    }
                    LayerRef::Update(layer, step) => {
                        let dense = layer.dense_mut().expect("a dense layer");
                        update_dense(dense, buffers, has_prev, m, small, *step);
                    }
                }
                if let Some(prev) = before.last_mut() {
                    // ∂C/∂input is zero where an input was dropped.
                    let dropout = layer.get().dropout().unwrap_or(0.0);
                    let mut d_input = buffers.d_input.slice_mut(s![..m, ..]);
                    if self.masked && dropout > 0.0 {
                        d_input *= &buffers.mask.slice(s![..m, ..]);
                    }
                    scatter(buffers.d_input.view(), h * w, m, prev.d_out.view_mut());
                }
                mark(clock, l, Phase::DenseBackward);
            }
        }
    }

    /// ∇W and ∇b of layer `l` from the last [`Pass::backward`], summed over the mini-batch.
    pub fn nabla(&self, l: usize) -> (&Array2<F>, &Array1<F>) {
        (&self.layers[l].nabla_w, &self.layers[l].nabla_b)
    }

    /// `network3.py`'s update from the last [`Pass::backward`]: W ← (1 − ηλ/B)·W − (η/m)·∇W
    /// and b ← b − (η/m)·∇b, where B is the number of mini-batches in the training set (the
    /// L2 term ½λ‖W‖²/B of its cost).
    pub fn update(&mut self, net: &mut LayerNetwork<F>, eta: f64, lambda: f64, batches: usize) {
        let step = self.step(eta, lambda, batches);
        restart(&mut self.clock);
        for (l, (layer, buffers)) in net.layers.iter_mut().zip(&self.layers).enumerate() {
            let (weights, biases) = layer.parameters_mut();
            apply_update(weights, biases, &buffers.nabla_w, &buffers.nabla_b, step);
            mark(&mut self.clock, l, Phase::Update);
        }
    }
}

/// The layer a backward step reads — and, in the training step, updates with `(decay,
/// scale)`.
enum LayerRef<'a, F: Real> {
    Read(&'a Layer<F>),
    Update(&'a mut Layer<F>, (F, F)),
}

impl<F: Real> LayerRef<'_, F> {
    fn get(&self) -> &Layer<F> {
        match self {
            LayerRef::Read(layer) => layer,
            LayerRef::Update(layer, _) => layer,
        }
    }
}

/// W ← decay·W − scale·∇W, b ← b − scale·∇b.
/// The input of the layer after the layers with buffers `before`: the previous layer's output,
/// or the images `x` for the first.
fn layer_input<'a, F: Real>(before: &'a [Buffers<F>], x: &'a Array2<F>) -> ArrayView2<'a, F> {
    match before.last() {
        Some(b) => b.out.view(),
        None => x.view(),
    }
}

/// A convolution's `cols` buffer, `(C·K·K, m_max·H′·W′)`.
fn cols_buffer<F: Real>(conv: &ConvPool<F>, m_max: usize) -> Array2<F> {
    let (ho, wo) = conv.map();
    let k = conv.filter;
    Array2::zeros((conv.input[0] * k * k, m_max * ho * wo))
}

fn apply_update<F: Real>(
    weights: &mut Array2<F>,
    biases: &mut Array1<F>,
    nabla_w: &Array2<F>,
    nabla_b: &Array1<F>,
    (decay, scale): (F, F),
) {
    Zip::from(weights)
        .and(nabla_w)
        .for_each(|w, &g| *w = decay * *w - scale * g);
    biases.scaled_add(-scale, nabla_b);
}

/// A dense layer's input error (BP2, from the weights before the update) into `d_input` when
/// `has_prev`, then its update from δ (the first m columns of `d_out`) and its input (BP3,
/// BP4): one pass of [`small_batch::backward_update`] over W when `small` and there is an
/// input error to compute, else one product for each.
fn update_dense<F: Real>(
    dense: &mut Dense<F>,
    buffers: &mut Buffers<F>,
    has_prev: bool,
    m: usize,
    small: bool,
    (decay, scale): (F, F),
) {
    let n_in = dense.weights.ncols();
    let m_max = buffers.d_out.ncols();
    let input = buffers.input.slice(s![..m, ..]);
    let w = dense.weights.as_slice_mut();
    if let (true, true, Some(x), Some(w)) = (small, has_prev, input.to_slice(), w) {
        let b = dense
            .biases
            .as_slice_mut()
            .expect("a 1-d array is contiguous");
        let delta = buffers
            .d_out
            .as_slice()
            .expect("layer buffers are contiguous");
        let d_x = buffers
            .d_input
            .as_slice_mut()
            .expect("layer buffers are contiguous");
        let (step, packed) = ((decay, scale), &mut buffers.packed);
        small_batch::backward_update(w, b, n_in, delta, m_max, x, d_x, m, step, packed);
        return;
    }
    let delta = buffers.d_out.slice(s![.., ..m]);
    if has_prev {
        input_error(delta, &dense.weights, &mut buffers.d_input);
    }
    // W ← decay·W − scale·δ·input, one product; b ← b − scale·Σδ.
    general_mat_mul(-scale, &delta, &input, decay, &mut dense.weights);
    for (b, row) in dense.biases.iter_mut().zip(delta.rows()) {
        *b -= scale * row.sum();
    }
}

/// BP2 for a dense layer: ∂C/∂input = δᵀ·W into the first m rows of `d_input` `(m_max, n_in)`,
/// with δ `(n_out, m)`.
fn input_error<F: Real>(delta: ArrayView2<F>, weights: &Array2<F>, d_input: &mut Array2<F>) {
    let mut d_input = d_input.slice_mut(s![..delta.ncols(), ..]);
    general_mat_mul(F::one(), &delta.t(), weights, F::zero(), &mut d_input);
}

/// Examples scored per forward pass when evaluating a whole data set. Larger chunks make
/// longer products, but past about 50 examples a convolution's unrolled patches and weighted
/// inputs outgrow the caches: scoring the 10,000 test images with the book's two-conv network
/// took a quarter less time in chunks of 50 than of 200 or 20.
pub const EVAL_CHUNK: usize = 50;

impl<F: Real> LayerNetwork<F> {
    /// Calls `visit(output, labels)` for consecutive chunks of `data`, each output
    /// `(classes, chunk)`, computed as at evaluation (no dropout).
    pub fn for_each_output(&self, data: &Dataset<F>, mut visit: impl FnMut(ArrayView2<F>, &[u8])) {
        let mut pass = Pass::new(self, EVAL_CHUNK.min(data.len()).max(1), false);
        let indices: Vec<usize> = (0..data.len()).collect();
        for chunk in indices.chunks(EVAL_CHUNK) {
            pass.gather(data, chunk);
            pass.forward(self);
            visit(pass.output(), pass.labels());
        }
    }
}
