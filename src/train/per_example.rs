//! Backpropagation one example at a time, as `network.py` (ch. 1) does it, without allocating
//! and using how sparse the input is.
//!
//! The arithmetic is the book's (BP1–BP4 on one column vector, gradients summed over the
//! mini-batch, then one step), but:
//! - every vector lives in a buffer made once, and the output layer's one-hot target y is never
//!   built (BP1's δᴸ is computed from the label directly);
//! - most MNIST pixels are 0 (`nndl bench` prints the share), and a 0 input contributes nothing
//!   to z = w·x nor to ∂C/∂w = δ·xᵀ. So the first layer only visits the columns of w where the
//!   pixel is not 0.
//!   For that the first weight matrix and its gradient are kept **column-major** (each input
//!   pixel's 30 weights contiguous); the values are the same, only their order in memory
//!   changes, and every other use of the network is layout-agnostic.
//!
//! Under dropout each example draws its masks as it is propagated (see [`crate::model::dropout`]).
//!
//! [`Network::update_mini_batch`] is the straightforward version this one is tested against.

use crate::rng::SeededRng;
use multiversion::multiversion;
use ndarray::{Array1, Array2, Zip};

use crate::data::Dataset;
use crate::model::dropout;
use crate::model::network::{Gradient, Network};
use crate::model::Step;
use crate::real::Real;
use crate::train::step::UpdateMiniBatch;

/// Buffers for per-example backprop of one network shape.
#[derive(Clone, Debug)]
pub struct PerExample<F: Real = f64> {
    /// Gradient summed over the mini-batch; `nabla_w[0]` column-major like the weights.
    sum: Gradient<F>,
    /// The current example, `(n_0,)`.
    x: Array1<F>,
    /// Indices of the example's non-zero inputs (the first `count` of them, see `backprop`).
    nonzero: Vec<usize>,
    /// Which first-layer columns this mini-batch has touched, and their indices.
    touched: Vec<bool>,
    touched_list: Vec<usize>,
    /// `activations[l]`: `(sizes[l+1],)`.
    activations: Vec<Array1<F>>,
    /// `deltas[l]`: `(sizes[l+1],)`, the error of layer l+1.
    deltas: Vec<Array1<F>>,
    /// `masks[l]`: `(sizes[l+1],)`, the current example's dropout masks of hidden layer l+1.
    masks: Vec<Array1<F>>,
}

/// The elements of a vector this module made (always contiguous).
fn contiguous<F: Real>(v: &Array1<F>) -> &[F] {
    v.as_slice().expect("a buffer made contiguous by new()")
}

/// z += Σ over j in `nonzero` of x_j·w[:, j], with `w` column-major (`z.len()` rows).
/// Compiled for AVX-512 and AVX2 as well, chosen at run time; the arithmetic (and so the
/// result) is the same on every path, only the vector width differs.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn add_columns<F: Real>(z: &mut [F], w: &[F], x: &[F], nonzero: &[usize]) {
    let n = z.len();
    for &j in nonzero {
        let xj = x[j];
        for (z, &w) in z.iter_mut().zip(&w[j * n..(j + 1) * n]) {
            *z += xj * w;
        }
    }
}

/// g[:, j] += x_j·δ for j in `nonzero`, with `g` column-major (`δ.len()` rows): the outer
/// product δ·xᵀ restricted to the non-zero inputs.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn add_outer_columns<F: Real>(g: &mut [F], delta: &[F], x: &[F], nonzero: &[usize]) {
    let n = delta.len();
    for &j in nonzero {
        let xj = x[j];
        for (g, &d) in g[j * n..(j + 1) * n].iter_mut().zip(delta) {
            *g += xj * d;
        }
    }
}

/// Σ aᵢbᵢ.
fn dot<F: Real>(a: &[F], b: &[F]) -> F {
    a.iter().zip(b).fold(F::zero(), |s, (&a, &b)| s + a * b)
}

/// `w` with the same values, stored column-major.
fn column_major<F: Real>(w: &Array2<F>) -> Array2<F> {
    w.t().as_standard_layout().into_owned().reversed_axes()
}

impl<F: Real> PerExample<F> {
    pub fn new(net: &Network<F>) -> Self {
        let mut sum = Gradient::zeros_like(net);
        sum.nabla_w[0] = column_major(&sum.nabla_w[0]);
        let layers = || net.sizes[1..].iter().map(|&n| Array1::zeros(n));
        PerExample {
            sum,
            x: Array1::zeros(net.sizes[0]),
            nonzero: vec![0; net.sizes[0]],
            touched: vec![false; net.sizes[0]],
            touched_list: Vec::with_capacity(net.sizes[0]),
            activations: layers().collect(),
            deltas: layers().collect(),
            masks: layers().take(net.sizes.len() - 2).collect(),
        }
    }

    /// Adds the gradient of example `k` of `data` to `self.sum` (BP1–BP4), dropping hidden
    /// neurons with probability `p` (masks drawn from `rng`) if `p` > 0.
    fn backprop(
        &mut self,
        net: &Network<F>,
        data: &Dataset<F>,
        k: usize,
        p: f64,
        rng: &mut SeededRng,
    ) {
        let dropout = p > 0.0;
        if dropout {
            for mask in &mut self.masks {
                dropout::fill(p, rng, mask);
            }
        }
        data.copy_row(k, self.x.view_mut());
        let x = self
            .x
            .as_slice()
            .expect("a buffer made contiguous by new()");
        // Compact the indices of non-zero pixels without a branch per pixel (whether a pixel
        // is 0 is unpredictable): write every index, advance only past the non-zero ones.
        let mut count = 0;
        for (j, &v) in x.iter().enumerate() {
            self.nonzero[count] = j;
            count += usize::from(v != F::zero());
        }
        let nonzero = &self.nonzero[..count];
        for &j in nonzero {
            if !self.touched[j] {
                self.touched[j] = true;
                self.touched_list.push(j);
            }
        }

        // Forward, first layer: z = b + Σ over non-zero x_j of x_j·w[:, j], on the raw
        // column-major storage (column j is w0[j·n..(j+1)·n]).
        let w0 = net.weights[0]
            .as_slice_memory_order()
            .expect("update_mini_batch makes the first weights contiguous and column-major");
        let a0 = self.activations[0]
            .as_slice_mut()
            .expect("a buffer made contiguous by new()");
        for (a, &b) in a0.iter_mut().zip(&net.biases[0]) {
            *a = b;
        }
        add_columns(a0, w0, x, nonzero);
        let mask = |l| self.masks.get(l).filter(|_| dropout);
        net.activate(0, self.activations[0].view_mut(), mask(0));
        // Forward, the other layers: a = f(w·a_prev + b).
        for l in 1..net.weights.len() {
            let (below, rest) = self.activations.split_at_mut(l);
            let a_in = contiguous(&below[l - 1]);
            let w = net.weights[l]
                .as_slice()
                .expect("dense layers are row-major");
            let a = rest[0]
                .as_slice_mut()
                .expect("a buffer made contiguous by new()");
            for ((a, row), &b) in a
                .iter_mut()
                .zip(w.chunks_exact(a_in.len()))
                .zip(&net.biases[l])
            {
                *a = dot(row, a_in) + b;
            }
            net.activate(l, rest[0].view_mut(), mask(l));
        }

        // BP1 for the one-hot target of the label.
        let last = net.weights.len() - 1;
        let label = usize::from(data.labels()[k]);
        let cost = net.cost;
        for (i, (d, &a)) in self.deltas[last]
            .iter_mut()
            .zip(&self.activations[last])
            .enumerate()
        {
            let y = if i == label { F::one() } else { F::zero() };
            *d = cost.delta(a, y);
        }
        // BP2–BP4 down to the second layer: ∇b += δ, ∇w += δ·a_prevᵀ, δ_prev = wᵀδ ⊙ f′
        // (⊙ the mask under dropout).
        for l in (1..=last).rev() {
            let (lower, upper) = self.deltas.split_at_mut(l);
            let delta = contiguous(&upper[0]);
            let a_in = contiguous(&self.activations[l - 1]);
            self.sum.nabla_b[l] += &upper[0];
            let w = net.weights[l]
                .as_slice()
                .expect("dense layers are row-major");
            let g = self.sum.nabla_w[l]
                .as_slice_mut()
                .expect("a buffer made contiguous by new()");
            let below = lower[l - 1]
                .as_slice_mut()
                .expect("a buffer made contiguous by new()");
            below.fill(F::zero());
            for ((g_row, w_row), &d) in g
                .chunks_exact_mut(a_in.len())
                .zip(w.chunks_exact(a_in.len()))
                .zip(delta)
            {
                for ((g, &a), (b, &w)) in
                    g_row.iter_mut().zip(a_in).zip(below.iter_mut().zip(w_row))
                {
                    *g += d * a;
                    *b += d * w;
                }
            }
            let activation = net.activation;
            if dropout {
                let p = F::of(p);
                for ((b, &a), &s) in below.iter_mut().zip(a_in).zip(&self.masks[l - 1]) {
                    *b *= dropout::masked_prime(activation, a, s, p);
                }
            } else {
                for (b, &a) in below.iter_mut().zip(a_in) {
                    *b *= activation.prime_from_output(a);
                }
            }
        }
        // BP3–BP4, first layer: only the columns of non-zero inputs change.
        let delta = self.deltas[0]
            .as_slice()
            .expect("a buffer made contiguous by new()");
        self.sum.nabla_b[0] += &self.deltas[0];
        let nabla = self.sum.nabla_w[0]
            .as_slice_memory_order_mut()
            .expect("made contiguous and column-major by new()");
        add_outer_columns(nabla, delta, x, nonzero);
    }
}

impl<F: Real> PerExample<F> {
    /// The step of eq. (93), w → (1 − ηλ/n)·w − (η/m)·∇w and b → b − (η/m)·∇b, leaving the
    /// gradient sums at zero for the next mini-batch. In the first layer only the touched
    /// columns have a gradient; the others only decay (and not even that when λ = 0).
    fn update(&mut self, net: &mut Network<F>, m: usize, step: &Step) {
        let k = F::of(step.eta / m as f64);
        let decay = F::of(step.decay());
        for (b, nb) in net.biases.iter_mut().zip(&mut self.sum.nabla_b) {
            Zip::from(b).and(&mut *nb).for_each(|b, g| {
                *b -= k * *g;
                *g = F::zero();
            });
        }
        for (w, nw) in net.weights.iter_mut().zip(&mut self.sum.nabla_w).skip(1) {
            Zip::from(w).and(nw).for_each(|w, g| {
                *w = decay * *w - k * *g;
                *g = F::zero();
            });
        }
        let n = net.sizes[1];
        let w0 = net.weights[0]
            .as_slice_memory_order_mut()
            .expect("update_mini_batch makes the first weights contiguous and column-major");
        let g0 = self.sum.nabla_w[0]
            .as_slice_memory_order_mut()
            .expect("made contiguous and column-major by new()");
        if decay != F::one() {
            for (j, column) in w0.chunks_exact_mut(n).enumerate() {
                if !self.touched[j] {
                    column.iter_mut().for_each(|w| *w *= decay);
                }
            }
        }
        for &j in &self.touched_list {
            let columns = w0[j * n..(j + 1) * n].iter_mut();
            for (w, g) in columns.zip(&mut g0[j * n..(j + 1) * n]) {
                *w = decay * *w - k * *g;
                *g = F::zero();
            }
            self.touched[j] = false;
        }
        self.touched_list.clear();
    }
}

impl<F: Real> UpdateMiniBatch<F, Network<F>> for PerExample<F> {
    fn update_mini_batch(
        &mut self,
        net: &mut Network<F>,
        data: &Dataset<F>,
        batch: &[usize],
        step: &Step,
        rng: &mut SeededRng,
    ) {
        if !net.weights[0].t().is_standard_layout() {
            net.weights[0] = column_major(&net.weights[0]);
        }
        for &k in batch {
            self.backprop(net, data, k, step.dropout, rng);
        }
        self.update(net, batch.len(), step);
    }
}
