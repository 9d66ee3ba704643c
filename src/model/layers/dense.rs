//! `network3.py`'s `FullyConnectedLayer` and `SoftmaxLayer`: every input joined to every
//! neuron, out = f(W·x + b), or the softmax of W·x + b (eq. 78) for the output layer.
//!
//! Dropout is `network3.py`'s: while training, each *input* of the layer is kept with
//! probability 1 − p and zeroed otherwise, with no rescaling; evaluation uses every input and
//! scales the weighted input instead, f((1 − p)·W·x + b), which is what the layer computes on
//! average. (Chapter 3's [`crate::model::dropout`] for the fully-connected networks is the
//! *inverted* form of the same rule.)
//!
//! Shapes, with m examples: `weights` `(n_out, n_in)` — the transpose of `network3.py`'s `w`,
//! so that as in `network2.py` row j holds neuron j's weights; the layer's input `(m, n_in)`,
//! one example per row, so that each example's inputs lie together (what
//! [`super::small_batch`]'s kernels read); its output `(n_out, m)`, one example per column. A
//! layer after a convolution reads the previous output `(C, m·H·W)` as n_in = C·H·W values per
//! example in (channel, y, x) order, `network3.py`'s `reshape`: [`gather`] copies them into
//! rows, [`scatter`] sends the errors back.
//!
//! The two kinds ([`super::fully_connected`], [`super::softmax`]) differ only in what follows
//! the product — an activation or the softmax — and in δ; what they share is here: [`Dense`]'s
//! product, backprop from δ (BP2–BP4) and update, their buffers and their model-file weights.

use ndarray::linalg::general_mat_mul;
use ndarray::{
    s, Array1, Array2, ArrayD, ArrayView2, ArrayViewD, ArrayViewMut2, ArrayViewMutD, Axis,
};

use crate::backend::{even_ranges, fork_join};
use crate::model::export::layer::{Exported, Function, Product};
use crate::real::Real;

use super::item::Shape;
use super::kind::{self, apply_update, Backward, Buffer, Element, Forward, Parameter, Rate, Role};
use super::phase::Phase;
use super::reference::Trace;
use super::small_batch;

/// The weights and biases of a fully-connected or softmax layer.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(bound = "")]
pub struct Dense<F: Real = f64> {
    /// `(C, H, W)` of one example's input, n_in = C·H·W values.
    pub input: Shape,
    /// Probability of dropping each input while training.
    pub dropout: f64,
    /// `(n_out, n_in)`.
    pub weights: Array2<F>,
    /// `(n_out,)`.
    pub biases: Array1<F>,
}

/// Copies `m` examples of `prev` `(C, m·HW)` into `input` `(m, C·HW)`:
/// input[e, c·HW + p] = prev[c, e·HW + p], times `mask` (same shape as `input`) if given.
/// Each channel's HW values of an example are one copied run (one value, a transpose, after
/// another dense layer).
pub fn gather<F: Real>(
    prev: ArrayView2<F>,
    hw: usize,
    m: usize,
    mask: Option<ArrayView2<F>>,
    mut input: ArrayViewMut2<F>,
) {
    let n_in = input.ncols();
    {
        let to = input.as_slice_mut().expect("layer inputs are contiguous");
        for (c, row) in prev.outer_iter().enumerate() {
            let row = row.as_slice().expect("rows of activations are contiguous");
            if hw == 1 {
                for (e, &v) in row[..m].iter().enumerate() {
                    to[e * n_in + c] = v;
                }
            } else {
                for (e, example) in row[..m * hw].chunks_exact(hw).enumerate() {
                    to[e * n_in + c * hw..e * n_in + (c + 1) * hw].copy_from_slice(example);
                }
            }
        }
    }
    if let Some(mask) = mask {
        let mut to = input.slice_mut(s![..m, ..]);
        to *= &mask.slice(s![..m, ..]);
    }
}

/// The reverse of [`gather`]: d_prev[c, e·HW + p] = d_input[e, c·HW + p] (the mask already
/// applied to `d_input`).
pub fn scatter<F: Real>(d_input: ArrayView2<F>, hw: usize, m: usize, mut d_prev: ArrayViewMut2<F>) {
    let n_in = d_input.ncols();
    let from = d_input.as_slice().expect("layer inputs are contiguous");
    for (c, mut row) in d_prev.outer_iter_mut().enumerate() {
        let row = row
            .as_slice_mut()
            .expect("rows of activations are contiguous");
        if hw == 1 {
            for (e, v) in row[..m].iter_mut().enumerate() {
                *v = from[e * n_in + c];
            }
        } else {
            for (e, example) in row[..m * hw].chunks_exact_mut(hw).enumerate() {
                example.copy_from_slice(&from[e * n_in + c * hw..e * n_in + (c + 1) * hw]);
            }
        }
    }
}

/// Weights a dense layer must have for its products to be split between threads: with
/// fewer, a thread's share of a mini-batch of 10 is a few microseconds of work, and handing it
/// over costs about one. `ch6-conv`'s `fc:100` (288,000 weights), `ch6-fc`'s (78,400) and
/// `ch6-dropout`'s `fc:1000`s are split; the book's softmax layers (1,000 and 10,000) are not.
pub const SPLIT_WEIGHTS: usize = 32 * 1024;

/// Threads a dense layer of `n_out` neurons and `n_in` inputs splits its products between,
/// when `threads` are asked for: each takes consecutive neurons (rows of W), at least
/// [`SPLIT_WEIGHTS`] weights' worth.
pub fn split(n_out: usize, n_in: usize, threads: usize) -> usize {
    let weights = n_out.saturating_mul(n_in);
    threads.min(weights / SPLIT_WEIGHTS).clamp(1, n_out.max(1))
}

/// The end of a split [`Dense::backward_update`], the examples shared between the threads as
/// a mini-batch's shares are ([`even_ranges`]): for each example, the threads' parts of its
/// input error added up in order, d_x[e] += Σ_k part_k[e] (`others` holding the parts after
/// the first, each `(m_max, n_in)`), zeroed where an input was dropped, and [`scatter`]ed to
/// the previous layer — so that the examples of a share whose thread goes on with them (a
/// convolution's, [`super::shards`]) are written on that thread.
fn send_split_input_error<F: Real>(
    d_x: ArrayViewMut2<F>,
    others: &[F],
    mask: Option<ArrayView2<F>>,
    hw: usize,
    d_prev: ArrayViewMut2<F>,
    parts: usize,
) {
    let (m, n_in) = d_x.dim();
    let part_len = others.len() / (parts - 1).max(1);
    let (mut d_x, mut d_prev) = (d_x, d_prev);
    let mut work = Vec::with_capacity(parts);
    for range in even_ranges(m, parts) {
        let (rows, rest) = d_x.split_at(Axis(0), range.len());
        let (cols, after) = d_prev.split_at(Axis(1), range.len() * hw);
        work.push((range, rows, cols));
        (d_x, d_prev) = (rest, after);
    }
    fork_join(&mut work, |(range, d_x, d_prev)| {
        let flat = d_x.as_slice_mut().expect("rows of inputs are contiguous");
        for part in others.chunks(part_len).take(parts - 1) {
            let part = &part[range.start * n_in..range.end * n_in];
            for (d, &p) in flat.iter_mut().zip(part) {
                *d += p;
            }
        }
        if let Some(mask) = mask {
            *d_x *= &mask.slice(s![range.clone(), ..]);
        }
        scatter(d_x.view(), hw, range.len(), d_prev.view_mut());
    });
}

/// A dense layer's buffers in a pass.
#[derive(Clone, Debug)]
pub struct DenseBuffers<F: Real> {
    /// `(m_max, n_in)`: the layer's (masked) input.
    input: Array2<F>,
    /// After another layer, in training: `(m_max, n_in)`, ∂C/∂input.
    d_input: Array2<F>,
    /// Split between threads, after another layer, in training: `((parts − 1)·m_max, n_in)`,
    /// the input errors of the neurons of threads 2, 3, …, each `(m_max, n_in)`.
    d_input_parts: Array2<F>,
    /// Scratch space of [`small_batch`]'s kernels: the (masked) inputs, packed — one for
    /// each thread the layer is split between, after another layer in training (each packs
    /// its own), else one.
    packed: Vec<Vec<F>>,
    /// The examples whose inputs the last forward pass left packed, for the backward pass to
    /// use them again (0 for none), and whether in every thread's `packed` or in the first.
    packed_m: usize,
    packed_each: bool,
    /// `(n_out, n_in)`.
    nabla_w: Array2<F>,
    /// `(n_out,)`.
    nabla_b: Array1<F>,
}

impl<F: Real> Dense<F> {
    /// Weights N(0, `sd`²) then biases N(0, 1) — or, without `sd`, both zero (`network3.py`'s
    /// softmax layer).
    pub fn build(
        input: Shape,
        neurons: usize,
        dropout: f64,
        sd: Option<f64>,
        draw: &mut impl FnMut(f64) -> F,
    ) -> Self {
        let n_in: usize = input.iter().product();
        let (weights, biases) = match sd {
            Some(sd) => (
                Array2::from_shape_simple_fn((neurons, n_in), || draw(sd)),
                Array1::from_shape_simple_fn(neurons, || draw(1.0)),
            ),
            None => (Array2::zeros((neurons, n_in)), Array1::zeros(neurons)),
        };
        Dense {
            input,
            dropout,
            weights,
            biases,
        }
    }

    /// Neurons.
    pub fn n_out(&self) -> usize {
        self.weights.nrows()
    }

    /// `(n_out, 1, 1)`.
    pub fn output(&self) -> Shape {
        [self.n_out(), 1, 1]
    }

    pub fn allocate(buffers: &[Buffer]) -> DenseBuffers<F> {
        DenseBuffers {
            input: kind::zeros(buffers, "input"),
            d_input: kind::zeros(buffers, "d_input"),
            d_input_parts: kind::zeros(buffers, "d_input_parts"),
            packed: kind::reserve_rows(buffers, "packed"),
            packed_m: 0,
            packed_each: false,
            nabla_w: kind::zeros(buffers, "nabla_w"),
            nabla_b: kind::zeros_1d(buffers, "nabla_b"),
        }
    }

    pub fn parameters(&self) -> Vec<Parameter<'_, F>> {
        kind::weights_and_biases(&self.weights, &self.biases)
    }

    pub fn parameters_mut(&mut self) -> Vec<ArrayViewMutD<'_, F>> {
        kind::weights_and_biases_mut(&mut self.weights, &mut self.biases)
    }

    pub fn gradients<'a>(&self, buffers: &'a DenseBuffers<F>) -> Vec<ArrayViewD<'a, F>> {
        kind::gradient_pair(&buffers.nabla_w, &buffers.nabla_b)
    }

    /// The same layer computing in `G`.
    pub fn cast<G: Real>(&self) -> Dense<G> {
        Dense {
            input: self.input,
            dropout: self.dropout,
            weights: self.weights.mapv(|v| G::of(v.as_f64())),
            biases: self.biases.mapv(|v| G::of(v.as_f64())),
        }
    }

    /// The weighted input without its bias, W·x — times 1 − p outside training — into the
    /// first m columns of `pass.out` `(n_out, m_max)`, after [`gather`]ing the (masked) input.
    /// Split between threads by neurons ([`split`]): each computes its rows of z, the values
    /// one thread computes — after another layer in training, from inputs it packs itself
    /// ([`small_batch::pack_maps`]), so that no thread waits for another's packing and each
    /// reads the examples from where the previous layer computed them.
    pub fn product(&self, buffers: &mut DenseBuffers<F>, pass: &mut Forward<'_, F>) {
        let m = pass.m;
        let [_, h, w] = self.input;
        let scale = if pass.training {
            F::one()
        } else {
            F::of(1.0 - self.dropout)
        };
        let (n_out, n_in) = self.weights.dim();
        let rows = n_out.div_ceil(split(n_out, n_in, pass.parts));
        let (m_max, hw) = (pass.out.ncols(), h * w);
        let out = pass.out.as_slice_mut();
        buffers.packed_m = 0;
        let each = buffers.packed.len() > 1;
        if let (Some(w), Some(out), true, true) = (self.weights.as_slice(), out, pass.small, each) {
            // Each thread packs the whole mini-batch's inputs itself, from the previous
            // layer's output, and computes its neurons' weighted inputs.
            let (prev, mask) = (pass.input, pass.mask);
            let mut work: Vec<_> = w
                .chunks(rows * n_in)
                .zip(out.chunks_mut(rows * m_max))
                .zip(buffers.packed.iter_mut())
                .collect();
            fork_join(&mut work, |((w, z), packed)| {
                let packed = small_batch::pack_maps(prev, hw, m, mask, packed);
                small_batch::forward_packed(scale, w, n_in, packed, m, z, m_max);
            });
            (buffers.packed_m, buffers.packed_each) = (m, true);
            return;
        }
        gather(pass.input, hw, m, pass.mask, buffers.input.view_mut());
        let input = buffers.input.slice(s![..m, ..]);
        match (self.weights.as_slice(), input.to_slice()) {
            (Some(w), Some(x)) if pass.small => {
                let out = pass.out.as_slice_mut().expect("outputs are contiguous");
                let packed = small_batch::pack(x, n_in, m, &mut buffers.packed[0]);
                (buffers.packed_m, buffers.packed_each) = (m, false);
                let mut parts: Vec<_> = w
                    .chunks(rows * n_in)
                    .zip(out.chunks_mut(rows * m_max))
                    .collect();
                fork_join(&mut parts, |(w, z)| {
                    small_batch::forward_packed(scale, w, n_in, packed, m, z, m_max);
                });
            }
            _ => {
                let weights = self.weights.axis_chunks_iter(Axis(0), rows);
                let mut out = pass.out.slice_mut(s![.., ..m]);
                let mut parts: Vec<_> = weights
                    .zip(out.axis_chunks_iter_mut(Axis(0), rows))
                    .collect();
                fork_join(&mut parts, |(w, z)| {
                    general_mat_mul(scale, w, &input.t(), F::zero(), z);
                });
            }
        }
    }

    /// From δ (the first m columns of `pass.d_out`): ∇b = Σ δ (BP3), ∇W = δ·input (BP4) and
    /// ∂C/∂input = δᵀ·W (BP2).
    pub fn backward(&self, buffers: &mut DenseBuffers<F>, pass: &mut Backward<'_, F>) {
        let m = pass.m;
        let delta = pass.d_out.slice(s![.., ..m]);
        let input = buffers.input.slice(s![..m, ..]);
        for (nb, row) in buffers.nabla_b.iter_mut().zip(delta.rows()) {
            *nb = row.sum();
        }
        general_mat_mul(F::one(), &delta, &input, F::zero(), &mut buffers.nabla_w);
        if pass.d_input.is_some() {
            input_error(delta, &self.weights, &mut buffers.d_input);
        }
        self.send_input_error(buffers, pass);
    }

    /// The training step's [`Dense::backward`]: the input error (from the weights before the
    /// update), then the update from δ and the input without storing ∇W — one pass of
    /// [`small_batch::backward_update_packed`] over W when the kernels take the mini-batch and
    /// there is an input error to compute, else one product for each (W ← decay·W −
    /// scale·δ·input, as `network2.py`'s step does).
    ///
    /// Split between threads by neurons ([`split`]), as [`Dense::product`] is: each updates its
    /// rows of W, as one thread does, and computes their part of the input error — the first
    /// thread's into `d_input`, the others' beside it — and the parts are then added, in the
    /// threads' order, example by example.
    pub fn backward_update(
        &mut self,
        buffers: &mut DenseBuffers<F>,
        pass: &mut Backward<'_, F>,
        (decay, scale): Rate<F>,
    ) {
        let m = pass.m;
        let has_prev = pass.d_input.is_some();
        let (n_out, n_in) = self.weights.dim();
        let m_max = pass.d_out.ncols();
        let parts = split(n_out, n_in, pass.parts);
        let rows = n_out.div_ceil(parts);
        let input = buffers.input.slice(s![..m, ..]);
        let w = self.weights.as_slice_mut();
        if let (true, true, Some(x), Some(w)) = (pass.small, has_prev, input.to_slice(), w) {
            let b = self
                .biases
                .as_slice_mut()
                .expect("a 1-d array is contiguous");
            let delta = pass.d_out.as_slice().expect("layer buffers are contiguous");
            small_batch::update_biases(b, delta, m_max, m, scale);
            // The inputs as the forward pass packed them: in each thread's buffer, or in the
            // first, for all.
            let each = buffers.packed_each && buffers.packed_m == m;
            let packed = &mut buffers.packed;
            if buffers.packed_m != m {
                small_batch::pack(x, n_in, m, &mut packed[0]);
            }
            let packed: Vec<&[F]> = packed
                .iter()
                .map(|p| small_batch::packed(p, n_in, m))
                .take(if each { parts } else { 1 })
                .collect();
            let d_x = buffers
                .d_input
                .as_slice_mut()
                .expect("layer buffers are contiguous");
            let others = buffers
                .d_input_parts
                .as_slice_mut()
                .expect("layer buffers are contiguous");
            // Each part's input error: the first into d_x, the others after one another.
            let errors = std::iter::once(&mut *d_x).chain(others.chunks_mut(m_max * n_in));
            let mut work: Vec<_> = w
                .chunks_mut(rows * n_in)
                .zip(delta.chunks(rows * m_max))
                .zip(errors)
                .enumerate()
                .collect();
            fork_join(&mut work, |(k, ((w, delta), d_x))| {
                let (step, x) = ((decay, scale), packed[(*k).min(packed.len() - 1)]);
                small_batch::backward_update_packed(w, n_in, delta, m_max, x, d_x, m, step);
            });
            if parts > 1 {
                let [_, h, w] = self.input;
                let d_x = buffers.d_input.slice_mut(s![..m, ..]);
                let d_prev = pass.d_input.as_mut().expect("an input error to send");
                let d_prev = d_prev.slice_mut(s![.., ..m * h * w]);
                let others = buffers.d_input_parts.as_slice().expect("contiguous");
                send_split_input_error(d_x, others, pass.mask, h * w, d_prev, parts);
                pass.timer.mark(Phase::DenseBackward);
                return;
            }
        } else {
            let delta = pass.d_out.slice(s![.., ..m]);
            if has_prev {
                input_error(delta, &self.weights, &mut buffers.d_input);
            }
            // W ← decay·W − scale·δ·input, one product; b ← b − scale·Σδ.
            let mut work: Vec<_> = self
                .weights
                .axis_chunks_iter_mut(Axis(0), rows)
                .zip(self.biases.axis_chunks_iter_mut(Axis(0), rows))
                .zip(delta.axis_chunks_iter(Axis(0), rows))
                .collect();
            fork_join(&mut work, |((w, b), delta)| {
                general_mat_mul(-scale, delta, &input, decay, w);
                for (b, row) in b.iter_mut().zip(delta.rows()) {
                    *b -= scale * row.sum();
                }
            });
        }
        self.send_input_error(buffers, pass);
    }

    /// Zeroes ∂C/∂input where an input was dropped and [`scatter`]s it to the previous layer.
    fn send_input_error(&self, buffers: &mut DenseBuffers<F>, pass: &mut Backward<'_, F>) {
        let m = pass.m;
        if let Some(d_prev) = &mut pass.d_input {
            if let Some(mask) = pass.mask {
                let mut d_input = buffers.d_input.slice_mut(s![..m, ..]);
                d_input *= &mask.slice(s![..m, ..]);
            }
            let [_, h, w] = self.input;
            scatter(buffers.d_input.view(), h * w, m, d_prev.view_mut());
        }
        pass.timer.mark(Phase::DenseBackward);
    }

    pub fn update(&mut self, buffers: &DenseBuffers<F>, rate: Rate<F>) {
        let (w, b) = (&mut self.weights, &mut self.biases);
        apply_update(w, b, &buffers.nabla_w, &buffers.nabla_b, rate);
    }

    /// The reference's weighted input of one example ([`super::reference`]): z = W·x + b in
    /// `training` (with x masked by `mask`, left in `trace.input`), else z = (1 − p)·W·x + b.
    pub fn reference_product(
        &self,
        trace: &mut Trace<F>,
        training: bool,
        mask: Option<&[F]>,
    ) -> Vec<F> {
        let scale = if training {
            if let Some(mask) = mask {
                for (v, &m) in trace.input.iter_mut().zip(mask) {
                    *v *= m;
                }
            }
            F::one()
        } else {
            F::of(1.0 - self.dropout)
        };
        (0..self.weights.nrows())
            .map(|j| {
                let mut sum = F::zero();
                for (i, &v) in trace.input.iter().enumerate() {
                    sum += self.weights[[j, i]] * v;
                }
                scale * sum + self.biases[j]
            })
            .collect()
    }

    /// The reference's backprop of one example from δ: ∇b += δ (BP3), ∇W += δ·xᵀ (BP4), and
    /// ∂C/∂x = Wᵀ·δ (BP2), zero where an input was dropped.
    pub fn reference_backward(
        &self,
        trace: &Trace<F>,
        delta: &[F],
        mask: Option<&[F]>,
        nabla: &mut [ArrayD<F>],
    ) -> Vec<F> {
        let (mut nabla_w, mut nabla_b) = kind::reference_pair(nabla);
        let mut d_in = vec![F::zero(); trace.input.len()];
        for (j, &dj) in delta.iter().enumerate() {
            nabla_b[j] += dj;
            for (i, &v) in trace.input.iter().enumerate() {
                nabla_w[[j, i]] += dj * v;
                d_in[i] += dj * self.weights[[j, i]];
            }
        }
        if let Some(mask) = mask {
            for (d, &m) in d_in.iter_mut().zip(mask) {
                *d *= m;
            }
        }
        d_in
    }

    /// The layer as `nndl eval` computes it: z = (1 − p)·W·x + b (`network3.py`'s evaluation
    /// with dropout p), then `function`; `keyword` names the kind.
    pub fn export(&self, keyword: &'static str, function: Function) -> Exported<'_, F> {
        Exported {
            keyword,
            product: Product::Dense {
                scale: 1.0 - self.dropout,
            },
            weights: self.weights.view(),
            weight_shape: self.weights.shape().to_vec(),
            biases: self.biases.view(),
            function,
        }
    }

    /// The weights as nested lists, `(n_out, n_in)`, and the biases, for a model file.
    pub fn to_file(&self) -> (Vec<Vec<f64>>, Vec<f64>) {
        let rows = self
            .weights
            .rows()
            .into_iter()
            .map(|r| r.iter().map(|v| v.as_f64()).collect())
            .collect();
        (rows, kind::values(&self.biases))
    }

    /// A layer of a model file reading `input`, its weights a list of `neurons` rows.
    pub fn from_file(
        layer: usize,
        input: Shape,
        neurons: usize,
        dropout: f64,
        weights: Vec<Vec<f64>>,
        biases: Vec<f64>,
    ) -> Result<Self, String> {
        let n_in: usize = input.iter().product();
        if weights.len() != neurons || weights.iter().any(|r| r.len() != n_in) {
            return Err(format!("layer {layer}: weights is not {neurons}×{n_in}"));
        }
        let flat = weights.into_iter().flatten().collect();
        let (weights, biases) = kind::parameters_from_file(layer, (neurons, n_in), flat, biases)?;
        Ok(Dense {
            input,
            dropout,
            weights,
            biases,
        })
    }
}

/// `(m, n_in)` `input` and, in training, `d_input` after another layer (and the input errors
/// of the neurons of all but the first of the threads it is [`split`] between, and packed
/// inputs for each), `nabla_w`
/// `(n_out, n_in)`, `nabla_b` `(n_out,)`; the small-batch kernels' scratch space where a
/// mini-batch of `m` takes them.
pub fn buffers<F: Real>(input: Shape, n_out: usize, m: usize, role: Role) -> Option<Vec<Buffer>> {
    let n_in = input.iter().try_fold(1usize, |p, &n| p.checked_mul(n))?;
    let mut buffers = vec![Buffer::real("input", &[m], &[n_in])?];
    if role.training && !role.first {
        buffers.push(Buffer::real("d_input", &[m], &[n_in])?);
        let parts = split(n_out, n_in, role.parts);
        if parts > 1 {
            buffers.push(Buffer::real("d_input_parts", &[parts - 1, m], &[n_in])?);
        }
    }
    if small_batch::available() && (1..=small_batch::MAX_EXAMPLES).contains(&m) {
        let len = small_batch::packed_len::<F>(n_in, m);
        let split = split(n_out, n_in, role.parts);
        let threads = if role.training && !role.first {
            split
        } else {
            1
        };
        buffers.push(Buffer::real("packed", &[threads], &[len])?);
    }
    if role.training {
        buffers.push(Buffer::real("nabla_w", &[n_out], &[n_in])?);
        buffers.push(Buffer::flat("nabla_b", Element::Real, &[n_out])?);
    }
    Some(buffers)
}

/// BP2 for a dense layer: ∂C/∂input = δᵀ·W into the first m rows of `d_input` `(m_max, n_in)`,
/// with δ `(n_out, m)`.
fn input_error<F: Real>(delta: ArrayView2<F>, weights: &Array2<F>, d_input: &mut Array2<F>) {
    let mut d_input = d_input.slice_mut(s![..delta.ncols(), ..]);
    general_mat_mul(F::one(), &delta.t(), weights, F::zero(), &mut d_input);
}

/// Weights and biases of a dense layer of `n_out` neurons reading `input`, if the count fits
/// in 128 bits.
pub fn parameters(input: Shape, n_out: usize) -> Option<u128> {
    let [c, h, w] = input.map(|n| n as u128);
    let n = n_out as u128;
    n.checked_mul(c.checked_mul(h)?.checked_mul(w)?)?
        .checked_add(n)
}

/// The methods of [`super::kind::Kind`] that a layer made of one [`Dense`] (in a field
/// `dense`) forwards to it: its shapes, parameters, buffers, update and gradients. Written
/// once here for the fully-connected and softmax kinds, inside their `impl Kind`.
macro_rules! forward_to_dense {
    () => {
        fn input(&self) -> $crate::model::layers::item::Shape {
            self.dense.input
        }

        fn output(&self) -> $crate::model::layers::item::Shape {
            self.dense.output()
        }

        fn parameters(&self) -> Vec<$crate::model::layers::kind::Parameter<'_, F>> {
            self.dense.parameters()
        }

        fn parameters_mut(&mut self) -> Vec<ndarray::ArrayViewMutD<'_, F>> {
            self.dense.parameters_mut()
        }

        fn allocate(&self, buffers: &[$crate::model::layers::kind::Buffer]) -> DenseBuffers<F> {
            Dense::allocate(buffers)
        }

        fn update(
            &mut self,
            buffers: &DenseBuffers<F>,
            rate: $crate::model::layers::kind::Rate<F>,
        ) {
            self.dense.update(buffers, rate);
        }

        fn gradients<'a>(&self, buffers: &'a DenseBuffers<F>) -> Vec<ndarray::ArrayViewD<'a, F>> {
            self.dense.gradients(buffers)
        }
    };
}
pub(crate) use forward_to_dense;
