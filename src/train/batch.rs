//! Backpropagation of a whole mini-batch at once, the "fully matrix-based approach" the book
//! suggests at the end of chapter 2: the m examples are the columns of one matrix, so each
//! layer's forward step is one matrix product Zˡ = Wˡ·Aˡ⁻¹ (plus the bias on every column)
//! and each backward step is one product δˡ = (Wˡ⁺¹)ᵀ·δˡ⁺¹ (⊙ f′, the activation's derivative).
//!
//! Shapes, with m examples in the mini-batch:
//! - `x`: `(m, n_0)`, the mini-batch's images **one per row**, gathered from the data set; the
//!   first layer reads it as the `(n_0, m)` transpose (a view, no copy).
//! - `y`: `(n_L, m)`, the one-hot targets, one per column.
//! - `activations[l]`, `deltas[l]`: `(sizes[l+1], m)`, one example per column.
//!
//! - `masks[l]`: `(sizes[l+1], m)` for each hidden layer, the dropout masks, one example per
//!   column (drawn example by example, see [`crate::model::dropout`]).
//! - `rows[l]`: `(m, sizes[l+1])` for each hidden layer, its activations one example per row,
//!   as the small-batch kernels read the next layer's input.
//!
//! All buffers are allocated once for the largest mini-batch and reused; a smaller last
//! mini-batch uses the first columns. The update is fused into the gradient product:
//! W ← (1 − ηλ/n)·W − (η/m)·δ·Aᵀ in one pass over W, so ∇w is never stored.
//!
//! The products: in `f32`, with up to [`small_batch::MAX_EXAMPLES`] examples (the book's
//! mini-batch of 10) on a CPU with FMA, the forward products and the updates are chapter 6's
//! small-batch kernels ([`small_batch::forward`], [`small_batch::update_packed`], the update
//! reading the inputs as the forward product packed them); BP2's small product stays a general
//! one. Otherwise every product is one `general_mat_mul`, the update's with α = −η/m and
//! β = 1 − ηλ/n. Not in `f64`: there the kernels' 10 accumulators of two registers each do not
//! fit AVX2's 16, and how many spill to the stack depends on the crate the generic code is
//! compiled in — `nndl bench` measured network3's `f64` epoch 1.1× faster with them, the
//! criterion bench `step-f64/network3` up to 1.8× slower (AMD EPYC with AVX2; see
//! `docs/performance.md`). In `f32`, network2/3's epoch measured 1.4× faster.

use crate::rng::SeededRng;
use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, Zip};

use crate::data::Dataset;
use crate::model::dropout;
use crate::model::layers::small_batch;
use crate::model::network::{Gradient, Network};
use crate::model::Step;
use crate::real::Real;
use crate::train::step::UpdateMiniBatch;

/// Whether the step takes the small-batch kernels for mini-batches of up to
/// [`small_batch::MAX_EXAMPLES`] in precision `F` on this CPU: in `f32`, where
/// [`small_batch::available`] (see the module's notes for `f64`).
pub fn takes_small_batch_kernels<F: Real>() -> bool {
    std::mem::size_of::<F>() == 4 && small_batch::available()
}

/// Work buffers for matrix-based backprop of one network shape.
#[derive(Clone, Debug)]
pub struct Batched<F: Real = f64> {
    /// `(m_max, n_0)`: the gathered mini-batch, one image per row.
    x: Array2<F>,
    /// `(n_L, m_max)`: one-hot targets, one per column.
    y: Array2<F>,
    /// `activations[l]`: `(sizes[l+1], m_max)`.
    activations: Vec<Array2<F>>,
    /// `deltas[l]`: `(sizes[l+1], m_max)`, the error δ of layer l+1.
    deltas: Vec<Array2<F>>,
    /// `masks[l]`: `(sizes[l+1], m_max)` for each hidden layer: dropout masks.
    masks: Vec<Array2<F>>,
    /// The dropout probability `masks` were drawn with for the gathered mini-batch, if any.
    dropout: Option<f64>,
    /// Examples in the current mini-batch (≤ m_max).
    m: usize,
    /// `rows[l]`: `(m_max, sizes[l+1])` for each hidden layer, its activations one example per
    /// row: the next layer's input as the small-batch kernels read it.
    rows: Vec<Array2<F>>,
    /// `packed[l]`: layer l's inputs as the small-batch kernels' forward product packed them,
    /// read again by its update.
    packed: Vec<Vec<F>>,
    /// Whether mini-batches of up to [`small_batch::MAX_EXAMPLES`] go through the
    /// small-batch kernels (in `f32`, where the CPU has them) rather than `general_mat_mul`.
    small_batch: bool,
}

impl<F: Real> Batched<F> {
    /// Buffers for a network of `sizes` and mini-batches of up to `m_max` examples.
    pub fn new(sizes: &[usize], m_max: usize) -> Self {
        let layer = |n: usize| Array2::zeros((n, m_max));
        Batched {
            x: Array2::zeros((m_max, sizes[0])),
            y: Array2::zeros((sizes[sizes.len() - 1], m_max)),
            activations: sizes[1..].iter().map(|&n| layer(n)).collect(),
            deltas: sizes[1..].iter().map(|&n| layer(n)).collect(),
            masks: sizes[1..sizes.len() - 1]
                .iter()
                .map(|&n| layer(n))
                .collect(),
            dropout: None,
            m: 0,
            rows: sizes[1..sizes.len() - 1]
                .iter()
                .map(|&n| Array2::zeros((m_max, n)))
                .collect(),
            packed: vec![Vec::new(); sizes.len() - 1],
            small_batch: takes_small_batch_kernels::<F>(),
        }
    }

    /// Sends every product through `general_mat_mul`, as for mini-batches larger than
    /// [`small_batch::MAX_EXAMPLES`], to test the small-batch kernels against it.
    pub fn use_general_products(&mut self) {
        self.small_batch = false;
    }

    /// Whether the gathered mini-batch goes through [`small_batch`]'s kernels with `net`'s
    /// weights (contiguous, as a network's always are; otherwise general products).
    pub fn small_batch_kernels(&self, net: &Network<F>) -> bool {
        self.small_batch
            && (1..=small_batch::MAX_EXAMPLES).contains(&self.m)
            && net.weights.iter().all(|w| w.is_standard_layout())
    }

    /// Copies the examples `batch` of `data` into `x` and their one-hot targets into `y`.
    pub fn gather(&mut self, data: &Dataset<F>, batch: &[usize]) {
        if batch.len() > self.x.nrows() {
            let sizes: Vec<usize> = std::iter::once(self.x.ncols())
                .chain(self.activations.iter().map(|a| a.nrows()))
                .collect();
            let small_batch = self.small_batch;
            *self = Batched::new(&sizes, batch.len());
            self.small_batch = small_batch;
        }
        self.m = batch.len();
        self.dropout = None;
        self.y.fill(F::zero());
        for (i, &k) in batch.iter().enumerate() {
            data.copy_row(k, self.x.row_mut(i));
            self.y[[usize::from(data.labels()[k]), i]] = F::one();
        }
    }

    /// Draws dropout masks for the gathered mini-batch, each hidden neuron dropped with
    /// probability `p`, example by example in the order [`crate::model::dropout`] fixes. The next
    /// [`Batched::backprop`] applies them.
    pub fn draw_masks(&mut self, p: f64, rng: &mut SeededRng) {
        for i in 0..self.m {
            for mask in &mut self.masks {
                dropout::fill(p, rng, mask.column_mut(i));
            }
        }
        self.dropout = Some(p);
    }

    /// Forward and backward pass over the gathered mini-batch: afterwards `activations` and
    /// `deltas` hold Aˡ and δˡ for every layer (BP1 and BP2 in matrix form).
    pub fn backprop(&mut self, net: &Network<F>) {
        let m = self.m;
        let layers = net.weights.len();
        let last = layers - 1;
        // Forward: Aˡ = f(Wˡ·Aˡ⁻¹ + bˡ), bias and f applied in one pass over each row, then
        // the dropout masks.
        let small = self.small_batch_kernels(net);
        for l in 0..layers {
            let (below, rest) = self.activations.split_at_mut(l);
            if small {
                // z = W·xᵀ with x one example per row: the images as gathered, a hidden
                // layer's activations turned into rows first.
                let x = if l == 0 {
                    self.x.view()
                } else {
                    let rows = &mut self.rows[l - 1];
                    rows.slice_mut(s![..m, ..])
                        .assign(&below[l - 1].slice(s![.., ..m]).t());
                    rows.view()
                };
                let x = x.to_slice().expect("work buffers are contiguous");
                let w = &net.weights[l];
                let w_slice = w.as_slice().expect("weights are contiguous");
                let z_stride = rest[0].ncols();
                let z = rest[0].as_slice_mut().expect("work buffers are contiguous");
                let packed = &mut self.packed[l];
                small_batch::forward(F::one(), w_slice, w.ncols(), x, m, z, z_stride, packed);
            } else if l == 0 {
                let mut a = rest[0].slice_mut(s![.., ..m]); // (n_out, m)
                let x = self.x.slice(s![..m, ..]); // (m, n_in)
                general_mat_mul(F::one(), &net.weights[0], &x.t(), F::zero(), &mut a);
            } else {
                let mut a = rest[0].slice_mut(s![.., ..m]); // (n_out, m)
                let a_in = below[l - 1].slice(s![.., ..m]); // (n_in, m)
                general_mat_mul(F::one(), &net.weights[l], &a_in, F::zero(), &mut a);
            }
            let a = self.activations[l].slice_mut(s![.., ..m]);
            let mask = self.masks.get(l).filter(|_| self.dropout.is_some());
            net.activate_batch(l, a, mask.map(|mask| mask.slice(s![.., ..m])));
        }
        // BP1: δᴸ from the cost, column by column.
        let cost = net.cost;
        Zip::from(self.deltas[last].slice_mut(s![.., ..m]))
            .and(self.activations[last].slice(s![.., ..m]))
            .and(self.y.slice(s![.., ..m]))
            .for_each(|d, &a, &y| *d = cost.delta(a, y));
        // BP2: δˡ = (Wˡ⁺¹)ᵀ·δˡ⁺¹ ⊙ f′(zˡ) (⊙ the masks under dropout).
        let activation = net.activation;
        for l in (0..last).rev() {
            let (lower, upper) = self.deltas.split_at_mut(l + 1);
            let mut delta = lower[l].slice_mut(s![.., ..m]); // (n_l, m)
            let delta_up = upper[0].slice(s![.., ..m]); // (n_{l+1}, m)
            general_mat_mul(
                F::one(),
                &net.weights[l + 1].t(),
                &delta_up,
                F::zero(),
                &mut delta,
            );
            let a = self.activations[l].slice(s![.., ..m]);
            if let Some(p) = self.dropout {
                let p = F::of(p);
                Zip::from(&mut delta)
                    .and(a)
                    .and(self.masks[l].slice(s![.., ..m]))
                    .for_each(|d, &a, &s| *d *= dropout::masked_prime(activation, a, s, p));
            } else {
                Zip::from(&mut delta)
                    .and(a)
                    .for_each(|d, &a| *d *= activation.prime_from_output(a));
            }
        }
    }

    /// The gradient summed over the mini-batch (BP3: ∇b = Σ columns of δ; BP4: ∇w = δ·Aᵀ),
    /// materialised for inspection and tests; training uses the fused [`Batched::update`].
    pub fn gradient(&self, net: &Network<F>) -> Gradient<F> {
        let m = self.m;
        let mut grad = Gradient::zeros_like(net);
        for l in 0..net.weights.len() {
            let delta = self.deltas[l].slice(s![.., ..m]);
            if l == 0 {
                general_mat_mul(
                    F::one(),
                    &delta,
                    &self.x.slice(s![..m, ..]),
                    F::zero(),
                    &mut grad.nabla_w[0],
                );
            } else {
                let a_in = self.activations[l - 1].slice(s![.., ..m]);
                general_mat_mul(F::one(), &delta, &a_in.t(), F::zero(), &mut grad.nabla_w[l]);
            }
            grad.nabla_b[l] = delta.sum_axis(ndarray::Axis(1));
        }
        grad
    }

    /// The gradient-descent step of eq. (93), fused: W ← (1 − ηλ/n)·W − (η/m)·δ·Aᵀ in one
    /// pass over each W, and b ← b − (η/m)·Σ δ — by [`small_batch::update_packed`] from the
    /// inputs the forward pass packed, or by one GEMM per layer.
    pub fn update(&self, net: &mut Network<F>, step: &Step) {
        let m = self.m;
        let k = F::of(step.eta / m as f64);
        let decay = F::of(step.decay());
        let small = self.small_batch_kernels(net);
        for l in 0..net.weights.len() {
            let delta = self.deltas[l].slice(s![.., ..m]); // (n_out, m)
            let b: &mut Array1<F> = &mut net.biases[l];
            if small {
                let n_in = net.weights[l].ncols();
                let delta_stride = self.deltas[l].ncols();
                let delta = self.deltas[l]
                    .as_slice()
                    .expect("work buffers are contiguous");
                let b = b.as_slice_mut().expect("a 1-d array is contiguous");
                small_batch::update_biases(b, delta, delta_stride, m, k);
                let x = small_batch::packed(&self.packed[l], n_in, m);
                let w = net.weights[l]
                    .as_slice_mut()
                    .expect("weights are contiguous");
                small_batch::update_packed(w, n_in, delta, delta_stride, x, m, (decay, k));
                continue;
            }
            if l == 0 {
                let x = self.x.slice(s![..m, ..]); // Aᵀ of the input layer: (m, n_in)
                general_mat_mul(-k, &delta, &x, decay, &mut net.weights[0]);
            } else {
                let a_in = self.activations[l - 1].slice(s![.., ..m]); // (n_in, m)
                general_mat_mul(-k, &delta, &a_in.t(), decay, &mut net.weights[l]);
            }
            for (b, row) in b.iter_mut().zip(delta.rows()) {
                *b -= k * row.sum();
            }
        }
    }
}

impl<F: Real> UpdateMiniBatch<F, Network<F>> for Batched<F> {
    fn update_mini_batch(
        &mut self,
        net: &mut Network<F>,
        data: &Dataset<F>,
        batch: &[usize],
        step: &Step,
        rng: &mut SeededRng,
    ) {
        self.gather(data, batch);
        if step.dropout > 0.0 {
            self.draw_masks(step.dropout, rng);
        }
        self.backprop(net);
        self.update(net, step);
    }
}
