//! `network3.py`'s `ConvPoolLayer`: a valid convolution of stride 1, max-pooling over
//! non-overlapping p×p blocks, then the bias and the activation — applied *after* pooling, as
//! `network3.py` does (max-pooling and a monotone activation commute, so this is the same
//! network as activating first, for a quarter of the activation work).
//!
//! The convolution is computed as one matrix product per mini-batch ("im2col"): every K×K
//! patch of every input channel is unrolled into a column of `cols`, so that the weighted
//! inputs of all filters at all positions of all examples are Z = W·cols. Backprop is two
//! more products, ∇W = δ_Z·colsᵀ and ∂C/∂cols = Wᵀ·δ_Z, the second folded back onto the input
//! ("col2im"). What this leaves out: Theano's `conv2d` flips the filter (a true convolution);
//! this is the cross-correlation every current library computes, which only mirrors the
//! learned filters.
//!
//! Shapes, with m examples in the mini-batch, input `(C, H, W)`, F filters of K×K, pooling P
//! and H′ = H − K + 1, Hp = H′/P (likewise for widths). Activations between layers are stored
//! channel-major, `(C, m·H·W)`: row c holds channel c of every example, example after example
//! — the layout the product W·cols leaves its result in, so no layer transposes.
//! - `weights`: `(F, C·K·K)`, filter f's weight for channel c at offset (i, j) in column
//!   c·K² + i·K + j — `network3.py`'s `(F, C, K, K)` filter array, flattened.
//! - `cols`: `(C·K·K, m·H′·W′)`; `z`: `(F, m·H′·W′)`; output and its error: `(F, m·Hp·Wp)`.
//!
//! In a list: `conv:F:K` (`act=` the activation), with `pool:P` the next item.

use multiversion::multiversion;
use ndarray::linalg::general_mat_mul;
use ndarray::{
    s, Array1, Array2, ArrayD, ArrayView1, ArrayView2, ArrayViewD, ArrayViewMut2, ArrayViewMutD,
};
use serde::{Deserialize, Serialize};

use crate::model::activation::Activation;
use crate::model::export::layer::{Exported, Function, Product};
use crate::real::Real;

use super::direct_conv;
use super::item::{Defaults, Item, Shape, SpecError};
use super::kind::{
    self, apply_update, put, Backward, Bound, Buffer, Element, FileEntry, Forward, Kind, KindSpec,
    Parameter, Place, Rate, Role, Tunable,
};
use super::phase::Phase;
use super::reference::Trace;
use super::row_dots;
use super::{Layer, LayerSpec};

/// The list item of a `ConvPoolLayer`: `filters` maps of a `filter`×`filter` convolution,
/// max-pooled over `pool`×`pool` blocks.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvPoolSpec {
    pub filters: usize,
    pub filter: usize,
    pub pool: usize,
    pub activation: Activation,
}

impl ConvPoolSpec {
    /// `(H′, W′)`: the feature maps before pooling, for an `input`.
    fn map(&self, input: Shape) -> (usize, usize) {
        (input[1] + 1 - self.filter, input[2] + 1 - self.filter)
    }
}

impl KindSpec for ConvPoolSpec {
    const KEYWORDS: &'static [&'static str] = &["conv", "pool"];

    const TUNABLE: &'static [Tunable<Self>] = &[
        Tunable {
            name: "filters",
            bound: Bound::Count,
            what: "the filters (feature maps) of conv layer N",
            set: |s, v| put(&mut s.filters, v),
        },
        Tunable {
            name: "size",
            bound: Bound::Count,
            what: "the filter size K (K×K) of conv layer N",
            set: |s, v| put(&mut s.filter, v),
        },
        Tunable {
            name: "pool",
            bound: Bound::Count,
            what: "the max-pooling size P (P×P) after conv layer N",
            set: |s, v| put(&mut s.pool, v),
        },
    ];

    fn parse(
        item: &Item<'_>,
        following: &[&str],
        defaults: Defaults,
    ) -> Result<(Self, usize), SpecError> {
        if item.kind == "pool" {
            return Err(SpecError::PoolWithoutConv {
                index: item.index,
                item: item.text.to_string(),
            });
        }
        let activation = item.options(&["act"], defaults)?.activation;
        let [filters, filter] = item.counts(["FILTERS", "SIZE"])?;
        let (mut pool, mut used) = (1, 1);
        if let Some(next) = following.first().filter(|s| s.starts_with("pool")) {
            let sizes = next
                .strip_prefix("pool:")
                .and_then(|p| p.parse::<usize>().ok())
                .filter(|&p| p > 0);
            pool = sizes.ok_or_else(|| SpecError::Malformed {
                index: item.index + 1,
                item: next.to_string(),
                what: "expected pool:SIZE with a whole number above 0".to_string(),
            })?;
            used = 2;
        }
        let spec = ConvPoolSpec {
            filters,
            filter,
            pool,
            activation,
        };
        Ok((spec, used))
    }

    fn text(&self) -> String {
        let pool = if self.pool > 1 {
            format!(",pool:{}", self.pool)
        } else {
            String::new()
        };
        let (filters, filter) = (self.filters, self.filter);
        format!(
            "conv:{filters}:{filter}:act={}{pool}",
            self.activation.name()
        )
    }

    fn check(&self, place: &Place<'_>) -> Result<(), SpecError> {
        let &ConvPoolSpec { filter, pool, .. } = self;
        place.sizes_valid(self.filters > 0 && filter > 0 && pool > 0)?;
        let (index, item) = (place.index, place.item.to_string());
        if !place.maps {
            return Err(SpecError::ConvAfterFullyConnected { index, item });
        }
        let [_, height, width] = place.input;
        if filter > height || filter > width {
            return Err(SpecError::ConvTooLarge {
                index,
                item,
                filter,
                height,
                width,
            });
        }
        let (h, w) = self.map(place.input);
        if h % pool != 0 || w % pool != 0 {
            return Err(SpecError::PoolDoesNotDivide {
                index,
                item,
                pool,
                height: h,
                width: w,
            });
        }
        Ok(())
    }

    fn output(&self, input: Shape, _classes: usize) -> Shape {
        let (h, w) = self.map(input);
        [self.filters, h / self.pool, w / self.pool]
    }

    fn keeps_maps(&self) -> bool {
        true
    }

    fn parameters(&self, input: Shape, _classes: usize) -> Option<u128> {
        let (f, c, k) = (self.filters as u128, input[0] as u128, self.filter as u128);
        f.checked_mul(c)?
            .checked_mul(k.checked_mul(k)?)?
            .checked_add(f)
    }

    fn multiply_adds(&self, input: Shape, _classes: usize) -> f64 {
        let (h, w) = self.map(input);
        let k = self.filter;
        self.filters as f64 * (input[0] * k * k) as f64 * (h * w) as f64
    }

    /// `cols` `(C·K·K, m·H′·W′)` (none where [`direct_conv`] needs neither patches nor
    /// ∂C/∂cols: a first layer, or any layer outside training), `z` `(F, m·H′·W′)`, `argmax`
    /// one per output, and in training `nabla_w` `(F, C·K·K)`, `nabla_b` `(F,)` and, where the
    /// patches are unrolled, [`row_dots`]'s scratch space.
    fn buffers<F: Real>(
        &self,
        input: Shape,
        output: Shape,
        m: usize,
        role: Role,
    ) -> Option<Vec<Buffer>> {
        let (c, k, f) = (input[0], self.filter, self.filters);
        let (ho, wo) = self.map(input);
        let mut buffers = vec![
            Buffer::real("z", &[f], &[m, ho, wo])?,
            Buffer::flat(
                "argmax",
                Element::Index,
                &[m, output[0], output[1], output[2]],
            )?,
        ];
        // Without im2col, cols holds only ∂C/∂cols, which a first layer and evaluation do
        // not compute.
        if !direct_conv::applies::<F>(input, k) || (role.training && !role.first) {
            buffers.push(Buffer::real("cols", &[c, k, k], &[m, ho, wo])?);
        }
        if role.training {
            buffers.push(Buffer::real("nabla_w", &[f], &[c, k, k])?);
            buffers.push(Buffer::flat("nabla_b", Element::Real, &[f])?);
            if !direct_conv::applies::<F>(input, k) && row_dots::available::<F>() {
                let n = m.checked_mul(ho)?.checked_mul(wo)?;
                let len = row_dots::scratch_len(f, n);
                buffers.push(Buffer::flat("packed", Element::Real, &[len])?);
            }
        }
        Some(buffers)
    }

    /// Weights N(0, 1/n_out), where n_out = F·K²/P² is the outputs each input reaches, then
    /// biases N(0, 1).
    fn build<F: Real>(
        &self,
        input: Shape,
        _classes: usize,
        draw: &mut impl FnMut(f64) -> F,
    ) -> Layer<F> {
        let &ConvPoolSpec {
            filters,
            filter,
            pool,
            activation,
        } = self;
        let n_out = (filters * filter * filter) as f64 / (pool * pool) as f64;
        let weights = Array2::from_shape_simple_fn((filters, input[0] * filter * filter), || {
            draw(n_out.recip().sqrt())
        });
        let biases = Array1::from_shape_simple_fn(filters, || draw(1.0));
        Layer::ConvPool(ConvPool {
            input,
            filters,
            filter,
            pool,
            activation,
            weights,
            biases,
        })
    }
}

impl From<ConvPoolSpec> for LayerSpec {
    fn from(spec: ConvPoolSpec) -> Self {
        LayerSpec::ConvPool(spec)
    }
}

/// One convolutional layer with its pooling.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(bound = "")]
pub struct ConvPool<F: Real = f64> {
    /// `(C, H, W)` of one example's input.
    pub input: Shape,
    pub filters: usize,
    /// K, the filters' height and width.
    pub filter: usize,
    /// P, the pooling blocks' height and width.
    pub pool: usize,
    pub activation: Activation,
    /// `(F, C·K·K)`.
    pub weights: Array2<F>,
    /// `(F,)`.
    pub biases: Array1<F>,
}

impl<F: Real> ConvPool<F> {
    /// `(H′, W′)`: the size of each feature map before pooling.
    pub fn map(&self) -> (usize, usize) {
        (
            self.input[1] + 1 - self.filter,
            self.input[2] + 1 - self.filter,
        )
    }

    /// `(F, Hp, Wp)`: one example's output.
    pub fn output(&self) -> Shape {
        let (h, w) = self.map();
        [self.filters, h / self.pool, w / self.pool]
    }
}

/// Unrolls the patches of `m` examples of `input` `(C, m·H·W)` into `cols` `(C·K·K, m·H′·W′)`:
/// cols[c·K² + i·K + j, e·H′W′ + y·W′ + x] = input[c, e·HW + (y + i)·W + x + j].
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
pub fn im2col<F: Real>(
    input: ArrayView2<F>,
    shape: Shape,
    k: usize,
    m: usize,
    mut cols: ArrayViewMut2<F>,
) {
    let [c_in, h, w] = shape;
    let (ho, wo) = (h + 1 - k, w + 1 - k);
    for c in 0..c_in {
        let channel = input.slice(s![c, ..m * h * w]);
        let channel = channel
            .as_slice()
            .expect("rows of activations are contiguous");
        for i in 0..k {
            for j in 0..k {
                let mut row = cols.slice_mut(s![c * k * k + i * k + j, ..m * ho * wo]);
                let row = row.as_slice_mut().expect("rows of cols are contiguous");
                for e in 0..m {
                    for y in 0..ho {
                        let from = e * h * w + (y + i) * w + j;
                        let to = e * ho * wo + y * wo;
                        copy_short(&mut row[to..to + wo], &channel[from..from + wo]);
                    }
                }
            }
        }
    }
}

/// Lanes moved at once by [`copy_short`] and [`add_short`]: one or two vector registers.
const LANES: usize = 8;

/// `dst.copy_from_slice(src)` for the short rows of im2col (W′ values, 8 for the book's second
/// convolution): fixed-size chunks compile to vector moves, where a slice copy of unknown
/// length is a call to `memcpy` that costs more than the copy.
#[inline]
fn copy_short<F: Real>(dst: &mut [F], src: &[F]) {
    let mut d = dst.chunks_exact_mut(LANES);
    let mut s = src.chunks_exact(LANES);
    for (d, s) in (&mut d).zip(&mut s) {
        let chunk: &[F; LANES] = s.try_into().expect("chunks of LANES");
        d.copy_from_slice(chunk);
    }
    for (d, &s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = s;
    }
}

/// `dst += src` for the short rows of col2im, in the same fixed-size chunks as [`copy_short`].
/// Each chunk is copied into a local array, added to and stored back: adding in place, the
/// compiler added one value at a time (a scalar load, add and store per value, `perf
/// annotate`), as if the two rows might overlap.
#[inline]
fn add_short<F: Real>(dst: &mut [F], src: &[F]) {
    let mut d = dst.chunks_exact_mut(LANES);
    let mut s = src.chunks_exact(LANES);
    for (d, s) in (&mut d).zip(&mut s) {
        let d: &mut [F; LANES] = d.try_into().expect("chunks of LANES");
        let s: &[F; LANES] = s.try_into().expect("chunks of LANES");
        let mut sum = *d;
        for (sum, &s) in sum.iter_mut().zip(s) {
            *sum += s;
        }
        *d = sum;
    }
    for (d, &s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d += s;
    }
}

/// The reverse of [`im2col`]: adds each entry of `cols` back onto the input position it was
/// copied from, giving ∂C/∂input `(C, m·H·W)` from ∂C/∂cols.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
pub fn col2im<F: Real>(
    cols: ArrayView2<F>,
    shape: Shape,
    k: usize,
    m: usize,
    mut input: ArrayViewMut2<F>,
) {
    let [c_in, h, w] = shape;
    let (ho, wo) = (h + 1 - k, w + 1 - k);
    input.slice_mut(s![.., ..m * h * w]).fill(F::zero());
    for c in 0..c_in {
        let mut channel = input.slice_mut(s![c, ..m * h * w]);
        let channel = channel
            .as_slice_mut()
            .expect("rows of activations are contiguous");
        for i in 0..k {
            for j in 0..k {
                let row = cols.slice(s![c * k * k + i * k + j, ..m * ho * wo]);
                let row = row.as_slice().expect("rows of cols are contiguous");
                for e in 0..m {
                    for y in 0..ho {
                        let to = e * h * w + (y + i) * w + j;
                        let from = e * ho * wo + y * wo;
                        add_short(&mut channel[to..to + wo], &row[from..from + wo]);
                    }
                }
            }
        }
    }
}

/// Max-pools `z` `(F, m·H′·W′)` over P×P blocks, then adds each filter's bias and applies the
/// activation: out = f(max + b), `(F, m·Hp·Wp)`. `argmax` records, per output, where the
/// block's first maximum (row-major) was, as its offset i·W′ + j from the block's top-left
/// corner in `z`, for [`pool_backward`]. P must divide H′ and W′ (as [`super::spec::check`]
/// requires), so that the blocks tile each example's maps.
///
/// The blocks of one row of outputs are read P rows of `z` at a time; for 2×2, the book's
/// pooling, each block is three compares and selects with no branch, which the loop needs to
/// be cheap next to the products (a data-dependent branch per element mispredicts about half
/// the time on the noisy maxima of a training run). Compiled for AVX-512 and AVX2 as well,
/// chosen at run time, as are the other kernels here; the arithmetic is the same on every path.
// Every buffer the kernel reads and writes is an argument, so that its shapes are stated here.
#[allow(clippy::too_many_arguments)]
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
pub fn pool_forward<F: Real>(
    z: ArrayView2<F>,
    map: (usize, usize),
    pool: usize,
    m: usize,
    biases: ArrayView1<F>,
    activation: Activation,
    mut out: ArrayViewMut2<F>,
    argmax: &mut [u32],
) {
    let (ho, wo) = map;
    let (hp, wp) = (ho / pool, wo / pool);
    let per_filter = m * hp * wp;
    debug_assert!(ho % pool == 0 && wo % pool == 0, "blocks tile the maps");
    // Offsets within a block are below P·W′, stored as u32.
    assert!(
        u32::try_from(pool * wo).is_ok(),
        "a block's offsets fit in 32 bits"
    );
    let below = wo as u32;
    for (f, &b) in biases.iter().enumerate() {
        let zf = z.slice(s![f, ..m * ho * wo]);
        let zf = zf.as_slice().expect("rows of z are contiguous");
        let mut of = out.slice_mut(s![f, ..per_filter]);
        let of = of.as_slice_mut().expect("rows of outputs are contiguous");
        let af = &mut argmax[f * per_filter..(f + 1) * per_filter];
        // One row of outputs per P rows of the map.
        let rows = zf.chunks_exact(pool * wo);
        for ((block_row, o), a) in rows
            .zip(of.chunks_exact_mut(wp))
            .zip(af.chunks_exact_mut(wp))
        {
            if pool == 2 {
                let (r0, r1) = block_row.split_at(wo);
                let blocks = r0.chunks_exact(2).zip(r1.chunks_exact(2));
                for ((o, a), (top, bottom)) in o.iter_mut().zip(a.iter_mut()).zip(blocks) {
                    // The general path's scan, unrolled: the same strict compares in the same
                    // order, so ties and NaNs pick the same entry.
                    let (mut best, mut at) = (top[0], 0);
                    if top[1] > best {
                        (best, at) = (top[1], 1);
                    }
                    if bottom[0] > best {
                        (best, at) = (bottom[0], below);
                    }
                    if bottom[1] > best {
                        (best, at) = (bottom[1], below + 1);
                    }
                    (*o, *a) = (best, at);
                }
            } else {
                for (xp, (o, a)) in o.iter_mut().zip(a.iter_mut()).enumerate() {
                    let (mut best, mut at) = (block_row[xp * pool], 0);
                    for i in 0..pool {
                        let row = &block_row[i * wo + xp * pool..i * wo + (xp + 1) * pool];
                        for (j, &v) in row.iter().enumerate() {
                            if v > best {
                                best = v;
                                at = i * wo + j;
                            }
                        }
                    }
                    // Below P·W′, checked above to fit.
                    (*o, *a) = (best, at as u32);
                }
            }
        }
        activation.apply_biased_vectorised(of, b);
    }
}

/// Backprop through the activation and the pooling. On entry `d_out` holds ∂C/∂out
/// `(F, m·Hp·Wp)`; it becomes δ = ∂C/∂out ⊙ f′ (from the stored outputs `out`, BP2), whose
/// row sums are ∇b (BP3), and each δ is routed to the position its block's maximum came from
/// in `dz` `(F, m·H′·W′)`, zero elsewhere (the other inputs of a max do not change it).
#[allow(clippy::too_many_arguments)]
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
pub fn pool_backward<F: Real>(
    out: ArrayView2<F>,
    mut d_out: ArrayViewMut2<F>,
    argmax: &[u32],
    map: (usize, usize),
    pool: usize,
    m: usize,
    activation: Activation,
    mut dz: ArrayViewMut2<F>,
    nabla_b: &mut Array1<F>,
) {
    let (ho, wo) = map;
    debug_assert!(ho % pool == 0 && wo % pool == 0, "blocks tile the maps");
    let (hp, wp) = (ho / pool, wo / pool);
    let per_filter = m * hp * wp;
    for (f, nb) in nabla_b.iter_mut().enumerate() {
        let of = out.slice(s![f, ..per_filter]);
        let of = of.as_slice().expect("rows of outputs are contiguous");
        let mut df = d_out.slice_mut(s![f, ..per_filter]);
        let df = df.as_slice_mut().expect("rows of errors are contiguous");
        let mut zf = dz.slice_mut(s![f, ..m * ho * wo]);
        let zf = zf.as_slice_mut().expect("rows of dz are contiguous");
        let af = &argmax[f * per_filter..(f + 1) * per_filter];
        activation.scale_by_prime(df, of);
        *nb = df.iter().fold(F::zero(), |sum, &d| sum + d);
        zf.fill(F::zero());
        let rows = zf.chunks_exact_mut(pool * wo);
        for ((block_row, d), a) in rows.zip(df.chunks_exact(wp)).zip(af.chunks_exact(wp)) {
            for (xp, (&d, &a)) in d.iter().zip(a).enumerate() {
                block_row[xp * pool + a as usize] = d;
            }
        }
    }
}

/// A convolution's buffers in a pass.
#[derive(Clone, Debug)]
pub struct ConvBuffers<F: Real> {
    /// Whether its forward product and ∇W go through [`direct_conv`]'s kernels instead of
    /// im2col and general products.
    direct: bool,
    /// `(C·K·K, m_max·H′·W′)`: the unrolled patches, then ∂C/∂cols (empty where the products
    /// are direct and no ∂C/∂cols is computed).
    cols: Array2<F>,
    /// `(F, m_max·H′·W′)`: the weighted inputs before pooling, then δ_Z.
    z: Array2<F>,
    /// For each pooled output, where its block's maximum was (its offset from the block's
    /// corner in `z`).
    argmax: Vec<u32>,
    /// `(F, C·K·K)`.
    nabla_w: Array2<F>,
    /// `(F,)`.
    nabla_b: Array1<F>,
    /// Scratch space of [`row_dots::product`] (∇W), in training where the patches are
    /// unrolled.
    packed: Vec<F>,
}

impl<F: Real> Kind<F> for ConvPool<F> {
    type Spec = ConvPoolSpec;
    type Buffers = ConvBuffers<F>;
    type File = ConvPoolFile;

    fn spec(&self) -> ConvPoolSpec {
        ConvPoolSpec {
            filters: self.filters,
            filter: self.filter,
            pool: self.pool,
            activation: self.activation,
        }
    }

    fn input(&self) -> Shape {
        self.input
    }

    fn output(&self) -> Shape {
        ConvPool::output(self)
    }

    fn parameters(&self) -> Vec<Parameter<'_, F>> {
        kind::weights_and_biases(&self.weights, &self.biases)
    }

    fn parameters_mut(&mut self) -> Vec<ArrayViewMutD<'_, F>> {
        kind::weights_and_biases_mut(&mut self.weights, &mut self.biases)
    }

    fn export(&self) -> Exported<'_, F> {
        Exported {
            keyword: ConvPoolSpec::KEYWORDS[0],
            product: Product::ConvPool {
                filter: self.filter,
                pool: self.pool,
            },
            weights: self.weights.view(),
            weight_shape: vec![self.filters, self.input[0], self.filter, self.filter],
            biases: self.biases.view(),
            function: Function::Hidden(self.activation),
        }
    }

    fn cast<G: Real>(&self) -> Layer<G> {
        Layer::ConvPool(ConvPool {
            input: self.input,
            filters: self.filters,
            filter: self.filter,
            pool: self.pool,
            activation: self.activation,
            weights: self.weights.mapv(|v| G::of(v.as_f64())),
            biases: self.biases.mapv(|v| G::of(v.as_f64())),
        })
    }

    fn allocate(&self, buffers: &[Buffer]) -> ConvBuffers<F> {
        ConvBuffers {
            direct: direct_conv::applies::<F>(self.input, self.filter),
            cols: kind::zeros(buffers, "cols"),
            z: kind::zeros(buffers, "z"),
            argmax: kind::indices(buffers, "argmax"),
            nabla_w: kind::zeros(buffers, "nabla_w"),
            nabla_b: kind::zeros_1d(buffers, "nabla_b"),
            packed: kind::reserve(buffers, "packed"),
        }
    }

    fn use_general_products(&self, buffers: &mut ConvBuffers<F>) {
        if buffers.direct && buffers.cols.is_empty() {
            let k = self.filter;
            buffers.cols = Array2::zeros((self.input[0] * k * k, buffers.z.ncols()));
        }
        buffers.direct = false;
    }

    /// im2col and Z = W·cols (or [`direct_conv`]'s product), then [`pool_forward`].
    fn forward(&self, buffers: &mut ConvBuffers<F>, pass: &mut Forward<'_, F>) {
        let m = pass.m;
        let (ho, wo) = self.map();
        let n = m * ho * wo;
        if buffers.direct {
            direct_conv::forward(
                self.weights.view(),
                pass.input.view(),
                self.input,
                self.filter,
                m,
                buffers.z.view_mut(),
            );
        } else {
            im2col(
                pass.input.view(),
                self.input,
                self.filter,
                m,
                buffers.cols.view_mut(),
            );
            pass.timer.mark(Phase::Im2col);
            general_mat_mul(
                F::one(),
                &self.weights,
                &buffers.cols.slice(s![.., ..n]),
                F::zero(),
                &mut buffers.z.slice_mut(s![.., ..n]),
            );
        }
        pass.timer.mark(Phase::ConvForward);
        pool_forward(
            buffers.z.view(),
            (ho, wo),
            self.pool,
            m,
            self.biases.view(),
            self.activation,
            pass.out.view_mut(),
            &mut buffers.argmax,
        );
        pass.timer.mark(Phase::Pool);
    }

    /// [`pool_backward`] (BP2's ⊙ f′ and BP3), ∇W = δ_Z·colsᵀ (BP4), and ∂C/∂input:
    /// ∂C/∂cols = Wᵀ·δ_Z folded back by [`col2im`] (BP2).
    fn backward(&self, buffers: &mut ConvBuffers<F>, pass: &mut Backward<'_, F>) {
        let m = pass.m;
        let (ho, wo) = self.map();
        let n = m * ho * wo;
        pool_backward(
            pass.out.view(),
            pass.d_out.view_mut(),
            &buffers.argmax,
            (ho, wo),
            self.pool,
            m,
            self.activation,
            buffers.z.view_mut(),
            &mut buffers.nabla_b,
        );
        pass.timer.mark(Phase::PoolBackward);
        // BP4: ∇W = δ_Z · colsᵀ.
        if buffers.direct {
            direct_conv::weight_gradient(
                buffers.z.view(),
                pass.input.view(),
                self.input,
                self.filter,
                m,
                buffers.nabla_w.view_mut(),
            );
        } else if row_dots::available::<F>() {
            row_dots::product(
                buffers.z.view(),
                buffers.cols.view(),
                n,
                buffers.nabla_w.view_mut(),
                &mut buffers.packed,
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
        pass.timer.mark(Phase::ConvGradient);
        let dz = buffers.z.slice(s![.., ..n]);
        if let Some(d_input) = &mut pass.d_input {
            // BP2: ∂C/∂cols = Wᵀ · δ_Z, folded back onto the input.
            let mut d_cols = buffers.cols.slice_mut(s![.., ..n]);
            general_mat_mul(F::one(), &self.weights.t(), &dz, F::zero(), &mut d_cols);
            pass.timer.mark(Phase::ConvInputError);
            col2im(
                buffers.cols.view(),
                self.input,
                self.filter,
                m,
                d_input.view_mut(),
            );
            pass.timer.mark(Phase::Col2im);
        }
    }

    fn update(&mut self, buffers: &ConvBuffers<F>, rate: Rate<F>) {
        let (w, b) = (&mut self.weights, &mut self.biases);
        apply_update(w, b, &buffers.nabla_w, &buffers.nabla_b, rate);
    }

    fn gradients<'a>(&self, buffers: &'a ConvBuffers<F>) -> Vec<ArrayViewD<'a, F>> {
        kind::gradient_pair(&buffers.nabla_w, &buffers.nabla_b)
    }

    /// z[f, y, x] = Σ_c Σ_i Σ_j w[f, c, i, j] · a[c, y + i, x + j], each P×P block scanned
    /// for its maximum, out = f(max + b).
    fn reference_forward(&self, trace: &mut Trace<F>, _training: bool, _mask: Option<&[F]>) {
        let [c_in, h, w] = self.input;
        let k = self.filter;
        let (ho, wo) = self.map();
        let [_, hp, wp] = self.output();
        let p = self.pool;
        let a = &trace.input;
        for f in 0..self.filters {
            let mut z = vec![F::zero(); ho * wo];
            for y in 0..ho {
                for xx in 0..wo {
                    let mut sum = F::zero();
                    for c in 0..c_in {
                        for i in 0..k {
                            for j in 0..k {
                                sum += self.weights[[f, c * k * k + i * k + j]]
                                    * a[c * h * w + (y + i) * w + xx + j];
                            }
                        }
                    }
                    z[y * wo + xx] = sum;
                }
            }
            for yp in 0..hp {
                for xp in 0..wp {
                    let mut best = (F::neg_infinity(), 0);
                    for i in 0..p {
                        for j in 0..p {
                            let at = (yp * p + i) * wo + xp * p + j;
                            if z[at] > best.0 || (i == 0 && j == 0) {
                                best = (z[at], at);
                            }
                        }
                    }
                    trace
                        .out
                        .push(self.activation.apply(best.0 + self.biases[f]));
                    trace.argmax.push(f * ho * wo + best.1);
                }
            }
        }
    }

    /// δ = ∂C/∂out ⊙ f′ (BP2) for each output, which reaches only the z its block's maximum
    /// came from: ∇b += δ (BP3), ∇W += δ·a and ∂C/∂a += δ·w over that z's patch (BP4, BP2).
    fn reference_backward(
        &self,
        trace: &Trace<F>,
        d_out: &[F],
        _mask: Option<&[F]>,
        nabla: &mut [ArrayD<F>],
    ) -> Vec<F> {
        let (mut nabla_w, mut nabla_b) = kind::reference_pair(nabla);
        let mut d_in = vec![F::zero(); trace.input.len()];
        let [c_in, h, w] = self.input;
        let k = self.filter;
        let (ho, wo) = self.map();
        let per_filter = d_out.len() / self.filters;
        for (q, (&d, &a)) in d_out.iter().zip(&trace.out).enumerate() {
            let f = q / per_filter;
            let delta = d * self.activation.prime_from_output(a);
            nabla_b[f] += delta;
            let at = trace.argmax[q] - f * ho * wo;
            let (y, xx) = (at / wo, at % wo);
            for c in 0..c_in {
                for i in 0..k {
                    for j in 0..k {
                        let col = c * k * k + i * k + j;
                        let input = c * h * w + (y + i) * w + xx + j;
                        nabla_w[[f, col]] += delta * trace.input[input];
                        d_in[input] += delta * self.weights[[f, col]];
                    }
                }
            }
        }
        d_in
    }

    fn to_file(&self) -> ConvPoolFile {
        let k = self.filter;
        let weights = self
            .weights
            .rows()
            .into_iter()
            .map(|filter| {
                let values: Vec<f64> = filter.iter().map(|v| v.as_f64()).collect();
                values
                    .chunks(k * k)
                    .map(|channel| channel.chunks(k).map(<[f64]>::to_vec).collect())
                    .collect()
            })
            .collect();
        ConvPoolFile {
            filters: self.filters,
            filter: k,
            pool: self.pool,
            activation: self.activation,
            weights,
            biases: kind::values(&self.biases),
        }
    }

    fn from_file(file: ConvPoolFile, input: Shape, layer: usize) -> Result<Self, String> {
        let ConvPoolFile {
            filters,
            filter,
            pool,
            activation,
            weights,
            biases,
        } = file;
        let c = input[0];
        let ok = weights.len() == filters
            && weights.iter().all(|f| {
                f.len() == c
                    && f.iter()
                        .all(|ch| ch.len() == filter && ch.iter().all(|r| r.len() == filter))
            });
        if !ok {
            return Err(format!(
                "layer {layer}: weights is not {filters}×{c}×{filter}×{filter} \
                 (filters, channels, height, width)"
            ));
        }
        let flat = weights.into_iter().flatten().flatten().flatten().collect();
        let (weights, biases) =
            kind::parameters_from_file(layer, (filters, c * filter * filter), flat, biases)?;
        Ok(ConvPool {
            input,
            filters,
            filter,
            pool,
            activation,
            weights,
            biases,
        })
    }
}

/// A convolution's model-file entry: the item's numbers, `weights` `(filters, channels,
/// filter, filter)` as `network3.py`'s filter array, `biases` `(filters,)`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvPoolFile {
    filters: usize,
    filter: usize,
    pool: usize,
    activation: Activation,
    weights: Vec<Vec<Vec<Vec<f64>>>>,
    biases: Vec<f64>,
}

impl FileEntry for ConvPoolFile {
    fn spec(&self) -> LayerSpec {
        LayerSpec::ConvPool(ConvPoolSpec {
            filters: self.filters,
            filter: self.filter,
            pool: self.pool,
            activation: self.activation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr1, Array2};

    /// The 2×2 path follows the general path's row-major scan: the first maximum wins a tie,
    /// and a NaN does not hide a larger value after it.
    #[test]
    fn pooling_picks_the_first_maximum_as_the_scan_does() {
        // One filter, one example, a 2×4 map: blocks [[1, 2], [NaN, 5]] and [[3, 3], [3, 0]].
        let z = Array2::from_shape_vec((1, 8), vec![1.0, 2.0, 3.0, 3.0, f64::NAN, 5.0, 3.0, 0.0])
            .unwrap();
        let mut out = Array2::zeros((1, 2));
        let mut argmax = vec![0; 2];
        let relu = Activation::Relu;
        pool_forward(
            z.view(),
            (2, 4),
            2,
            1,
            arr1(&[0.0]).view(),
            relu,
            out.view_mut(),
            &mut argmax,
        );
        // Offsets i·W′ + j from each block's corner: 5 is at (1, 1); the first 3 at (0, 0).
        assert_eq!(argmax, [4 + 1, 0]);
        assert_eq!(out.as_slice().unwrap(), &[5.0, 3.0]);
        // The general path on 1×1 blocks of the same map keeps every value.
        let mut out = Array2::zeros((1, 8));
        let mut argmax = vec![9; 8];
        pool_forward(
            z.view(),
            (2, 4),
            1,
            1,
            arr1(&[0.0]).view(),
            relu,
            out.view_mut(),
            &mut argmax,
        );
        assert_eq!(argmax, [0; 8]);
    }
}
