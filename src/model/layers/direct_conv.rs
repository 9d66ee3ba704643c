//! A convolution's forward product and its ∇W computed straight from the layer's input,
//! without unrolling the patches into `cols` ([`super::conv_pool::im2col`]) — for a first
//! layer like the book's: one input channel and 5×5 filters, so that each output is a sum of
//! only C·K² = 25 products. Not in `network3.py`, where Theano picks its own kernels.
//!
//! At that size a general product is a poor fit: W·cols is a `(20, 25)·(25, m·576)` product
//! and ∇W = δ_Z·colsᵀ a `(20, m·576)·(m·576, 25)` one, each weight or unrolled value used only
//! 20 or 25 times, and a general product copies both operands into its packed layout on every
//! call, after im2col has made 25 copies of every input value. Here the input is read where
//! it lies, a few rows of one example at a time, which stay in L1:
//!
//! - [`forward`]: z[f, e, y, x] = Σ_{c,i,j} w[f, c·K² + i·K + j]·input[c, e, y + i, x + j] — a
//!   tile of FB filters × one row chunk of XV·L outputs is kept in registers while each of the
//!   C·K² weights of those filters is multiplied into the chunk's input values shifted by
//!   (i, j) (XV loads, FB broadcasts, FB·XV multiply-adds);
//! - [`weight_gradient`]: ∇W[f, c·K² + i·K + j] = Σ_{e,y,x} δ_Z[f, e, y, x]·input[c, e, y + i,
//!   x + j] (BP4) — for a tile of FB filters × JB offsets j, L lanes of each sum stay in
//!   registers down all m·H′ rows of δ_Z (FB + JB loads per FB·JB multiply-adds), then are
//!   added up.
//!
//! Each row of outputs is cut into vectors of L lanes (in [`forward`] one 256-bit register: 8
//! `f32` or 4 `f64`; in [`weight_gradient`] 8 of either), so W′ must be a multiple of 8
//! ([`applies`]); otherwise, and for layers with longer sums, [`super::pass`] keeps im2col and
//! the general products. The book's first layer has W′ = 24.
//!
//! Measured with `nndl bench --phases` on `ch6-conv` (20,000 images, one core, AVX2): in
//! `f32` the forward product went from 0.31 s (plus 0.07 s of im2col) to 0.27 s, and ∇W from
//! 0.46 s to 0.24 s. In `f64` the forward product went from 0.60 s (plus 0.10 s) to 0.51 s,
//! but ∇W from 0.73 s to 0.89 s: the two together are about even there.
//!
//! The tests hold both kernels to nested loops over the definitions, and whole passes to
//! [`super::reference`].
//!
//! Shapes as in [`super::conv_pool`]: `weights` and ∇W `(F, C·K²)`, `input` `(C, ≥ m·H·W)`,
//! `z` and δ_Z `(F, ≥ m·H′·W′)`, each row contiguous.

use multiversion::multiversion;
use ndarray::{ArrayView2, ArrayViewMut2};

use crate::real::Real;

use super::item::Shape;
use super::small_batch;

/// The longest sum per output (C·K²) taken here: up to three channels of 5×5. The book's
/// first layer has 25; its second, 500 (20 channels), goes through im2col and general
/// products, which reuse each unrolled value for all 40 filters from the cache and run there at
/// 55–65% of the peak (`nndl bench --phases`).
pub const MAX_TERMS: usize = 75;

/// Lanes of one vector register for `F`: 8 `f32` or 4 `f64`.
fn lanes<F: Real>() -> usize {
    32 / std::mem::size_of::<F>()
}

/// Whether [`forward`] and [`weight_gradient`] take a convolution of `input` with K×K filters:
/// rows of outputs a multiple of 8 long, a short sum per output, and FMA on this CPU (without
/// it `mul_add` is a library call).
pub fn applies<F: Real>(input: Shape, k: usize) -> bool {
    let [c, h, w] = input;
    let fits = (1..=h.min(w)).contains(&k);
    fits && (w + 1 - k).is_multiple_of(GRADIENT_LANES)
        && c * k * k <= MAX_TERMS
        && small_batch::available()
}

/// The values of `a`, whose rows must be contiguous and evenly spaced, as one slice with the
/// rows' stride.
pub(super) fn rows_of<'a, F: Real>(a: &'a ArrayView2<'a, F>, what: &str) -> (&'a [F], usize) {
    let stride = a.strides()[0];
    assert!(
        a.strides()[1] == 1 && stride >= 0 && a.as_slice_memory_order().is_some(),
        "{what}: rows must be contiguous, one after another"
    );
    (
        a.as_slice_memory_order().expect("checked above"),
        stride as usize,
    )
}

/// Filters per tile of [`forward`]: FB × XV accumulators (XV ≤ 3), XV input vectors and a
/// broadcast weight fit AVX2's 16 registers (with 4 filters the compiler kept one
/// accumulator on the stack).
const FORWARD_FILTERS: usize = 3;

/// z = W·(the patches of `input`) for the first `m` examples, the product im2col and a
/// general product compute. Panics unless [`applies`] and the arrays hold the shapes.
pub fn forward<F: Real>(
    weights: ArrayView2<F>,
    input: ArrayView2<F>,
    shape: Shape,
    k: usize,
    m: usize,
    mut z: ArrayViewMut2<F>,
) {
    let filters = weights.nrows();
    let geometry = Geometry::checked::<F>(shape, k, m, &input, z.dim(), filters);
    let Geometry { c, wo, .. } = geometry;
    assert_eq!(weights.ncols(), c * k * k, "weights are (F, C·K²)");
    let w_all = weights.as_standard_layout();
    let w_all = w_all.as_slice().expect("standard layout");
    let (x, x_stride) = rows_of(&input, "input");
    assert!(z.strides()[1] == 1, "z: rows must be contiguous");
    let z_stride = z.strides()[0] as usize;
    let z = z
        .as_slice_memory_order_mut()
        .expect("rows of z are contiguous");
    let vectors = wo / lanes::<F>();
    // The longest chunk of at most three vectors that tiles the row.
    let xv = (1..=3)
        .rev()
        .find(|v| vectors.is_multiple_of(*v))
        .expect("1 divides");
    for f0 in (0..filters).step_by(FORWARD_FILTERS) {
        let fb = FORWARD_FILTERS.min(filters - f0);
        let w_tile = &w_all[f0 * c * k * k..(f0 + fb) * c * k * k];
        let z_tile = &mut z[f0 * z_stride..];
        if lanes::<F>() == 8 {
            with_const!(xv, XV => with_const!(fb, FB =>
                forward_kernel::<F, 8, XV, FB>(w_tile, x, x_stride, geometry, m, z_tile, z_stride);
                1 2 3); 1 2 3)
        } else {
            with_const!(xv, XV => with_const!(fb, FB =>
                forward_kernel::<F, 4, XV, FB>(w_tile, x, x_stride, geometry, m, z_tile, z_stride);
                1 2 3); 1 2 3)
        }
    }
}

/// A convolution's sizes: input `(C, H, W)`, filters K×K, maps H′×W′.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    ho: usize,
    wo: usize,
}

impl Geometry {
    /// The sizes of a convolution of `shape` with K×K filters, after checking that the kernels
    /// take it, that `input` holds m examples `(C, ≥ m·H·W)` and that the maps (z or δ_Z), of
    /// dimensions `maps`, are `(filters, ≥ m·H′·W′)`.
    fn checked<F: Real>(
        shape: Shape,
        k: usize,
        m: usize,
        input: &ArrayView2<F>,
        maps: (usize, usize),
        filters: usize,
    ) -> Self {
        let [c, h, w] = shape;
        assert!(applies::<F>(shape, k), "the direct kernels take this layer");
        let (ho, wo) = (h + 1 - k, w + 1 - k);
        assert!(
            input.nrows() == c && input.ncols() >= m * h * w,
            "input is (C, m·H·W)"
        );
        assert!(
            maps.0 == filters && maps.1 >= m * ho * wo,
            "z and δ_Z are (F, m·H′·W′)"
        );
        Geometry { c, h, w, k, ho, wo }
    }
}

/// FB filters (the first FB rows of `w`, `(FB, C·K²)`) into the first FB rows of `z`.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn forward_kernel<F: Real, const L: usize, const XV: usize, const FB: usize>(
    w: &[F],
    x: &[F],
    x_stride: usize,
    g: Geometry,
    m: usize,
    z: &mut [F],
    z_stride: usize,
) {
    let Geometry {
        c,
        h,
        w: width,
        k,
        ho,
        wo,
    } = g;
    let terms = c * k * k;
    // The tile's weights term by term, the FB filters' side by side: wt[t·FB + f] = w[f, t].
    let mut wt = [F::zero(); MAX_TERMS * FORWARD_FILTERS];
    for (t, wt) in wt.chunks_exact_mut(FB).take(terms).enumerate() {
        for (f, wt) in wt.iter_mut().enumerate() {
            *wt = w[f * terms + t];
        }
    }
    for e in 0..m {
        for y in 0..ho {
            for x0 in (0..wo).step_by(XV * L) {
                // acc[f][v][l]: filter f's output at x0 + v·L + l of row y.
                let mut acc = [[[F::zero(); L]; XV]; FB];
                for ci in 0..c {
                    for i in 0..k {
                        let at = ci * x_stride + e * h * width + (y + i) * width + x0;
                        // The row's values from x0 to x0 + XV·L + K − 2 (≤ W − 1), in K
                        // windows of XV·L shifted by j = 0 … K − 1.
                        let row = &x[at..at + XV * L + k - 1];
                        let t0 = (ci * k + i) * k;
                        let weights = wt[t0 * FB..(t0 + k) * FB].chunks_exact(FB);
                        for (window, wj) in row.windows(XV * L).zip(weights) {
                            let mut v = [[F::zero(); L]; XV];
                            for (xv, v) in v.iter_mut().enumerate() {
                                v.copy_from_slice(&window[xv * L..xv * L + L]);
                            }
                            for (acc, &wf) in acc.iter_mut().zip(wj) {
                                for (acc, v) in acc.iter_mut().zip(&v) {
                                    for l in 0..L {
                                        acc[l] = wf.mul_add(v[l], acc[l]);
                                    }
                                }
                            }
                        }
                    }
                }
                let at = e * ho * wo + y * wo + x0;
                for (f, acc) in acc.iter().enumerate() {
                    let out = &mut z[f * z_stride + at..f * z_stride + at + XV * L];
                    for (out, acc) in out.chunks_exact_mut(L).zip(acc) {
                        out.copy_from_slice(acc);
                    }
                }
            }
        }
    }
}

/// Filters and offsets j per tile of [`weight_gradient`], at most: FB × JB accumulators and
/// FB + 1 operands fit AVX2's 16 registers — in `f32` 2 × 6; in `f64`, whose accumulators of
/// [`GRADIENT_LANES`] take two registers each, 1 × 5.
const GRADIENT_FILTERS: usize = 2;
const GRADIENT_OFFSETS: usize = 6;

/// Lanes of [`weight_gradient`]'s accumulators in both precisions. (With 4 `f64` lanes, one
/// register, the compiler vectorised the loop across the offsets instead, with shuffles, and
/// it ran at two thirds of the speed: 1.36 s against 0.89 s in the measurement above.)
const GRADIENT_LANES: usize = 8;

/// ∇W = δ_Z·(the patches of `input`)ᵀ, summed over the first `m` examples, into `nabla_w`
/// (overwritten). Panics unless [`applies`] and the arrays hold the shapes.
pub fn weight_gradient<F: Real>(
    dz: ArrayView2<F>,
    input: ArrayView2<F>,
    shape: Shape,
    k: usize,
    m: usize,
    mut nabla_w: ArrayViewMut2<F>,
) {
    let filters = nabla_w.nrows();
    let geometry = Geometry::checked::<F>(shape, k, m, &input, dz.dim(), filters);
    let Geometry { c, w, .. } = geometry;
    assert_eq!(nabla_w.ncols(), c * k * k, "∇W is (F, C·K²)");
    let (x, x_stride) = rows_of(&input, "input");
    let (d, d_stride) = rows_of(&dz, "δ_Z");
    let (tile_filters, tile_offsets) = if lanes::<F>() == 8 {
        (GRADIENT_FILTERS, GRADIENT_OFFSETS)
    } else {
        (1, 5)
    };
    for f0 in (0..filters).step_by(tile_filters) {
        let fb = tile_filters.min(filters - f0);
        let d_tile = &d[f0 * d_stride..];
        for ci in 0..c {
            for i in 0..k {
                for j0 in (0..k).step_by(tile_offsets) {
                    let jb = tile_offsets.min(k - j0);
                    let from = ci * x_stride + i * w + j0;
                    let sums = with_const!(fb, FB => with_const!(jb, JB =>
                        gradient_kernel::<F, GRADIENT_LANES, FB, JB>(
                            d_tile, d_stride, &x[from..], geometry, m
                        );
                        1 2 3 4 5 6); 1 2);
                    for (f, sums) in sums.iter().take(fb).enumerate() {
                        let t0 = (ci * k + i) * k + j0;
                        for (jj, &s) in sums.iter().take(jb).enumerate() {
                            nabla_w[[f0 + f, t0 + jj]] = s;
                        }
                    }
                }
            }
        }
    }
}

/// For FB filters (rows of `d`) and JB offsets: sums[f][j] = Σ_{e,y,x} d[f, e·H′W′ + y·W′ + x]
/// · x[e·HW + y·W + x + j], where `x` starts at the input's channel c, row i, column j0.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn gradient_kernel<F: Real, const L: usize, const FB: usize, const JB: usize>(
    d: &[F],
    d_stride: usize,
    x: &[F],
    g: Geometry,
    m: usize,
) -> [[F; GRADIENT_OFFSETS]; GRADIENT_FILTERS] {
    let Geometry { h, w, ho, wo, .. } = g;
    let mut acc = [[[F::zero(); L]; JB]; FB];
    for e in 0..m {
        for y in 0..ho {
            let d_at = e * ho * wo + y * wo;
            let x_at = e * h * w + y * w;
            // Values x … x + W′ + JB − 2 of the input row (within the row: j0 + JB ≤ K), a
            // window of L + JB − 1 of them per vector of δ_Z.
            let row = &x[x_at..x_at + wo + JB - 1];
            let mut d_rows: [_; FB] =
                std::array::from_fn(|f| d[f * d_stride + d_at..][..wo].chunks_exact(L));
            for window in row.windows(L + JB - 1).step_by(L) {
                let mut dv = [[F::zero(); L]; FB];
                for (dv, d_row) in dv.iter_mut().zip(&mut d_rows) {
                    dv.copy_from_slice(d_row.next().expect("W′/L vectors per row"));
                }
                for j in 0..JB {
                    let v = &window[j..j + L];
                    for (acc, dv) in acc.iter_mut().zip(&dv) {
                        for l in 0..L {
                            acc[j][l] = dv[l].mul_add(v[l], acc[j][l]);
                        }
                    }
                }
            }
        }
    }
    lane_sums(&acc)
}

/// The sums of a tile of I × J accumulators of L lanes each, each one's lanes added in order,
/// in the top-left corner of an IM × JM array (a tile's largest).
#[inline(always)]
pub(super) fn lane_sums<
    F: Real,
    const L: usize,
    const I: usize,
    const J: usize,
    const JM: usize,
    const IM: usize,
>(
    acc: &[[[F; L]; J]; I],
) -> [[F; JM]; IM] {
    let mut sums = [[F::zero(); JM]; IM];
    for (sums, acc) in sums.iter_mut().zip(acc) {
        for (s, acc) in sums.iter_mut().zip(acc) {
            *s = acc.iter().fold(F::zero(), |s, &a| s + a);
        }
    }
    sums
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::RngExt;
    use rand::SeedableRng;

    /// A `(rows, cols)` array of values drawn uniformly from [−1, 1).
    pub(in crate::model::layers) fn random<F: Real>(
        rows: usize,
        cols: usize,
        rng: &mut rand::rngs::StdRng,
    ) -> Array2<F> {
        Array2::from_shape_fn((rows, cols), |_| F::of(rng.random_range(-1.0..1.0)))
    }

    /// z and ∇W by the definitions' nested loops.
    fn obvious<F: Real>(
        weights: &Array2<F>,
        x: &Array2<F>,
        dz: &Array2<F>,
        [c, h, w]: Shape,
        k: usize,
        m: usize,
    ) -> (Array2<F>, Array2<F>) {
        let (ho, wo) = (h + 1 - k, w + 1 - k);
        let filters = weights.nrows();
        let mut z = Array2::zeros((filters, m * ho * wo));
        let mut nabla_w = Array2::zeros((filters, c * k * k));
        for f in 0..filters {
            for e in 0..m {
                for y in 0..ho {
                    for xo in 0..wo {
                        let out = e * ho * wo + y * wo + xo;
                        for ci in 0..c {
                            for i in 0..k {
                                for j in 0..k {
                                    let t = ci * k * k + i * k + j;
                                    let input = x[[ci, e * h * w + (y + i) * w + xo + j]];
                                    z[[f, out]] += weights[[f, t]] * input;
                                    nabla_w[[f, t]] += dz[[f, out]] * input;
                                }
                            }
                        }
                    }
                }
            }
        }
        (z, nabla_w)
    }

    fn agree_with_the_obvious_loops<F: Real>(tolerance: f64) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        let l = GRADIENT_LANES;
        // The book's first layer; three channels; odd filter counts (partial tiles); K = 7
        // (offsets in two tiles); rows of one, two and five vectors.
        let cases = [
            (20, [1, 28, 28], 5, 3),
            (5, [3, 2 * l + 2, l + 2], 3, 2),
            (3, [1, l + 6, 2 * l + 6], 7, 1),
            (7, [2, 5, 5 * l + 1], 2, 4),
            (1, [1, 4, l], 1, 10),
        ];
        for (filters, shape, k, m) in cases {
            let [c, h, w] = shape;
            let (ho, wo) = (h + 1 - k, w + 1 - k);
            assert!(applies::<F>(shape, k), "{shape:?} K {k}");
            let weights = random::<F>(filters, c * k * k, &mut rng);
            // One more example's room than used, as a pass's buffers have.
            let x = random::<F>(c, (m + 1) * h * w, &mut rng);
            let dz = random::<F>(filters, (m + 1) * ho * wo, &mut rng);
            let (z_want, nabla_want) = obvious(&weights, &x, &dz, shape, k, m);
            let mut z = Array2::from_elem((filters, (m + 1) * ho * wo), F::of(7.0));
            forward(weights.view(), x.view(), shape, k, m, z.view_mut());
            let mut nabla_w = Array2::zeros((filters, c * k * k));
            weight_gradient(dz.view(), x.view(), shape, k, m, nabla_w.view_mut());
            let n = m * ho * wo;
            for (f, row) in z.rows().into_iter().enumerate() {
                for (at, &got) in row.iter().enumerate() {
                    let want = if at < n { z_want[[f, at]] } else { F::of(7.0) };
                    assert!(
                        (got - want).abs().as_f64() <= tolerance,
                        "{shape:?} K {k}: z[{f}, {at}] = {got:?}, want {want:?}"
                    );
                }
            }
            for ((f, t), &got) in nabla_w.indexed_iter() {
                let want = nabla_want[[f, t]];
                assert!(
                    (got - want).abs().as_f64() <= tolerance * n as f64,
                    "{shape:?} K {k}: ∇W[{f}, {t}] = {got:?}, want {want:?}"
                );
            }
        }
    }

    #[test]
    fn kernels_agree_with_the_obvious_loops() {
        if !small_batch::available() {
            return;
        }
        agree_with_the_obvious_loops::<f64>(1e-12);
        agree_with_the_obvious_loops::<f32>(1e-4);
    }

    #[test]
    fn the_book_s_first_layer_is_taken_and_its_second_is_not() {
        if !small_batch::available() {
            return;
        }
        assert!(applies::<f32>([1, 28, 28], 5) && applies::<f64>([1, 28, 28], 5));
        assert!(!applies::<f32>([20, 12, 12], 5));
        // W′ = 23 is no whole number of vectors; a filter as wide as the image leaves maps of
        // one value, and a wider one none.
        assert!(!applies::<f32>([1, 27, 27], 5));
        assert!(!applies::<f32>([1, 8, 8], 8) && !applies::<f32>([1, 8, 8], 9));
    }
}
