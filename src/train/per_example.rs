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
//! - the first layer's column loops (`add_columns` for z, `add_outer_columns` for ∇w) keep
//!   the 30 values they add to or from in registers, 32 rows at a time, instead of going to
//!   memory for each of the ~150 non-zero pixels, and the gradient's columns are padded to a
//!   multiple of 32 rows so that none ends in a part of a vector. Every sum is added up in the
//!   order of the plain loops, which are kept beside them and tested against them to the bit,
//!   so the weights trained are the same.
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
    /// Gradient summed over the mini-batch. `nabla_w[0]` is the first layer's transposed,
    /// `(n_0, stride)`: row j holds column j of ∇w (each pixel's `sizes[1]` values
    /// contiguous, as in the weights), then padding up to `stride` — `sizes[1]` rounded up to
    /// [`CHUNK`] — that is never read, so that [`add_outer_columns`] works on whole chunks of
    /// [`CHUNK`] rows.
    sum: Gradient<F>,
    /// The current example, `(n_0,)`.
    x: Array1<F>,
    /// Indices of the example's non-zero inputs (the first `count` of them, see `backprop`).
    nonzero: Vec<usize>,
    /// Which first-layer columns this mini-batch has touched, and their indices (the first
    /// `touched_count` of `touched_list`, `(n_0 + 1,)`).
    touched: Vec<bool>,
    touched_list: Vec<usize>,
    touched_count: usize,
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
///
/// z is taken [`CHUNK`] rows at a time and held in registers while every column adds to it:
/// `add_columns_slow`, which adds each column to z in memory, waits on every column for
/// its sums to be stored and loaded again. Each z\[i\] is added to in the same order, so both
/// give the same bits (tested against `add_columns_slow`).
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn add_columns<F: Real>(z: &mut [F], w: &[F], x: &[F], nonzero: &[usize]) {
    let n = z.len();
    for (c, z) in z.chunks_mut(CHUNK).enumerate() {
        let (first, len) = (c * CHUNK, z.len());
        // Every access to `acc` at a fixed index, so that it stays in registers.
        let mut acc: [F; CHUNK] = std::array::from_fn(|i| z.get(i).copied().unwrap_or(F::zero()));
        for &j in nonzero {
            let xj = x[j];
            let at = j * n + first;
            // A whole chunk of the column, past its end into the next column's where the
            // chunk is short (those lanes are added to and never stored), as long as that
            // stays within w; otherwise the column's own rows, padded with zeros.
            let column: [F; CHUNK] = match w.get(at..at + CHUNK) {
                Some(column) => column.try_into().expect("CHUNK values"),
                None => std::array::from_fn(|i| if i < len { w[at + i] } else { F::zero() }),
            };
            for (a, w) in acc.iter_mut().zip(column) {
                *a += xj * w;
            }
        }
        let sums = acc;
        z.copy_from_slice(&sums[..len]);
    }
}

/// Rows of z that [`add_columns`] keeps in registers at once: 32, the book's 30 hidden
/// neurons in one go (four AVX2 registers of `f32`, eight of `f64`).
const CHUNK: usize = 32;

/// [`add_columns`] the obvious way, column by column into z.
#[cfg(test)]
fn add_columns_slow<F: Real>(z: &mut [F], w: &[F], x: &[F], nonzero: &[usize]) {
    let n = z.len();
    for &j in nonzero {
        let xj = x[j];
        for (z, &w) in z.iter_mut().zip(&w[j * n..(j + 1) * n]) {
            *z += xj * w;
        }
    }
}

/// g[:, j] += x_j·δ for j in `nonzero`, with `g` column-major, each column padded to
/// `stride` rows (a multiple of [`CHUNK`]): the outer product δ·xᵀ restricted to the non-zero
/// inputs. δ is held in registers a chunk of rows at a time, and each column's chunk is
/// read, added to and written back whole (the padding rows, never read, add x_j·0).
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn add_outer_columns<F: Real>(g: &mut [F], stride: usize, delta: &[F], x: &[F], nonzero: &[usize]) {
    assert!(
        stride.is_multiple_of(CHUNK) && stride >= delta.len(),
        "padded columns"
    );
    for (c, delta) in delta.chunks(CHUNK).enumerate() {
        let delta: [F; CHUNK] = std::array::from_fn(|i| delta.get(i).copied().unwrap_or(F::zero()));
        for &j in nonzero {
            let xj = x[j];
            let at = j * stride + c * CHUNK;
            let column: &mut [F; CHUNK] = (&mut g[at..at + CHUNK]).try_into().expect("CHUNK rows");
            for (g, d) in column.iter_mut().zip(delta) {
                *g += xj * d;
            }
        }
    }
}

/// [`add_outer_columns`] the obvious way, on columns of `delta.len()` rows.
#[cfg(test)]
fn add_outer_columns_slow<F: Real>(g: &mut [F], delta: &[F], x: &[F], nonzero: &[usize]) {
    let n = delta.len();
    for &j in nonzero {
        let xj = x[j];
        for (g, &d) in g[j * n..(j + 1) * n].iter_mut().zip(delta) {
            *g += xj * d;
        }
    }
}

/// The step of the first layer's weights, `w` `(n, n_0)` column-major, from its gradient `g`
/// `(n_0, stride)` (padded columns): w → decay·w − k·g in the `touched` columns, leaving their
/// gradient at zero, and w → decay·w in the others (nothing when decay is 1).
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
#[allow(clippy::too_many_arguments)]
fn step_first_layer<F: Real>(
    w: &mut [F],
    n: usize,
    g: &mut [F],
    stride: usize,
    touched: &[bool],
    touched_list: &[usize],
    decay: F,
    k: F,
) {
    if decay != F::one() {
        for (j, column) in w.chunks_exact_mut(n).enumerate() {
            if !touched[j] {
                column.iter_mut().for_each(|w| *w *= decay);
            }
        }
    }
    for &j in touched_list {
        let column = w[j * n..(j + 1) * n].iter_mut();
        for (w, g) in column.zip(&mut g[j * stride..j * stride + n]) {
            *w = decay * *w - k * *g;
            *g = F::zero();
        }
    }
}

/// Writes the indices of the non-zero values of `x` to the start of `nonzero` (at least as
/// long as `x`), in order, and returns how many there are.
///
/// Whether a pixel is 0 is unpredictable, so there is no branch per pixel: eight pixels at a
/// time, the bits of the non-zero ones make a number that picks, from [`LEFT_PACK`], where
/// they are among the eight; all eight slots are written and the count moves past the
/// non-zero ones. (One pixel at a time, writing every index and moving past the non-zero
/// ones, took a third of the step's own time outside the column loops.)
fn nonzero_indices<F: Real>(x: &[F], nonzero: &mut [usize]) -> usize {
    assert!(nonzero.len() >= x.len(), "room for every index");
    let (eights, tail) = x.as_chunks::<8>();
    let mut count = 0;
    for (c, values) in eights.iter().enumerate() {
        let bits = values
            .iter()
            .enumerate()
            .fold(0, |bits, (i, &v)| bits | usize::from(v != F::zero()) << i);
        // count ≤ 8·c, so these eight slots are within x's length.
        let slots: &mut [usize; 8] = (&mut nonzero[count..count + 8])
            .try_into()
            .expect("8 slots");
        for (slot, &at) in slots.iter_mut().zip(&LEFT_PACK[bits]) {
            *slot = 8 * c + usize::from(at);
        }
        count += bits.count_ones() as usize;
    }
    for (i, &v) in tail.iter().enumerate() {
        nonzero[count] = 8 * eights.len() + i;
        count += usize::from(v != F::zero());
    }
    count
}

/// `LEFT_PACK[bits]`: the positions of the set bits of `bits` (0–255), lowest first, then
/// zeros.
const LEFT_PACK: [[u8; 8]; 256] = {
    let mut table = [[0; 8]; 256];
    let mut bits = 0;
    while bits < 256 {
        let (mut i, mut k) = (0, 0);
        while i < 8 {
            if bits >> i & 1 == 1 {
                table[bits][k] = i as u8;
                k += 1;
            }
            i += 1;
        }
        bits += 1;
    }
    table
};

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
        sum.nabla_w[0] = Array2::zeros((net.sizes[0], net.sizes[1].next_multiple_of(CHUNK)));
        let layers = || net.sizes[1..].iter().map(|&n| Array1::zeros(n));
        PerExample {
            sum,
            x: Array1::zeros(net.sizes[0]),
            nonzero: vec![0; net.sizes[0]],
            touched: vec![false; net.sizes[0]],
            touched_list: vec![0; net.sizes[0] + 1],
            touched_count: 0,
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
        let count = nonzero_indices(x, &mut self.nonzero);
        let nonzero = &self.nonzero[..count];
        // Without a branch, as for the indices above: each index written at the end of the
        // list every time, and counted the first time (the list has a slot to spare for when
        // every column is in it).
        let (touched, list) = (&mut self.touched[..], &mut self.touched_list[..]);
        let mut count = self.touched_count;
        for &j in nonzero {
            list[count] = j;
            count += usize::from(!touched[j]);
            touched[j] = true;
        }
        self.touched_count = count;

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
        let stride = self.sum.nabla_w[0].ncols();
        let nabla = self.sum.nabla_w[0]
            .as_slice_mut()
            .expect("made contiguous by new()");
        add_outer_columns(nabla, stride, delta, x, nonzero);
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
        let w0 = net.weights[0]
            .as_slice_memory_order_mut()
            .expect("update_mini_batch makes the first weights contiguous and column-major");
        let (n, stride) = (net.sizes[1], self.sum.nabla_w[0].ncols());
        let g0 = self.sum.nabla_w[0]
            .as_slice_mut()
            .expect("made contiguous by new()");
        let list = &self.touched_list[..self.touched_count];
        step_first_layer(w0, n, g0, stride, &self.touched, list, decay, k);
        for &j in list {
            self.touched[j] = false;
        }
        self.touched_count = 0;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::seeded;
    use rand::RngExt;

    /// The first layer's column kernels give the obvious loops' sums to the bit (each sum is
    /// added to in the same order): hidden sizes below, at and past a chunk, the book's 30;
    /// the last column among the non-zero ones (where a chunk cannot read past its column),
    /// and none at all; both precisions.
    #[test]
    fn the_column_kernels_are_the_obvious_loops() {
        fn each<F: Real>(rng: &mut crate::rng::SeededRng) {
            for n in [1, 7, 30, 32, 33, 100] {
                let n_in = 50;
                let mut draw = |len: usize| -> Vec<F> {
                    (0..len).map(|_| F::of(rng.random::<f64>() - 0.5)).collect()
                };
                let (w, x, z0, delta) = (draw(n * n_in), draw(n_in), draw(n), draw(n));
                let mut some: Vec<usize> = (0..n_in).filter(|j| j % 3 != 1).collect();
                some.push(n_in - 1);
                for nonzero in [&some[..], &[n_in - 1], &[]] {
                    let what = format!("{} n = {n}, {} columns", F::NAME, nonzero.len());
                    let (mut fast, mut slow) = (z0.clone(), z0.clone());
                    add_columns(&mut fast, &w, &x, nonzero);
                    add_columns_slow(&mut slow, &w, &x, nonzero);
                    assert_eq!(fast, slow, "add_columns, {what}");

                    let stride = n.next_multiple_of(CHUNK);
                    let mut padded = vec![F::zero(); n_in * stride];
                    let mut plain = vec![F::zero(); n_in * n];
                    for _ in 0..2 {
                        add_outer_columns(&mut padded, stride, &delta, &x, nonzero);
                        add_outer_columns_slow(&mut plain, &delta, &x, nonzero);
                    }
                    let unpadded: Vec<F> = padded
                        .chunks(stride)
                        .flat_map(|column| column[..n].to_vec())
                        .collect();
                    assert_eq!(unpadded, plain, "add_outer_columns, {what}");
                    let padding = padded.chunks(stride).flat_map(|column| &column[n..]);
                    assert!(padding.into_iter().all(|&g| g == F::zero()), "{what}");
                }
            }
        }
        let mut rng = seeded(11);
        each::<f32>(&mut rng);
        each::<f64>(&mut rng);
    }

    /// The non-zero indices come out in order, whatever the length (whole groups of eight
    /// and a tail) and however many are 0.
    #[test]
    fn nonzero_indices_are_the_non_zero_values_in_order() {
        let mut rng = seeded(12);
        for len in [0, 1, 7, 8, 9, 784] {
            for zeros in [0.0, 0.5, 0.81, 1.0] {
                let x: Vec<f32> = (0..len)
                    .map(|_| {
                        if rng.random::<f64>() < zeros {
                            0.0
                        } else {
                            rng.random()
                        }
                    })
                    .collect();
                let mut nonzero = vec![usize::MAX; len];
                let count = nonzero_indices(&x, &mut nonzero);
                let want: Vec<usize> = (0..len).filter(|&j| x[j] != 0.0).collect();
                assert_eq!(
                    &nonzero[..count],
                    &want[..],
                    "{len} values, {zeros} of them 0"
                );
            }
        }
    }
}
