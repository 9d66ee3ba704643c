//! A convolution's ∇W = δ_Z·colsᵀ (BP4, summed over the mini-batch) as dot products of rows,
//! for the layers that unroll their patches ([`super::conv_pool::im2col`]), like the book's
//! second convolution. Not in `network3.py`, where Theano picks its own kernels.
//!
//! Both operands hold their long dimension along their rows: δ_Z is `(F, n)` and cols `(C·K²,
//! n)`, n = m·H′·W′ (640 for the book's second layer and a mini-batch of 10), so each entry
//! ∇W[f, r] is the dot product of row f of δ_Z with row r of cols. A general product reads
//! colsᵀ down its columns into its packed layout. Here both are rearranged along their rows
//! (vector copies) into strips of L columns, and a tile of PA rows of δ_Z × RB rows of cols
//! keeps its sums in registers (PA + RB loads per PA·RB multiply-adds; its shape is
//! [`tile_rows`]'s); one tile's rows of cols stay in L1 while the rearranged δ_Z (100 kB) passes
//! by from L2.
//!
//! Measured on one core of an AMD EPYC with AVX-512 (2026-12-06), in `f32`: 72 GFLOP/s against
//! 58 for `matrixmultiply` at the book's shape (`cargo bench --bench training --
//! "conv2 nabla"`), and in `ch6-dropout`'s step (`nndl bench --nets ch6-dropout --phases
//! --threads 1 --train-size 5000`) ∇W went from 0.214–0.220 s (50% of the peak) to
//! 0.183–0.188 s (58–60%). Reading the rows where they lie, without rearranging them, the
//! compiler kept bounds checks and the sums' spills in the loop, and it ran at 34–37%.
//!
//! `product` is held to the obvious loops by the tests below, and whole passes to
//! [`super::reference`].

use multiversion::multiversion;
use ndarray::{ArrayView2, ArrayViewMut2};

use crate::real::Real;

use super::direct_conv::{lane_sums, rows_of};
use super::small_batch;

/// The most rows of `a` (filters) in a tile, on any CPU.
const MAX_ROWS_A: usize = 4;
/// The most rows of `b` (unrolled patch offsets) in a tile, on any CPU.
const MAX_ROWS_B: usize = 4;

/// A tile's rows of `a` and of `b` on this CPU, (PA, RB). [`tile`]'s loop keeps the RB strips
/// of b and one strip of a in registers beside the PA·RB sums, PA·RB + RB + 1 vector registers
/// in `f32`: 3 × 4 (17) where AVX-512 gives 32, 4 × 3 (16) in AVX2's 16. With 3 × 4 on AVX2,
/// two of the sums went to the stack and back in every step of the loop, and the book's
/// second convolution's ∇W ran at 26–38% of the peak, against 39–45% with 4 × 3 (`nndl bench
/// --nets ch6-dropout --phases`, five runs of each on one core of an AMD EPYC with AVX2;
/// docs/performance.md has the runs). (AArch64's 32 registers
/// hold 4 lanes each, so a sum of L = 8 takes two: 4 × 3 needs all 32 there, 3 × 4 34.) Every
/// sum is added up in the same order with either shape, so ∇W is the same to the bit.
fn tile_rows() -> (usize, usize) {
    if small_batch::avx512() {
        (3, 4)
    } else {
        (4, 3)
    }
}

/// Lanes of each sum: one 256-bit register of `f32`, two of `f64`.
const L: usize = 8;

/// Whether [`product`] is used for `F` on this CPU: in `f32`, with FMA (without it `mul_add`
/// is a library call), as the other small-product kernels ([`small_batch::available`]). Not
/// in `f64`, whose sums of L lanes take two registers each, 24 for a tile: there the general
/// product ran at 74% of the peak on the book's second layer against 35% for this one
/// (`nndl bench --nets ch6-relu --precisions f64 --phases`, one core of an AMD EPYC with
/// AVX-512).
pub fn available<F: Real>() -> bool {
    std::mem::size_of::<F>() == 4 && small_batch::available()
}

/// out = a·bᵀ over the first n columns: out[i, j] = Σ_{k<n} a[i, k]·b[j, k], with `a` `(P, ≥
/// n)` and `b` `(R, ≥ n)` each with contiguous rows one after another (whole buffers, as
/// [`super::conv_pool`] keeps them), `out` `(P, R)` (overwritten). `scratch` holds the
/// operands rearranged, grown on the first call and reused after. Panics unless the shapes
/// agree.
pub fn product<F: Real>(
    a: ArrayView2<F>,
    b: ArrayView2<F>,
    n: usize,
    out: ArrayViewMut2<F>,
    scratch: &mut Vec<F>,
) {
    product_in_tiles(a, b, n, out, scratch, tile_rows());
}

/// [`product`] in tiles of `(rows_a, rows_b)` rows (1 ..= [`MAX_ROWS_A`], 1 ..=
/// [`MAX_ROWS_B`]).
fn product_in_tiles<F: Real>(
    a: ArrayView2<F>,
    b: ArrayView2<F>,
    n: usize,
    mut out: ArrayViewMut2<F>,
    scratch: &mut Vec<F>,
    (rows_a, rows_b): (usize, usize),
) {
    let (p, r) = (a.nrows(), b.nrows());
    assert!(a.ncols() >= n && b.ncols() >= n, "a and b are (·, ≥ n)");
    assert_eq!(out.dim(), (p, r), "out is (P, R)");
    let (a, sa) = rows_of(&a, "a");
    let (b, sb) = rows_of(&b, "b");
    // All of a, then one tile's rows of b at a time, each as its strips of L columns with
    // the tile's rows one after another in each: the tile reads both at fixed offsets.
    let strips = n.div_ceil(L);
    // Every value read below is written first, so a buffer of the right length is used as
    // it is.
    scratch.resize(scratch_len(p, n), F::zero());
    let (a_packed, b_packed) = scratch.split_at_mut(p * strips * L);
    for p0 in (0..p).step_by(rows_a) {
        let pa = rows_a.min(p - p0);
        pack(&a[p0 * sa..], sa, pa, n, &mut a_packed[p0 * strips * L..]);
    }
    for r0 in (0..r).step_by(rows_b) {
        let rb = rows_b.min(r - r0);
        let b_tile = &mut b_packed[..rb * strips * L];
        pack(&b[r0 * sb..], sb, rb, n, b_tile);
        for p0 in (0..p).step_by(rows_a) {
            let pa = rows_a.min(p - p0);
            let a_tile = &a_packed[p0 * strips * L..(p0 + pa) * strips * L];
            let sums = with_const!(pa, PA => with_const!(rb, RB =>
                tile::<F, L, PA, RB>(a_tile, b_tile);
                1 2 3 4); 1 2 3 4);
            for (i, sums) in sums.iter().take(pa).enumerate() {
                for (j, &s) in sums.iter().take(rb).enumerate() {
                    out[[p0 + i, r0 + j]] = s;
                }
            }
        }
    }
}

/// The scratch space [`product`] uses for P rows of `a` and n columns: all of a and one
/// tile's rows of b, rearranged.
pub fn scratch_len(p: usize, n: usize) -> usize {
    (p + MAX_ROWS_B) * n.div_ceil(L) * L
}

/// Rearranges `rows` rows of `x` (stride `stride`), n values each, into strips of L:
/// packed[(s·rows + i)·L + l] = x[i, s·L + l], zeros past n.
fn pack<F: Real>(x: &[F], stride: usize, rows: usize, n: usize, packed: &mut [F]) {
    for i in 0..rows {
        let row = &x[i * stride..i * stride + n];
        let (vectors, tail) = row.as_chunks::<L>();
        for (s, v) in vectors.iter().enumerate() {
            let at = (s * rows + i) * L;
            packed[at..at + L].copy_from_slice(v);
        }
        if !tail.is_empty() {
            let at = (vectors.len() * rows + i) * L;
            packed[at..at + tail.len()].copy_from_slice(tail);
            packed[at + tail.len()..at + L].fill(F::zero());
        }
    }
}

/// For PA rows of a and RB rows of b, [`pack`]ed: sums[i][j] = Σ_k a[i, k]·b[j, k]. L lanes
/// of each sum stay in registers along the rows, then are added up.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn tile<F: Real, const L: usize, const PA: usize, const RB: usize>(
    a: &[F],
    b: &[F],
) -> [[F; MAX_ROWS_B]; MAX_ROWS_A] {
    let mut acc = [[[F::zero(); L]; RB]; PA];
    for (av, bv) in a.chunks_exact(PA * L).zip(b.chunks_exact(RB * L)) {
        let (av, _) = av.as_chunks::<L>();
        let (bv, _) = bv.as_chunks::<L>();
        for i in 0..PA {
            for j in 0..RB {
                for l in 0..L {
                    acc[i][j][l] = av[i][l].mul_add(bv[j][l], acc[i][j][l]);
                }
            }
        }
    }
    lane_sums(&acc)
}

#[cfg(test)]
mod tests {
    use super::super::direct_conv::tests::random;
    use super::*;
    use ndarray::{s, Array2};
    use rand::SeedableRng;

    /// out[i, j] = Σ_{k<n} a[i, k]·b[j, k], in f64, one product at a time.
    fn obvious<F: Real>(a: &Array2<F>, b: &Array2<F>, n: usize) -> Array2<f64> {
        Array2::from_shape_fn((a.nrows(), b.nrows()), |(i, j)| {
            (0..n)
                .map(|k| a[[i, k]].as_f64() * b[[j, k]].as_f64())
                .sum()
        })
    }

    fn agrees_with_the_obvious_loops<F: Real>(tolerance: f64) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        // Rows of a and b that fill whole tiles, leave one or two over, or fit in less than a
        // tile; n a multiple of the lanes, with a tail, shorter than the lanes, and the book's
        // second layer (40 filters, 500 offsets, 640 columns for 10 examples); buffers wider
        // than the n columns used, as a pass's are.
        let shapes = [
            (3, 4, 8, 8),
            (40, 500, 640, 640),
            (40, 500, 320, 640),
            (7, 9, 21, 24),
            (1, 1, 1, 1),
            (2, 5, 5, 9),
            (4, 3, 0, 3),
            (5, 6, 67, 67),
        ];
        for (p, r, n, width) in shapes {
            let a = random::<F>(p, width, &mut rng);
            let b = random::<F>(r, width, &mut rng);
            let mut out = Array2::from_elem((p, r), F::of(9.0));
            product(a.view(), b.view(), n, out.view_mut(), &mut Vec::new());
            let want = obvious(&a, &b, n);
            for ((i, j), &got) in out.indexed_iter() {
                let scale = 1.0 + (n as f64).sqrt();
                let err = (got.as_f64() - want[[i, j]]).abs();
                assert!(
                    err <= tolerance * scale,
                    "({p}, {r}, n {n}): [{i}, {j}] {} against {}",
                    got.as_f64(),
                    want[[i, j]]
                );
            }
            // The columns past n are not read: other values there change nothing.
            let (mut a2, mut b2) = (a.clone(), b.clone());
            a2.slice_mut(s![.., n..]).fill(F::of(7.0));
            b2.slice_mut(s![.., n..]).fill(F::of(-3.0));
            let mut again = Array2::from_elem((p, r), F::zero());
            product(
                a2.view(),
                b2.view(),
                n,
                again.view_mut(),
                &mut vec![F::of(5.0); 3],
            );
            assert_eq!(out, again, "({p}, {r}, n {n})");
        }
    }

    #[test]
    fn f32_tiles_agree_with_the_obvious_loops() {
        agrees_with_the_obvious_loops::<f32>(1e-5);
    }

    #[test]
    fn f64_tiles_agree_with_the_obvious_loops() {
        agrees_with_the_obvious_loops::<f64>(1e-13);
    }

    /// Every tile shape gives the same bits as tiles of one row each: a tile only changes which
    /// sums are in flight together, never the order of any one's additions. (So each CPU's
    /// [`tile_rows`] gives the same ∇W.)
    fn every_tile_shape_gives_the_same_bits<F: Real>() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        // The book's second layer; tiles left over for 3 and 4 rows, with n past a multiple of
        // the lanes and below it, rows wider than n; one scratch buffer, reused dirty.
        let shapes = [
            (40, 500, 640, 640),
            (7, 9, 21, 24),
            (5, 6, 67, 67),
            (4, 3, 8, 8),
            (1, 2, 3, 5),
        ];
        let mut scratch = Vec::new();
        for (p, r, n, width) in shapes {
            let a = random::<F>(p, width, &mut rng);
            let b = random::<F>(r, width, &mut rng);
            let mut in_tiles = |shape| {
                let mut out = Array2::from_elem((p, r), F::zero());
                product_in_tiles(a.view(), b.view(), n, out.view_mut(), &mut scratch, shape);
                out
            };
            let one = in_tiles((1, 1));
            for rows_a in 1..=MAX_ROWS_A {
                for rows_b in 1..=MAX_ROWS_B {
                    let tiles = in_tiles((rows_a, rows_b));
                    let same = tiles
                        .iter()
                        .zip(&one)
                        .all(|(x, y)| x.as_f64().to_bits() == y.as_f64().to_bits());
                    assert!(same, "({p}, {r}, n {n}) in tiles of {rows_a} × {rows_b}");
                }
            }
        }
    }

    #[test]
    fn f32_tile_shapes_give_the_same_bits() {
        every_tile_shape_gives_the_same_bits::<f32>();
    }

    #[test]
    fn f64_tile_shapes_give_the_same_bits() {
        every_tile_shape_gives_the_same_bits::<f64>();
    }

    #[test]
    #[should_panic(expected = "(·, ≥ n)")]
    fn more_columns_than_the_rows_hold_are_refused() {
        let (a, b) = (Array2::<f32>::zeros((2, 3)), Array2::<f32>::zeros((2, 3)));
        product(
            a.view(),
            b.view(),
            4,
            Array2::zeros((2, 2)).view_mut(),
            &mut Vec::new(),
        );
    }
}
