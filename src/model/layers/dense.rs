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

use std::sync::Arc;

use ndarray::linalg::general_mat_mul;
use ndarray::{
    s, Array1, Array2, ArrayD, ArrayView2, ArrayViewD, ArrayViewMut2, ArrayViewMutD, Axis,
};

use crate::model::export::layer::{Exported, Function, Product};
use crate::real::Real;

use super::item::Shape;
use super::kind::{
    self, apply_update, Backward, Buffer, Element, Forward, Parameter, Rate, Role, Work,
};
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

/// A dense layer's buffers in a pass.
#[derive(Clone, Debug)]
pub struct DenseBuffers<F: Real> {
    /// `(m_max, n_in)`: the layer's (masked) input.
    input: Array2<F>,
    /// After another layer, in training: `(m_max, n_in)`, ∂C/∂input.
    d_input: Array2<F>,
    /// Scratch space of [`small_batch`]'s kernels.
    packed: Vec<F>,
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
            packed: kind::reserve(buffers, "packed"),
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
    pub fn product(&self, buffers: &mut DenseBuffers<F>, pass: &mut Forward<'_, F>) {
        let m = pass.m;
        let [_, h, w] = self.input;
        gather(pass.input, h * w, m, pass.mask, buffers.input.view_mut());
        let scale = if pass.training {
            F::one()
        } else {
            F::of(1.0 - self.dropout)
        };
        let input = buffers.input.slice(s![..m, ..]);
        match (self.weights.as_slice(), input.to_slice()) {
            (Some(w), Some(x)) if pass.small => {
                let n_in = self.weights.ncols();
                let m_max = pass.out.ncols();
                let out = pass.out.as_slice_mut().expect("outputs are contiguous");
                small_batch::forward(scale, w, n_in, x, m, out, m_max, &mut buffers.packed);
            }
            _ => general_mat_mul(
                scale,
                &self.weights,
                &input.t(),
                F::zero(),
                &mut pass.out.slice_mut(s![.., ..m]),
            ),
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
    /// [`small_batch::backward_update`] over W when the kernels take the mini-batch and there
    /// is an input error to compute, else one product for each (W ← decay·W − scale·δ·input,
    /// as `network2.py`'s step does).
    pub fn backward_update(
        &mut self,
        buffers: &mut DenseBuffers<F>,
        pass: &mut Backward<'_, F>,
        (decay, scale): Rate<F>,
    ) {
        let m = pass.m;
        let has_prev = pass.d_input.is_some();
        let n_in = self.weights.ncols();
        let m_max = pass.d_out.ncols();
        let input = buffers.input.slice(s![..m, ..]);
        let w = self.weights.as_slice_mut();
        if let (true, true, Some(x), Some(w)) = (pass.small, has_prev, input.to_slice(), w) {
            let b = self
                .biases
                .as_slice_mut()
                .expect("a 1-d array is contiguous");
            let delta = pass.d_out.as_slice().expect("layer buffers are contiguous");
            let d_x = buffers
                .d_input
                .as_slice_mut()
                .expect("layer buffers are contiguous");
            let (step, packed) = ((decay, scale), &mut buffers.packed);
            small_batch::backward_update(w, b, n_in, delta, m_max, x, d_x, m, step, packed);
        } else {
            let delta = pass.d_out.slice(s![.., ..m]);
            if has_prev {
                input_error(delta, &self.weights, &mut buffers.d_input);
            }
            // W ← decay·W − scale·δ·input, one product; b ← b − scale·Σδ.
            general_mat_mul(-scale, &delta, &input, decay, &mut self.weights);
            for (b, row) in self.biases.iter_mut().zip(delta.rows()) {
                *b -= scale * row.sum();
            }
        }
        self.send_input_error(buffers, pass);
    }

    /// A share's backprop in a mini-batch shared between threads ([`super::shards`]): only
    /// ∂C/∂input = δᵀ·W (BP2), from the weights before the update; ∇W and ∇b are left to
    /// [`Dense::update_from_shares`].
    /// Through [`small_batch::input_error`] when the kernels take the mini-batch.
    pub fn backward_share(&self, buffers: &mut DenseBuffers<F>, pass: &mut Backward<'_, F>) {
        if pass.d_input.is_some() {
            let (m, n_in, m_max) = (pass.m, self.weights.ncols(), pass.d_out.ncols());
            let w = self.weights.as_slice();
            let delta = pass.d_out.as_slice();
            match (pass.small, w, delta, buffers.d_input.as_slice_mut()) {
                (true, Some(w), Some(delta), Some(d_x)) => {
                    small_batch::input_error(w, n_in, delta, m_max, d_x, m);
                }
                _ => {
                    let delta = pass.d_out.slice(s![.., ..m]);
                    input_error(delta, &self.weights, &mut buffers.d_input);
                }
            }
        }
        self.send_input_error(buffers, pass);
    }

    /// `network3.py`'s update from the shares of a mini-batch, in order (each share's buffers
    /// after [`Dense::backward_share`] and its δ): δ `(n_out, m)` and the input `(m, n_in)` of
    /// the whole mini-batch are put together share after share, then W ← decay·W −
    /// scale·δ·input (BP4 and the update in one product) and b ← b − scale·Σδ (BP3), as at
    /// most `parts` pieces of work on consecutive rows of W. Each row is computed alike
    /// however the rows are split.
    pub fn update_from_shares<'a>(
        &'a mut self,
        shares: &[(&DenseBuffers<F>, ArrayView2<'_, F>)],
        (decay, scale): Rate<F>,
        parts: usize,
    ) -> Vec<Work<'a>> {
        let m: usize = shares.iter().map(|(_, delta)| delta.ncols()).sum();
        let (n_out, n_in) = self.weights.dim();
        let mut delta = Array2::<F>::zeros((n_out, m)); // (n_out, m)
        let mut input = Array2::<F>::zeros((m, n_in)); // (m, n_in)
        let mut at = 0;
        for (buffers, share) in shares {
            let k = share.ncols();
            delta.slice_mut(s![.., at..at + k]).assign(share);
            input
                .slice_mut(s![at..at + k, ..])
                .assign(&buffers.input.slice(s![..k, ..]));
            at += k;
        }
        let joined = Arc::new((delta, input));
        let rows = n_out.div_ceil(parts.max(1)).max(1);
        let weights = self.weights.axis_chunks_iter_mut(Axis(0), rows);
        let biases = self.biases.axis_chunks_iter_mut(Axis(0), rows);
        weights
            .zip(biases)
            .enumerate()
            .map(|(k, (mut w, mut b))| {
                let joined = Arc::clone(&joined);
                Box::new(move || {
                    let (delta, input) = &*joined;
                    let delta = delta.slice(s![k * rows..k * rows + w.nrows(), ..]);
                    general_mat_mul(-scale, &delta, input, decay, &mut w);
                    for (b, row) in b.iter_mut().zip(delta.rows()) {
                        *b -= scale * row.sum();
                    }
                }) as Work<'a>
            })
            .collect()
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

/// `(m, n_in)` `input` and, in training, `d_input` after another layer, `nabla_w`
/// `(n_out, n_in)`, `nabla_b` `(n_out,)`; the small-batch kernels' scratch space where a
/// mini-batch of `m` takes them.
pub fn buffers<F: Real>(input: Shape, n_out: usize, m: usize, role: Role) -> Option<Vec<Buffer>> {
    let n_in = input.iter().try_fold(1usize, |p, &n| p.checked_mul(n))?;
    let mut buffers = vec![Buffer::real("input", &[m], &[n_in])?];
    if role.training && !role.first {
        buffers.push(Buffer::real("d_input", &[m], &[n_in])?);
    }
    if small_batch::available() && (1..=small_batch::MAX_EXAMPLES).contains(&m) {
        let len = small_batch::packed_len::<F>(n_in, m);
        buffers.push(Buffer::flat("packed", Element::Real, &[len])?);
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

        fn updates_from_shares(&self) -> bool {
            true
        }

        fn update_from_shares<'a>(
            &'a mut self,
            shares: &[(&DenseBuffers<F>, ndarray::ArrayView2<'_, F>)],
            rate: $crate::model::layers::kind::Rate<F>,
            parts: usize,
        ) -> Vec<$crate::model::layers::kind::Work<'a>> {
            self.dense.update_from_shares(shares, rate, parts)
        }
    };
}
pub(crate) use forward_to_dense;
