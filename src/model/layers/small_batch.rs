//! A dense layer's products when the mini-batch holds few examples — chapter 6's mini-batch
//! is 10 — written for that case instead of going through a general matrix product. Not in
//! `network3.py`, where Theano picks its own kernels.
//!
//! With m ≤ [`MAX_EXAMPLES`] examples, a general product (`matrixmultiply`'s 8×8 tiles) pads
//! the m columns to 16 and copies all of W into its packed layout on every call, for only m
//! uses of each weight. Here each weight is read where it lies and used for all m examples
//! while it is in a register. They are used with every backend; `cargo bench --bench training
//! -- layers-dense` (with or without `--features openblas`) times them against the general
//! products at chapter 6's shapes.
//!
//! The kernels:
//!
//! - [`forward`]: z = α·W·xᵀ — for each neuron, m dot products of its row of W with the m
//!   examples' inputs, in m vector accumulators (in `f32` block by block of inputs that stay
//!   in L1, and two neurons at a time where AVX-512's 32 registers hold their 2·m
//!   accumulators, so that each strip of inputs is loaded once for both; and in `f32` each
//!   strip of W asked for, prefetched, while the neurons before it are computed);
//! - [`backward_update`]: BP2 (the error of the layer's input, δᵀ·W, with the weights before
//!   the update) and BP3/BP4 with `network3.py`'s update (W ← decay·W − scale·δ·x, b ← b −
//!   scale·Σδ) in one pass over W: a strip of L columns of W is read once, feeds the m
//!   examples' input errors (accumulated in registers down the strip) and its own ∇W, and is
//!   written back updated. The gradient ∇W is never stored. Each row's next line is asked
//!   for (prefetched) a strip ahead, since a walk down the rows is one the hardware does not
//!   foresee. (A first layer, with no input error to send back, is updated by a general
//!   product instead: this kernel's update alone measured slower than `matrixmultiply`'s.)
//! - [`update_packed`]: the update alone, for network2's batched step, whose BP2 is a product
//!   of its own: the same walk down strips of columns without the input error, each weight
//!   updated as [`backward_update`] updates it. (On `ch6-fc`'s first layer, 100×784, it
//!   measured no faster than the general product there, so chapter 6's dense layers keep
//!   that: `nndl bench --nets ch6-fc`, eight runs alternated, AMD EPYC with AVX2.)
//! - [`forward_packed`], [`backward_update_packed`]: the same on some of the rows of W, from
//!   inputs packed once, for threads that share a layer's neurons (see [`super::dense`]).
//!
//! Shapes: `w` `(n_out, n_in)`; `x` `(m, n_in)`, one example per row (the dense layer's
//! input buffer); `z` and `delta` `(n_out, ≥ m)`, one example per column; `d_x` like `x`. The
//! general path in [`super::pass`] computes the same with `general_mat_mul`, and the tests
//! hold the two to each other.
//!
//! Both first rearrange the m examples' inputs into strips of L (`pack`, m·n_in copies), so
//! that a strip's values for every example are read from one place at fixed offsets, starting
//! on a cache line (vector loads that straddle two lines cost the kernels a third of their
//! speed at 100×640 and 1000×640 in `layers-dense-f32`).
//!
//! The accumulators are arrays of L = 8 lanes — one 256-bit register of `f32`, two of `f64` —
//! and the loops are compiled for AVX2+FMA and AVX-512 ([`multiversion`]); `mul_add` makes each
//! step one fused multiply-add. They are used only where the CPU has FMA ([`available`]),
//! since without it `mul_add` is a library call.

use multiversion::multiversion;
use ndarray::{ArrayView2, Axis};

use crate::real::{prefetch, Real};

/// The largest mini-batch these kernels take: one accumulator per example has to fit in the
/// registers beside the operands (in `f32`, m + 4 of AVX2's 16; `f64`'s take two registers
/// each, and some spill to the stack). Larger mini-batches reuse each weight enough for a
/// general product to be the better choice.
pub const MAX_EXAMPLES: usize = 10;

/// Whether these kernels are used on this CPU: x86-64 with AVX2 and FMA, or AArch64.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(target_arch = "aarch64")]
    {
        true
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// Whether [`forward_kernel`] takes two rows of W at a time: in `f32` where the CPU has 32
/// vector registers (AVX-512), which hold the 2·m accumulators beside the operands. Each strip
/// of inputs is then loaded once for two rows; with AVX2's 16 registers, or `f64`'s
/// accumulators of two registers each, they would not fit.
fn two_rows<F: Real>() -> bool {
    std::mem::size_of::<F>() == 4 && avx512()
}

/// Whether the kernels run their AVX-512 build, with 32 vector registers (x86-64 with
/// AVX-512F and VL) instead of AVX2's 16.
pub(super) fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Calls `$body` with `$e` a constant equal to `$m` (1 ..= [`MAX_EXAMPLES`], as `check`
/// has made sure), so that the kernels' per-example accumulators are arrays of a known length.
macro_rules! with_examples {
    ($m:expr, $e:ident => $body:expr) => {
        with_const!($m, $e => $body; 1 2 3 4 5 6 7 8 9 10)
    };
}

/// Lanes of one accumulator: one AVX2 register of `f32`, two of `f64`. (With 4 lanes, one
/// register, the compiler vectorised the `f64` loops across examples instead, with shuffles,
/// and they ran at half the speed of a general product; with 8 they run at its speed or
/// better.)
const L: usize = 8;

/// z[j, e] = α·Σ_k w[j, k]·x[e, k] for the first `m` examples, `z` `(n_out, z_stride)`.
/// `packed` is scratch space, grown on the first call and reused after.
///
/// Panics unless 1 ≤ m ≤ [`MAX_EXAMPLES`] and the slices hold the shapes.
#[allow(clippy::too_many_arguments)]
pub fn forward<F: Real>(
    alpha: F,
    w: &[F],
    n_in: usize,
    x: &[F],
    m: usize,
    z: &mut [F],
    z_stride: usize,
    packed: &mut Vec<F>,
) {
    check(w.len(), n_in, x.len(), m, z.len(), z_stride);
    let packed = pack(x, n_in, m, packed);
    forward_packed(alpha, w, n_in, packed, m, z, z_stride);
}

/// [`forward`] from inputs already [`pack`]ed — for any whole number of rows of W and the
/// same rows of z, so that threads can each take some of a layer's neurons and share one
/// packing. Each row's sums are the same however the rows are split.
pub fn forward_packed<F: Real>(
    alpha: F,
    w: &[F],
    n_in: usize,
    packed: &[F],
    m: usize,
    z: &mut [F],
    z_stride: usize,
) {
    check(w.len(), n_in, packed.len(), m, z.len(), z_stride);
    let (a, w, p) = (alpha, w, packed);
    if two_rows::<F>() {
        with_examples!(m, E => forward_kernel::<F, L, E, 2>(a, w, n_in, p, z, z_stride))
    } else {
        with_examples!(m, E => forward_kernel::<F, L, E, 1>(a, w, n_in, p, z, z_stride))
    }
}

/// For the first `m` examples, with `delta` `(n_out, delta_stride)` the error δ of the
/// layer's weighted input:
/// - d_x[e, k] = Σ_j w[j, k]·δ[j, e] with the weights as they were (BP2);
/// - w[j, k] ← decay·w[j, k] − scale·Σ_e δ[j, e]·x[e, k] (BP4 and the update);
/// - b[j] ← b[j] − scale·Σ_e δ[j, e] (BP3 and the update).
///
/// `packed` is scratch space, as for [`forward`]. Panics unless 1 ≤ m ≤ [`MAX_EXAMPLES`] and
/// the slices hold the shapes.
#[allow(clippy::too_many_arguments)]
pub fn backward_update<F: Real>(
    w: &mut [F],
    b: &mut [F],
    n_in: usize,
    delta: &[F],
    delta_stride: usize,
    x: &[F],
    d_x: &mut [F],
    m: usize,
    (decay, scale): (F, F),
    packed: &mut Vec<F>,
) {
    assert_eq!(w.len(), b.len() * n_in, "w is (n_out, n_in)");
    check(w.len(), n_in, x.len(), m, delta.len(), delta_stride);
    update_biases(b, delta, delta_stride, m, scale);
    let packed = pack(x, n_in, m, packed);
    backward_update_packed(w, n_in, delta, delta_stride, packed, d_x, m, (decay, scale));
}

/// The update of [`backward_update_packed`] alone, for a step that computes the input error
/// apart: w[j, k] ← decay·w[j, k] − scale·Σ_e δ[j, e]·x[e, k] over the first
/// `m` examples, `delta` `(w's rows, delta_stride)`, from inputs already [`pack`]ed. Each
/// weight is updated as [`backward_update_packed`] updates it, to the bit.
pub fn update_packed<F: Real>(
    w: &mut [F],
    n_in: usize,
    delta: &[F],
    delta_stride: usize,
    packed: &[F],
    m: usize,
    step: (F, F),
) {
    check(w.len(), n_in, packed.len(), m, delta.len(), delta_stride);
    with_examples!(m, E => update_kernel::<F, L, E>(w, n_in, delta, delta_stride, packed, step))
}

/// b[j] ← b[j] − scale·Σ_e δ[j, e] over the first `m` examples (BP3 and the update), `delta`
/// `(b.len(), delta_stride)`.
pub fn update_biases<F: Real>(b: &mut [F], delta: &[F], delta_stride: usize, m: usize, scale: F) {
    for (b, row) in b.iter_mut().zip(delta.chunks(delta_stride)) {
        *b -= scale * row[..m].iter().fold(F::zero(), |s, &d| s + d);
    }
}

/// [`backward_update`]'s input error and update of W from inputs already [`pack`]ed, for any
/// whole number of rows of W (and the same rows of δ): d_x then holds those rows' part of
/// the input error, Σ over them of w[j, k]·δ[j, e], and the parts of all rows add up to
/// BP2's. Each weight is updated the same however the rows are split.
#[allow(clippy::too_many_arguments)]
pub fn backward_update_packed<F: Real>(
    w: &mut [F],
    n_in: usize,
    delta: &[F],
    delta_stride: usize,
    packed: &[F],
    d_x: &mut [F],
    m: usize,
    step: (F, F),
) {
    check(w.len(), n_in, packed.len(), m, delta.len(), delta_stride);
    assert!(d_x.len() >= m * n_in, "d_x is (m, n_in)");
    with_examples!(m, E => backward_kernel::<F, L, E>(
        w, n_in, delta, delta_stride, packed, d_x, step
    ))
}

/// The shapes the kernels rely on: `w` a whole number of rows of n_in, `x` at least m rows,
/// `out` `(w's rows, stride ≥ m)`.
fn check(w: usize, n_in: usize, x: usize, m: usize, out: usize, stride: usize) {
    assert!(
        (1..=MAX_EXAMPLES).contains(&m),
        "{m} examples: the small-batch kernels take 1 to {MAX_EXAMPLES}"
    );
    assert!(n_in > 0 && w.is_multiple_of(n_in), "w is (n_out, n_in)");
    assert!(x >= m * n_in, "x is (m, n_in)");
    assert!(stride >= m && out >= (w / n_in) * stride, "(n_out, ≥ m)");
}

/// Rearranges x `(m, n_in)` into strips of L inputs, each strip holding the m examples' L
/// values one after another — packed[(s·m + e)·L + l] = x[e, s·L + l], zeros past n_in — so
/// that the kernels read every example's values for a strip at fixed offsets from one place.
/// m·n_in copies, against m·n_in·n_out multiply-adds in the products.
pub fn pack<'a, F: Real>(x: &[F], n_in: usize, m: usize, packed: &'a mut Vec<F>) -> &'a [F] {
    // Grown (and zeroed) only when the shape changes: every value read is written below.
    if packed.len() != packed_len::<F>(n_in, m) {
        packed.clear();
        packed.resize(packed_len::<F>(n_in, m), F::zero());
    }
    let range = packed_range::<F>(packed, n_in, m);
    let packed = &mut packed[range];
    for (e, row) in x.chunks_exact(n_in).take(m).enumerate() {
        // Whole strips as arrays of L: one vector copy each, where slices of L values were
        // each a call to copy (the packing took half as long as the forward product of
        // `ch6-conv`'s `fc:100` on two threads).
        let (strips, tail) = row.as_chunks::<L>();
        for (s, strip) in strips.iter().enumerate() {
            let at = (s * m + e) * L;
            let to: &mut [F; L] = (&mut packed[at..at + L]).try_into().expect("L values");
            *to = *strip;
        }
        if !tail.is_empty() {
            let at = (strips.len() * m + e) * L;
            let to = &mut packed[at..at + L];
            to[..tail.len()].copy_from_slice(tail);
            to[tail.len()..].fill(F::zero());
        }
    }
    packed
}

/// [`pack`] of the inputs a dense layer gathers from the previous layer's output `prev`
/// `(C, m_max·HW)` — x[e, c·HW + p] = prev[c, e·HW + p] times `mask[e, c·HW + p]` if given
/// (`(m_max, C·HW)`), [`super::dense::gather`]'s — straight into `packed`, without the
/// gathered copy: a thread that takes some of a layer's neurons packs its own, reading each
/// example's values where they were computed. Whole strips of L are copied as one when a
/// channel's HW values fill whole strips (chapter 6's 12×12 and 4×4 maps); otherwise value by
/// value.
pub fn pack_maps<'a, F: Real>(
    prev: ArrayView2<F>,
    hw: usize,
    m: usize,
    mask: Option<ArrayView2<F>>,
    packed: &'a mut Vec<F>,
) -> &'a [F] {
    let n_in = prev.nrows() * hw;
    if packed.len() != packed_len::<F>(n_in, m) {
        packed.clear();
        packed.resize(packed_len::<F>(n_in, m), F::zero());
    }
    let range = packed_range::<F>(packed, n_in, m);
    let packed = &mut packed[range];
    let keep = |e: usize, k: usize| mask.map_or(F::one(), |mask| mask[[e, k]]);
    if hw.is_multiple_of(L) {
        let strips_per_channel = hw / L;
        for (c, row) in prev.outer_iter().enumerate() {
            let row = row.as_slice().expect("rows of activations are contiguous");
            for e in 0..m {
                let (strips, _) = row[e * hw..(e + 1) * hw].as_chunks::<L>();
                for (j, strip) in strips.iter().enumerate() {
                    let s = c * strips_per_channel + j;
                    let at = (s * m + e) * L;
                    let to: &mut [F; L] = (&mut packed[at..at + L]).try_into().expect("L values");
                    *to = match mask {
                        None => *strip,
                        Some(_) => std::array::from_fn(|l| strip[l] * keep(e, s * L + l)),
                    };
                }
            }
        }
    } else {
        // Value by value, k = c·HW + p counted along (one value per channel after another
        // dense layer: the 1,000 rows of `ch6-dropout`'s second `fc:1000`), from slices.
        // (Indexing `prev` and `mask` by [row, column] with k / HW and k % HW cost a third as
        // much as the layer's product for each thread, which all pack the whole mini-batch.)
        for e in 0..m {
            let mask = mask.map(|mask| {
                let row = mask.index_axis_move(Axis(0), e);
                row.to_slice().expect("mask rows are contiguous")
            });
            let mut k = 0;
            for row in prev.outer_iter() {
                let row = row.to_slice().expect("rows of activations are contiguous");
                for &value in &row[e * hw..(e + 1) * hw] {
                    let value = mask.map_or(value, |mask| value * mask[k]);
                    packed[((k / L) * m + e) * L + k % L] = value;
                    k += 1;
                }
            }
            for k in n_in..n_in.div_ceil(L) * L {
                packed[((k / L) * m + e) * L + k % L] = F::zero();
            }
        }
    }
    packed
}

/// Where in `packed` (grown by [`pack`] for m examples of n_in inputs) the packed inputs
/// lie: from its first cache line on.
fn packed_range<F: Real>(packed: &[F], n_in: usize, m: usize) -> std::ops::Range<usize> {
    let len = n_in.div_ceil(L) * m * L;
    let start = packed
        .as_ptr()
        .align_offset(CACHE_LINE)
        .min(packed.len() - len);
    start..start + len
}

/// The inputs the last [`pack`] of m examples of n_in inputs left in `packed`, to use them
/// again (a training step's backward pass, after its forward pass packed the same inputs).
pub fn packed<F: Real>(packed: &[F], n_in: usize, m: usize) -> &[F] {
    assert_eq!(
        packed.len(),
        packed_len::<F>(n_in, m),
        "packed for this shape"
    );
    &packed[packed_range::<F>(packed, n_in, m)]
}

/// The scratch space the kernels use for m examples of n_in inputs: the packed inputs, with
/// room to start them on a cache line, so that no vector load straddles two.
pub fn packed_len<F: Real>(n_in: usize, m: usize) -> usize {
    n_in.div_ceil(L) * m * L + CACHE_LINE / std::mem::size_of::<F>()
}

/// Bytes in a cache line.
const CACHE_LINE: usize = 64;

/// Bytes of packed inputs [`forward_kernel`] works through with every row of W before going
/// on, at most: most of a 32 KiB L1 data cache, the rest left to the rows of W passing
/// through. (Smaller blocks than needed measured slower: each adds the lanes up once more
/// per row.)
const FORWARD_BLOCK: usize = 28 * 1024;

#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn forward_kernel<F: Real, const L: usize, const E: usize, const R: usize>(
    alpha: F,
    w: &[F],
    n_in: usize,
    packed: &[F],
    z: &mut [F],
    z_stride: usize,
) {
    let full = n_in / L;
    // Blocks of strips that stay in L1 while every row of W is multiplied into them: read
    // from L2 for each row, the packed inputs held the loop to two thirds of its speed (35
    // GFLOP/s at 100×2880 against 54 at 100×640, whose inputs fit L1, in `layers-dense-f32`).
    let strip_bytes = E * L * std::mem::size_of::<F>();
    // Not in f64, whose accumulators take two registers each and some spill to the stack:
    // the loop is held back by those, and blocks measured slower (16% of the peak against
    // 28% for one block, `ch6-dropout`'s first `fc:1000` forward product in `nndl bench
    // --phases`), as each block adds the lanes up once more.
    let blocks = if std::mem::size_of::<F>() == 4 {
        (full * strip_bytes).div_ceil(FORWARD_BLOCK).max(1)
    } else {
        1
    };
    let block = full.div_ceil(blocks).max(1);
    for (b, xb) in packed[..full * E * L].chunks(block * E * L).enumerate() {
        let k0 = b * block * L;
        let width = xb.len() / E;
        let (xks, _) = xb.as_chunks::<L>();
        // R rows at a time, then one at a time for the rows left.
        let rows = w.chunks(R * n_in).zip(z.chunks_mut(R * z_stride));
        for (w, z) in rows {
            if w.len() == R * n_in {
                let wks = std::array::from_fn(|r| {
                    let k = r * n_in + k0;
                    w[k..k + width].as_chunks::<L>().0
                });
                let acc = strip_dots::<F, L, E, R>(wks, xks, R * n_in);
                for (acc, z) in acc.iter().zip(z.chunks_mut(z_stride)) {
                    add_lanes(acc, &mut z[..E], b > 0);
                }
            } else {
                for (row, z) in w.chunks_exact(n_in).zip(z.chunks_mut(z_stride)) {
                    let wks = [row[k0..k0 + width].as_chunks::<L>().0];
                    let [acc] = strip_dots::<F, L, E, 1>(wks, xks, n_in);
                    add_lanes(&acc, &mut z[..E], b > 0);
                }
            }
        }
    }
    // The last n_in mod L inputs, and α.
    let tail = &packed[full * E * L..];
    for (row, z) in w.chunks_exact(n_in).zip(z.chunks_mut(z_stride)) {
        let w_tail = &row[full * L..];
        for (e, z) in z[..E].iter_mut().enumerate() {
            let mut sum = if full > 0 { *z } else { F::zero() };
            for (l, &w) in w_tail.iter().enumerate() {
                sum = w.mul_add(tail[e * L + l], sum);
            }
            *z = alpha * sum;
        }
    }
}

/// acc[r][e][l]: the partial sum of lanes l, l + L, l + 2L, … of the product of row r's strips
/// `wks[r]` with example e's inputs — each strip of inputs loaded once for the R rows.
///
/// In `f32` each strip of W is asked for (prefetched) R rows ahead: the same strip in the rows
/// `next` values further on, which the next call reads. Read a block at a time, each row's part of W is a short
/// stream of its own, often on a page of its own, and a layer's W (4 MB for a `fc:1000` after
/// another) is read from L3 or memory: the hardware prefetchers, which do not cross pages,
/// start each row over. Without it, the forward phase of `ch6-dropout`'s second `fc:1000`
/// (1,000 inputs in two blocks) ran at 15–17% of the `f32` peak, with it at 32–35% (`nndl
/// bench --phases`, one core of an AMD EPYC with AVX2); `ch6-fc`'s `fc:100`, whose W stays in
/// L2, ran as fast as before. A prefetch reads nothing the sums see: the same bits. Not in
/// `f64`, which reads each row of W whole (one block) and whose loop is held by the
/// accumulators that do not fit in registers (see [`forward_kernel`]): there the prefetches
/// made no difference above this machine's noise (the first `fc:1000`'s forward phase took
/// 0.165–0.245 s with them, 0.197–0.364 s without, five runs each alternated).
#[inline(always)]
fn strip_dots<F: Real, const L: usize, const E: usize, const R: usize>(
    wks: [&[[F; L]]; R],
    xks: &[[F; L]],
    next: usize,
) -> [[[F; L]; E]; R] {
    let n = xks.len() / E;
    assert!(
        wks.iter().all(|wk| wk.len() == n),
        "a strip of W for each strip of inputs"
    );
    let mut acc = [[[F::zero(); L]; E]; R];
    for (s, xk) in xks.chunks_exact(E).enumerate() {
        if std::mem::size_of::<F>() == 4 {
            for wk in &wks {
                prefetch(wk[s].as_ptr().wrapping_add(next));
            }
        }
        for r in 0..R {
            let wk = &wks[r][s];
            for e in 0..E {
                for l in 0..L {
                    acc[r][e][l] = wk[l].mul_add(xk[e][l], acc[r][e][l]);
                }
            }
        }
    }
    acc
}

/// z[e] (+)= Σ_l acc[e][l]: adds up the lanes of [`forward_kernel`]'s accumulators, onto
/// `z` when `add`. Kept out of the kernel: inlined, the compiler rearranged the kernel's
/// accumulators to add the lanes of all examples at once, with shuffles in the inner loop
/// that made it four times slower.
#[inline(never)]
fn add_lanes<F: Real, const L: usize, const E: usize>(acc: &[[F; L]; E], z: &mut [F], add: bool) {
    for (z, acc) in z.iter_mut().zip(acc) {
        let sum = acc.iter().fold(F::zero(), |s, &a| s + a);
        *z = if add { *z + sum } else { sum };
    }
}

#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn backward_kernel<F: Real, const L: usize, const E: usize>(
    w: &mut [F],
    n_in: usize,
    delta: &[F],
    delta_stride: usize,
    packed: &[F],
    d_x: &mut [F],
    step: (F, F),
) {
    // Strips of L columns of W, down all n_out rows: the input errors of the strip's columns
    // stay in registers (d[e]) while each row's L weights are read, used and written back.
    let full = n_in / L;
    for (s, xk) in packed.chunks_exact(E * L).take(full).enumerate() {
        let k = s * L;
        let mut d = [[F::zero(); L]; E];
        for (row, delta) in w.chunks_exact_mut(n_in).zip(delta.chunks(delta_stride)) {
            let delta: &[F; E] = delta[..E].try_into().expect("E values");
            // The line after this strip's in this row, for a strip to come. A walk down a
            // strip reads one line per row, each row often on a page of its own, which the
            // hardware prefetchers do not follow; in a training step W is no longer in the
            // caches when its backward pass comes. Without this, `ch6-dropout`'s first
            // `fc:1000` backward pass ran at 13–17% of the f64 peak (`nndl bench --phases`),
            // with it at 33–43% (at 32–43% → 47–55% in f32); alone in `layers-dense`,
            // where W stays in L3 from call to call, it makes no difference.
            prefetch(row.as_ptr().wrapping_add(k).wrapping_byte_add(CACHE_LINE));
            let wk: &mut [F; L] = (&mut row[k..k + L]).try_into().expect("L values");
            *wk = strip_row(*wk, delta, xk, &mut d, step);
        }
        for (e, d) in d.iter().enumerate() {
            d_x[e * n_in + k..e * n_in + k + L].copy_from_slice(d);
        }
    }
    // The last n_in mod L columns, as a strip padded with zeros (as the packed inputs are).
    let (k, width) = (full * L, n_in % L);
    if width > 0 {
        let xk = &packed[full * E * L..];
        let mut d = [[F::zero(); L]; E];
        for (row, delta) in w.chunks_exact_mut(n_in).zip(delta.chunks(delta_stride)) {
            let delta: &[F; E] = delta[..E].try_into().expect("E values");
            let mut wk = [F::zero(); L];
            wk[..width].copy_from_slice(&row[k..]);
            let wk = strip_row(wk, delta, xk, &mut d, step);
            row[k..].copy_from_slice(&wk[..width]);
        }
        for (e, d) in d.iter().enumerate() {
            d_x[e * n_in + k..e * n_in + k + width].copy_from_slice(&d[..width]);
        }
    }
}

/// One row's strip of L weights: adds its part of each example's input error to `d`
/// (w·δ[e], BP2), and returns it [`updated`].
#[inline(always)]
fn strip_row<F: Real, const L: usize, const E: usize>(
    wk: [F; L],
    delta: &[F; E],
    xk: &[F],
    d: &mut [[F; L]; E],
    step: (F, F),
) -> [F; L] {
    for e in 0..E {
        for l in 0..L {
            d[e][l] = wk[l].mul_add(delta[e], d[e][l]);
        }
    }
    updated(wk, delta, xk, step)
}

/// One row's strip of L weights updated: decay·w − scale·Σ_e δ[e]·x[e] (BP4 and the step),
/// with `xk` the strip's packed inputs.
#[inline(always)]
fn updated<F: Real, const L: usize, const E: usize>(
    wk: [F; L],
    delta: &[F; E],
    xk: &[F],
    (decay, scale): (F, F),
) -> [F; L] {
    // ∇W's strip, summed in two halves: one chain of E dependent multiply-adds per row would
    // hold the loop back more than the extra addition costs.
    let mut grad = [[F::zero(); L]; 2];
    for e in 0..E {
        for l in 0..L {
            grad[e % 2][l] = delta[e].mul_add(xk[e * L + l], grad[e % 2][l]);
        }
    }
    std::array::from_fn(|l| decay.mul_add(wk[l], -scale * (grad[0][l] + grad[1][l])))
}

/// [`update_packed`]'s loops: as [`backward_kernel`]'s, a strip of L columns of W at a time
/// down all its rows, the strip's packed inputs staying in L1 (in registers where they fit).
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn update_kernel<F: Real, const L: usize, const E: usize>(
    w: &mut [F],
    n_in: usize,
    delta: &[F],
    delta_stride: usize,
    packed: &[F],
    step: (F, F),
) {
    let full = n_in / L;
    for (s, xk) in packed.chunks_exact(E * L).take(full).enumerate() {
        let k = s * L;
        for (row, delta) in w.chunks_exact_mut(n_in).zip(delta.chunks(delta_stride)) {
            let delta: &[F; E] = delta[..E].try_into().expect("E values");
            // The next strip's line of this row, as in `backward_kernel`.
            prefetch(row.as_ptr().wrapping_add(k).wrapping_byte_add(CACHE_LINE));
            let wk: &mut [F; L] = (&mut row[k..k + L]).try_into().expect("L values");
            *wk = updated(*wk, delta, xk, step);
        }
    }
    // The last n_in mod L columns, as a strip padded with zeros (as the packed inputs are).
    let (k, width) = (full * L, n_in % L);
    if width > 0 {
        let xk = &packed[full * E * L..];
        for (row, delta) in w.chunks_exact_mut(n_in).zip(delta.chunks(delta_stride)) {
            let delta: &[F; E] = delta[..E].try_into().expect("E values");
            let mut wk = [F::zero(); L];
            wk[..width].copy_from_slice(&row[k..]);
            let wk = updated(wk, delta, xk, step);
            row[k..].copy_from_slice(&wk[..width]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::seeded;
    use rand::RngExt;

    /// The obvious loops, in f64, for `m` examples.
    #[allow(clippy::type_complexity)]
    fn slow(
        w: &[f64],
        b: &[f64],
        n_in: usize,
        x: &[f64],
        delta: &[f64],
        m: usize,
        (decay, scale): (f64, f64),
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
        let n_out = b.len();
        let mut z = vec![0.0; n_out * m];
        let mut d_x = vec![0.0; m * n_in];
        let mut w2 = w.to_vec();
        let mut b2 = b.to_vec();
        for j in 0..n_out {
            for e in 0..m {
                for k in 0..n_in {
                    z[j * m + e] += w[j * n_in + k] * x[e * n_in + k];
                    d_x[e * n_in + k] += w[j * n_in + k] * delta[j * m + e];
                }
                b2[j] -= scale * delta[j * m + e];
            }
            for k in 0..n_in {
                let grad: f64 = (0..m).map(|e| delta[j * m + e] * x[e * n_in + k]).sum();
                w2[j * n_in + k] = decay * w[j * n_in + k] - scale * grad;
            }
        }
        (z, d_x, w2, b2)
    }

    fn close<F: Real>(fast: &[F], slow: &[f64], tol: f64, what: &str) {
        assert_eq!(fast.len(), slow.len());
        for (i, (&f, &s)) in fast.iter().zip(slow).enumerate() {
            assert!(
                (f.as_f64() - s).abs() <= tol * (1.0 + s.abs()),
                "{what}[{i}]: {f} against {s}"
            );
        }
    }

    fn against_the_loops<F: Real>(tol: f64) {
        let mut rng = seeded(3);
        // n_in with and without a tail past the lanes, and long enough for the forward
        // kernel's blocks (up to 5, of unequal lengths); every m the kernels take.
        for (n_out, n_in) in [(7, 16), (5, 19), (3, 3), (12, 37), (4, 2883)] {
            for m in 1..=MAX_EXAMPLES {
                let mut draw =
                    |n: usize| -> Vec<f64> { (0..n).map(|_| rng.random::<f64>() - 0.5).collect() };
                let (w, b, x, delta) = (
                    draw(n_out * n_in),
                    draw(n_out),
                    draw(m * n_in),
                    draw(n_out * m),
                );
                let step = (0.99, 0.3);
                let (z, d_x, w2, b2) = slow(&w, &b, n_in, &x, &delta, m, step);
                let of = |v: &[f64]| v.iter().map(|&v| F::of(v)).collect::<Vec<F>>();
                let what = format!("{} ({n_out}, {n_in}), m = {m}", F::NAME);

                // z in a buffer wider than m, as the pass's last short mini-batch has it.
                let stride = m + 2;
                let mut fast_z = vec![F::zero(); n_out * stride];
                let mut packed = Vec::new();
                forward(
                    F::of(0.5),
                    &of(&w),
                    n_in,
                    &of(&x),
                    m,
                    &mut fast_z,
                    stride,
                    &mut packed,
                );
                let fast_z: Vec<F> = fast_z
                    .chunks(stride)
                    .flat_map(|row| row[..m].to_vec())
                    .collect();
                let half: Vec<f64> = z.iter().map(|v| 0.5 * v).collect();
                close(&fast_z, &half, tol, &format!("z {what}"));

                let mut delta_wide = vec![F::zero(); n_out * stride];
                for j in 0..n_out {
                    for e in 0..m {
                        delta_wide[j * stride + e] = F::of(delta[j * m + e]);
                    }
                }
                let (mut fast_w, mut fast_b) = (of(&w), of(&b));
                let mut fast_dx = vec![F::zero(); m * n_in];
                backward_update(
                    &mut fast_w,
                    &mut fast_b,
                    n_in,
                    &delta_wide,
                    stride,
                    &of(&x),
                    &mut fast_dx,
                    m,
                    (F::of(step.0), F::of(step.1)),
                    &mut packed,
                );
                close(&fast_dx, &d_x, tol, &format!("d_x {what}"));
                close(&fast_w, &w2, tol, &format!("w {what}"));
                close(&fast_b, &b2, tol, &format!("b {what}"));

                // The update alone, row by row: each weight as the fused pass leaves it.
                let mut only_w = of(&w);
                let packed_x = pack(&of(&x), n_in, m, &mut packed).to_vec();
                let step_f = (F::of(step.0), F::of(step.1));
                update_packed(&mut only_w, n_in, &delta_wide, stride, &packed_x, m, step_f);
                assert_eq!(only_w, fast_w, "w updated alone, {what}");

                // The rows shared between parts, from one packing: z and W to the bit, and
                // the parts' input errors adding up to the whole one.
                for parts in [2, 3] {
                    let rows = n_out.div_ceil(parts);
                    let packed = pack(&of(&x), n_in, m, &mut packed).to_vec();
                    let mut split_z = vec![F::zero(); n_out * stride];
                    let w0 = of(&w);
                    for (w, z) in w0
                        .chunks(rows * n_in)
                        .zip(split_z.chunks_mut(rows * stride))
                    {
                        forward_packed(F::of(0.5), w, n_in, &packed, m, z, stride);
                    }
                    let whole: Vec<F> = split_z
                        .chunks(stride)
                        .flat_map(|row| row[..m].to_vec())
                        .collect();
                    assert_eq!(whole, fast_z, "z in {parts} parts, {what}");
                    let mut split_w = of(&w);
                    let mut sum = vec![F::zero(); m * n_in];
                    let blocks = split_w
                        .chunks_mut(rows * n_in)
                        .zip(delta_wide.chunks(rows * stride));
                    for (w, delta) in blocks {
                        // Rows past m left alone.
                        let mut part = vec![F::of(7.0); (m + 1) * n_in];
                        let step = (F::of(step.0), F::of(step.1));
                        backward_update_packed(w, n_in, delta, stride, &packed, &mut part, m, step);
                        assert!(part[m * n_in..].iter().all(|&v| v == F::of(7.0)), "{what}");
                        for (s, &p) in sum.iter_mut().zip(&part) {
                            *s += p;
                        }
                    }
                    assert_eq!(split_w, fast_w, "w in {parts} parts, {what}");
                    close(&sum, &d_x, tol, &format!("d_x in {parts} parts, {what}"));
                }
            }
        }
    }

    /// Packing straight from a convolution's or a dense layer's output, with and without a
    /// mask, packs what gathering and then packing does, to the bit.
    #[test]
    fn packing_from_maps_is_gathering_then_packing() {
        use ndarray::Array2;
        let mut rng = seeded(4);
        // HW a multiple of the lanes (whole strips), not one (value by value), and 1 (after a
        // dense layer); a short mini-batch in longer buffers.
        for (c, hw) in [(3, 16), (2, 9), (13, 1), (20, 144)] {
            for m in [1, 4, MAX_EXAMPLES] {
                let m_max = MAX_EXAMPLES;
                let n_in = c * hw;
                let prev = Array2::from_shape_simple_fn((c, m_max * hw), || rng.random::<f32>());
                let mask = Array2::from_shape_simple_fn((m_max, n_in), || {
                    f32::from(u8::from(rng.random::<bool>()))
                });
                for mask in [None, Some(mask.view())] {
                    let mut input = Array2::zeros((m_max, n_in));
                    super::super::dense::gather(prev.view(), hw, m, mask, input.view_mut());
                    let x = input.as_slice().unwrap();
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    let gathered = pack(x, n_in, m, &mut a);
                    let direct = pack_maps(prev.view(), hw, m, mask, &mut b);
                    let what = format!("C = {c}, HW = {hw}, m = {m}, mask {}", mask.is_some());
                    assert_eq!(gathered, direct, "{what}");
                }
            }
        }
    }

    /// The forward product two rows of W at a time gives each row's sums as one row at a
    /// time does, to the bit: with a row left over, inputs in several blocks and a tail.
    #[test]
    fn two_rows_at_a_time_are_one_row_at_a_time() {
        fn both<const E: usize>(n_out: usize, n_in: usize, rng: &mut crate::rng::SeededRng) {
            let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random()).collect() };
            let (w, x) = (draw(n_out * n_in), draw(E * n_in));
            let mut packed = Vec::new();
            let packed = pack(&x, n_in, E, &mut packed);
            let stride = E + 3;
            let (mut one, mut two) = (vec![0.0; n_out * stride], vec![0.0; n_out * stride]);
            forward_kernel::<f32, L, E, 1>(0.5, &w, n_in, packed, &mut one, stride);
            forward_kernel::<f32, L, E, 2>(0.5, &w, n_in, packed, &mut two, stride);
            assert_eq!(one, two, "({n_out}, {n_in}), m = {E}");
        }
        let mut rng = seeded(5);
        for (n_out, n_in) in [(7, 16), (6, 19), (1, 40), (5, 2891), (4, 3)] {
            both::<10>(n_out, n_in, &mut rng);
            both::<3>(n_out, n_in, &mut rng);
        }
    }

    #[test]
    fn f64_kernels_match_the_loops() {
        against_the_loops::<f64>(1e-13);
    }

    #[test]
    fn f32_kernels_match_the_loops() {
        against_the_loops::<f32>(1e-5);
    }

    #[test]
    #[should_panic(expected = "1 to 10")]
    fn more_examples_than_the_kernels_take_is_refused() {
        let mut z = vec![0.0f64; 11];
        forward(1.0, &[1.0], 1, &[0.0; 11], 11, &mut z, 11, &mut Vec::new());
    }
}
