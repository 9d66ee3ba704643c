//! What `network3.py`'s layer classes have in common. Each of `ConvPoolLayer`,
//! `FullyConnectedLayer` and `SoftmaxLayer` is built from a few numbers, draws its `w` and `b`
//! in `__init__`, computes its output in `set_inpt` and leaves the rest to Theano's `grad`;
//! here the rest is written out, and every kind answers the same two traits:
//!
//! - [`KindSpec`], the kind's item of a layer list (`conv:20:5`, `fc:100`, `softmax`): how it
//!   is parsed and written, what it needs of its input, its output shape, its parameter count,
//!   the buffers a pass of m examples needs for it ([`Buffer`]), and how it is drawn;
//! - [`Kind`], the built layer: its parameters, `feedforward` ([`Kind::forward`]), `backprop`
//!   (BP1–BP4, [`Kind::backward`]) and `network3.py`'s update, and its model-file entry.
//!
//! [`super::pass`] calls only these; the registry in [`super`] lists the kinds, one line each.

use std::fmt::Debug;

use ndarray::{
    Array1, Array2, ArrayD, ArrayView2, ArrayViewD, ArrayViewMut2, ArrayViewMutD, Ix1, Ix2, Zip,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::model::export::layer::Exported;
use crate::real::Real;

use super::item::{Defaults, Item, Shape, SpecError};
use super::phase::{Phase, Timer};
use super::reference::Trace;
use super::{Layer, LayerSpec};

/// What a buffer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Element {
    /// Numbers of the network's float type.
    Real,
    /// Positions, `u32`.
    Index,
    /// Labels, `u8`.
    Label,
}

/// One buffer a pass allocates: `rows × cols` elements. Declared once by the kind (or the
/// pass) for a mini-batch of m examples; [`super::pass::Pass::new`] allocates exactly these
/// and the memory estimate ([`super::spec::bytes_needed`]) adds them up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffer {
    pub name: &'static str,
    pub element: Element,
    pub rows: usize,
    pub cols: usize,
}

/// The product of `factors`, if it fits in `usize`.
fn product(factors: &[usize]) -> Option<usize> {
    factors.iter().try_fold(1usize, |p, &n| p.checked_mul(n))
}

impl Buffer {
    /// A buffer of floats, `(Π rows, Π cols)`; `None` past the address space.
    pub fn real(name: &'static str, rows: &[usize], cols: &[usize]) -> Option<Buffer> {
        Self::of(name, Element::Real, rows, cols)
    }

    /// A buffer of `Π len` elements of `element`.
    pub fn flat(name: &'static str, element: Element, len: &[usize]) -> Option<Buffer> {
        Self::of(name, element, &[1], len)
    }

    fn of(name: &'static str, element: Element, rows: &[usize], cols: &[usize]) -> Option<Self> {
        Some(Buffer {
            name,
            element,
            rows: product(rows)?,
            cols: product(cols)?,
        })
    }

    /// Its size in bytes with floats of type `F`.
    pub fn bytes<F: Real>(&self) -> Option<u128> {
        let element = match self.element {
            Element::Real => std::mem::size_of::<F>(),
            Element::Index => std::mem::size_of::<u32>(),
            Element::Label => std::mem::size_of::<u8>(),
        };
        (self.rows as u128)
            .checked_mul(self.cols as u128)?
            .checked_mul(element as u128)
    }
}

/// The declared buffer `name` of `buffers`, allocated: zeros of its shape, or an empty array
/// when it is not declared (not needed for this layer and pass).
pub fn zeros<F: Real>(buffers: &[Buffer], name: &str) -> Array2<F> {
    buffers.iter().find(|b| b.name == name).map_or_else(
        || Array2::zeros((0, 0)),
        |b| Array2::zeros((b.rows, b.cols)),
    )
}

/// [`zeros`] for a 1-d buffer (its `cols` values).
pub fn zeros_1d<F: Real>(buffers: &[Buffer], name: &str) -> Array1<F> {
    buffers
        .iter()
        .find(|b| b.name == name)
        .map_or_else(|| Array1::zeros(0), |b| Array1::zeros(b.rows * b.cols))
}

/// [`zeros`] for a buffer of positions.
pub fn indices(buffers: &[Buffer], name: &str) -> Vec<u32> {
    buffers
        .iter()
        .find(|b| b.name == name)
        .map_or_else(Vec::new, |b| vec![0; b.rows * b.cols])
}

/// [`reserve`] for each of the `rows` of the declared buffer `name` (one, empty, when it is
/// not declared).
pub fn reserve_rows<T>(buffers: &[Buffer], name: &str) -> Vec<Vec<T>> {
    buffers.iter().find(|b| b.name == name).map_or_else(
        || vec![Vec::new()],
        |b| (0..b.rows).map(|_| Vec::with_capacity(b.cols)).collect(),
    )
}

/// Empty space for the declared buffer `name` of `buffers`, to be filled by a kernel.
pub fn reserve<T>(buffers: &[Buffer], name: &str) -> Vec<T> {
    buffers
        .iter()
        .find(|b| b.name == name)
        .map_or_else(Vec::new, |b| Vec::with_capacity(b.rows * b.cols))
}

/// Which pass a layer's buffers are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Role {
    /// A training pass (backward buffers too), or an evaluation pass.
    pub training: bool,
    /// The first layer, whose input is the images: it computes no input error.
    pub first: bool,
    /// The threads a layer may split its work between in this pass (1 for one).
    pub parts: usize,
}

/// Where an item stands in the list, for [`KindSpec::check`].
#[derive(Clone, Copy, Debug)]
pub struct Place<'a> {
    /// Counted from 1.
    pub index: usize,
    /// The item's text ([`KindSpec::text`]).
    pub item: &'a str,
    /// The shape it reads.
    pub input: Shape,
    /// Whether every layer before it kept feature maps ([`KindSpec::keeps_maps`]).
    pub maps: bool,
    /// Whether it is the list's last item.
    pub last: bool,
}

impl Place<'_> {
    /// [`SpecError::Malformed`] unless `ok`: what [`super::spec::parse`] refuses, refused for
    /// lists read from model files too.
    pub fn sizes_valid(&self, ok: bool) -> Result<(), SpecError> {
        if ok {
            return Ok(());
        }
        Err(SpecError::Malformed {
            index: self.index,
            item: self.item.to_string(),
            what: "sizes must be above 0 and dropout at least 0 and below 1".to_string(),
        })
    }
}

/// A kind's item of a layer list.
/// What a tunable number may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// A whole number of at least 1 (neurons, filters, sizes).
    Count,
    /// A probability in [0, 1) (dropout).
    Probability,
}

/// A number of a layer's list item that a study may vary ([`KindSpec::TUNABLE`]).
pub struct Tunable<S> {
    /// Its name after the layer's, `filters` in `conv1.filters`.
    pub name: &'static str,
    pub bound: Bound,
    /// What it is, for `nndl tune --help`.
    pub what: &'static str,
    /// Puts the value, as written on the command line, in place; `None` if it is not one.
    pub set: fn(&mut S, &str) -> Option<()>,
}

/// Reads `text` into `field`, for [`Tunable::set`].
pub fn put<T: std::str::FromStr>(field: &mut T, text: &str) -> Option<()> {
    *field = text.parse().ok()?;
    Some(())
}

/// One of [`KindSpec::TUNABLE`] of whichever kind, as the registry lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunableName {
    /// The kind's keyword, `conv`.
    pub keyword: &'static str,
    /// `filters`.
    pub name: &'static str,
    pub bound: Bound,
    pub what: &'static str,
}

pub trait KindSpec: Copy + Into<LayerSpec> + 'static {
    /// The first words of the items it reads (`conv` and `pool` for a convolution); the first
    /// names the kind.
    const KEYWORDS: &'static [&'static str];

    /// The numbers of its item a hyperparameter study may vary, as `KEYWORDN.NAME` for the
    /// N-th layer of the kind (`conv1.filters`).
    const TUNABLE: &'static [Tunable<Self>] = &[];

    /// Reads `item` (whose keyword is one of [`Self::KEYWORDS`]), `following` the items after
    /// it; returns the layer and how many items it took (an item with its `pool:P`, two).
    fn parse(
        item: &Item<'_>,
        following: &[&str],
        defaults: Defaults,
    ) -> Result<(Self, usize), SpecError>;

    /// The text [`KindSpec::parse`] reads back as this layer, every option spelled out.
    fn text(&self) -> String;

    /// Refuses what cannot be built at `place`.
    fn check(&self, place: &Place<'_>) -> Result<(), SpecError>;

    /// The output shape for an `input` shape, with `classes` in the data.
    fn output(&self, input: Shape, classes: usize) -> Shape;

    /// Whether its output keeps feature maps a convolution can read.
    fn keeps_maps(&self) -> bool {
        false
    }

    /// Whether it is an output layer, which the list must end with.
    fn is_output(&self) -> bool {
        false
    }

    /// The probability of dropping each of its inputs while training.
    fn dropout(&self) -> f64 {
        0.0
    }

    /// Its weights and biases reading `input`, if the count fits in 128 bits.
    fn parameters(&self, input: Shape, classes: usize) -> Option<u128>;

    /// The multiply-adds of its forward product for one example (which ∇W and the input's
    /// error match), for the benchmarks' FLOP counts.
    fn multiply_adds(&self, input: Shape, classes: usize) -> f64;

    /// The buffers a pass of `m` examples needs for it in `role` with floats of type `F`,
    /// beyond the output, its error and the dropout masks every layer has (see
    /// [`super::pass`]); `None` past the address space.
    fn buffers<F: Real>(
        &self,
        input: Shape,
        output: Shape,
        m: usize,
        role: Role,
    ) -> Option<Vec<Buffer>>;

    /// The layer with `network3.py`'s initial parameters, each value `draw(sd)`, a normal draw
    /// of standard deviation `sd` (the order of draws is the network's seed's).
    fn build<F: Real>(
        &self,
        input: Shape,
        classes: usize,
        draw: &mut impl FnMut(f64) -> F,
    ) -> Layer<F>;
}

/// One parameter array of a layer.
pub struct Parameter<'a, F> {
    pub values: ArrayViewD<'a, F>,
    /// Whether the L2 term ½λ‖·‖² covers it (weights, not biases).
    pub decays: bool,
}

/// What a layer's `feedforward` reads and writes besides its own buffers.
pub struct Forward<'a, F: Real> {
    /// Examples gathered (the first m columns of the activations).
    pub m: usize,
    /// A training pass: the inputs dropped by `mask` are zeroed; otherwise every input is used
    /// and a weighted input scaled by 1 − p.
    pub training: bool,
    /// Whether the small-batch kernels take this mini-batch.
    pub small: bool,
    /// The threads the layer may split its work between (see [`Role::parts`]).
    pub parts: usize,
    /// `(C, m_max·H·W)`: the previous layer's output, or the images.
    pub input: ArrayView2<'a, F>,
    /// `(m_max, n_in)`: the dropout masks of the layer's inputs, when drawn.
    pub mask: Option<ArrayView2<'a, F>>,
    /// `(C′, m_max·H′·W′)`: the layer's output.
    pub out: ArrayViewMut2<'a, F>,
    pub timer: Timer<'a>,
}

/// What a layer's `backprop` reads and writes besides its own buffers.
pub struct Backward<'a, F: Real> {
    pub m: usize,
    pub small: bool,
    pub parts: usize,
    /// `(C, m_max·H·W)`: the layer's input, as in the forward pass.
    pub input: ArrayView2<'a, F>,
    /// The dropout masks applied in the forward pass.
    pub mask: Option<ArrayView2<'a, F>>,
    /// `(C′, m_max·H′·W′)`: the layer's output.
    pub out: ArrayView2<'a, F>,
    /// Same shape as `out`: ∂C/∂out on entry; the layer may turn it into δ.
    pub d_out: ArrayViewMut2<'a, F>,
    /// Same shape as `input`: where ∂C/∂input goes (the previous layer's ∂C/∂out); `None` for
    /// the first layer.
    pub d_input: Option<ArrayViewMut2<'a, F>>,
    pub timer: Timer<'a>,
}

/// `(decay, scale)` of `network3.py`'s update: W ← decay·W − scale·∇W, b ← b − scale·∇b.
pub type Rate<F> = (F, F);

/// A built layer of one kind.
pub trait Kind<F: Real>: Sized {
    type Spec: KindSpec;
    /// Its buffers in a pass, allocated from [`KindSpec::buffers`].
    type Buffers: Clone + Debug;
    /// Its entry in a model file ([`super::file`]), without the `"kind"` tag.
    type File: Serialize + DeserializeOwned + FileEntry;

    /// The list item that builds a layer like this one.
    fn spec(&self) -> Self::Spec;

    /// `(C, H, W)` of one example's input.
    fn input(&self) -> Shape;

    /// `(C, H, W)` of one example's output.
    fn output(&self) -> Shape;

    /// Every parameter array, in a fixed order ([`Kind::gradients`] follows it).
    fn parameters(&self) -> Vec<Parameter<'_, F>>;

    fn parameters_mut(&mut self) -> Vec<ArrayViewMutD<'_, F>>;

    /// The same layer computing in `G`.
    fn cast<G: Real>(&self) -> Layer<G>;

    /// The layer as `nndl eval` computes it, for `nndl export` ([`crate::model::export`]).
    fn export(&self) -> Exported<'_, F>;

    /// Its buffers from their declaration.
    fn allocate(&self, buffers: &[Buffer]) -> Self::Buffers;

    /// Sends its products through `general_mat_mul` (to test and time kernels against them).
    fn use_general_products(&self, _buffers: &mut Self::Buffers) {}

    /// `feedforward` of the gathered examples into `pass.out`.
    fn forward(&self, buffers: &mut Self::Buffers, pass: &mut Forward<'_, F>);

    /// `backprop` after a training forward pass: ∇ of every parameter, summed over the
    /// mini-batch, left in `buffers` ([`Kind::gradients`]), and ∂C/∂input.
    fn backward(&self, buffers: &mut Self::Buffers, pass: &mut Backward<'_, F>);

    /// The training step's `backprop`: the same ∂C/∂input, and the layer updated by `rate` as
    /// soon as its weights are no longer needed. By default [`Kind::backward`], then
    /// [`Kind::update`].
    fn backward_update(
        &mut self,
        buffers: &mut Self::Buffers,
        pass: &mut Backward<'_, F>,
        rate: Rate<F>,
    ) {
        self.backward(buffers, pass);
        self.update(buffers, rate);
        pass.timer.mark(Phase::Update);
    }

    /// `network3.py`'s update from the gradients of the last [`Kind::backward`].
    fn update(&mut self, buffers: &Self::Buffers, rate: Rate<F>);

    /// The gradients of the last [`Kind::backward`], in the order of [`Kind::parameters`].
    fn gradients<'a>(&self, buffers: &'a Self::Buffers) -> Vec<ArrayViewD<'a, F>>;

    /// The slow, obvious `feedforward` of one example ([`super::reference`]): `trace.out`
    /// (and what backprop needs) from `trace.input`, a flat `(C, H, W)`; in `training` with
    /// the input's dropout `mask`, if any (the masked input is left in `trace.input`).
    fn reference_forward(&self, trace: &mut Trace<F>, training: bool, mask: Option<&[F]>);

    /// The slow `backprop` of one example from ∂C/∂out `d_out`: adds the gradient of every
    /// parameter to `nabla` (in the order of [`Kind::parameters`]) and returns ∂C/∂input.
    fn reference_backward(
        &self,
        trace: &Trace<F>,
        d_out: &[F],
        mask: Option<&[F]>,
        nabla: &mut [ArrayD<F>],
    ) -> Vec<F>;

    /// Its model-file entry.
    fn to_file(&self) -> Self::File;

    /// The layer a model-file entry describes, reading `input`; `layer` (counted from 1)
    /// names it in errors.
    fn from_file(file: Self::File, input: Shape, layer: usize) -> Result<Self, String>;
}

/// What loading needs of a model-file entry before the layer is built.
pub trait FileEntry {
    /// The list item it describes.
    fn spec(&self) -> LayerSpec;

    /// The classes, for an output layer.
    fn classes(&self) -> Option<usize> {
        None
    }
}

/// `network3.py`'s update of one (W, b) pair from its gradients: W ← decay·W − scale·∇W,
/// b ← b − scale·∇b.
pub fn apply_update<F: Real>(
    weights: &mut Array2<F>,
    biases: &mut Array1<F>,
    nabla_w: &Array2<F>,
    nabla_b: &Array1<F>,
    (decay, scale): Rate<F>,
) {
    Zip::from(weights)
        .and(nabla_w)
        .for_each(|w, &g| *w = decay * *w - scale * g);
    biases.scaled_add(-scale, nabla_b);
}

/// A layer's weights, `shape` and given flat, and its biases (one per row), from a model file,
/// checked finite.
pub fn parameters_from_file<F: Real>(
    layer: usize,
    shape: (usize, usize),
    flat: Vec<f64>,
    biases: Vec<f64>,
) -> Result<(Array2<F>, Array1<F>), String> {
    if biases.len() != shape.0 {
        return Err(format!("layer {layer}: biases is not {} values", shape.0));
    }
    if !flat.iter().chain(&biases).all(|v| v.is_finite()) {
        return Err(format!("layer {layer}: a weight or bias is not finite"));
    }
    let weights = Array2::from_shape_vec(shape, flat).map_err(|e| e.to_string())?;
    Ok((weights.mapv(F::of), biases.into_iter().map(F::of).collect()))
}

/// An array's values as `f64`, for a model file.
pub fn values<F: Real>(a: &Array1<F>) -> Vec<f64> {
    a.iter().map(|v| v.as_f64()).collect()
}

/// A (W, b) pair as [`Kind::parameters`] lists it.
pub fn weights_and_biases<'a, F: Real>(
    weights: &'a Array2<F>,
    biases: &'a Array1<F>,
) -> Vec<Parameter<'a, F>> {
    vec![
        Parameter {
            values: weights.view().into_dyn(),
            decays: true,
        },
        Parameter {
            values: biases.view().into_dyn(),
            decays: false,
        },
    ]
}

/// A (W, b) pair as [`Kind::parameters_mut`] lists it.
pub fn weights_and_biases_mut<'a, F: Real>(
    weights: &'a mut Array2<F>,
    biases: &'a mut Array1<F>,
) -> Vec<ArrayViewMutD<'a, F>> {
    vec![weights.view_mut().into_dyn(), biases.view_mut().into_dyn()]
}

/// A (∇W, ∇b) pair as [`Kind::gradients`] lists it.
pub fn gradient_pair<'a, F: Real>(
    nabla_w: &'a Array2<F>,
    nabla_b: &'a Array1<F>,
) -> Vec<ArrayViewD<'a, F>> {
    vec![nabla_w.view().into_dyn(), nabla_b.view().into_dyn()]
}

/// The (∇W, ∇b) pair of a reference gradient ([`Kind::reference_backward`]), as matrices.
pub fn reference_pair<F: Real>(
    nabla: &mut [ArrayD<F>],
) -> (ndarray::ArrayViewMut2<'_, F>, ndarray::ArrayViewMut1<'_, F>) {
    let [w, b] = nabla else {
        unreachable!("a (W, b) layer has two gradients");
    };
    let w = w.view_mut().into_dimensionality::<Ix2>();
    let b = b.view_mut().into_dimensionality::<Ix1>();
    (w.expect("∇W is a matrix"), b.expect("∇b is a vector"))
}
