//! Chapter 6's networks, `network3.py`: a list of layers — convolutional with max-pooling
//! ([`ConvPool`]), fully connected ([`FullyConnected`]) and softmax ([`Softmax`]) — trained on
//! the log-likelihood cost with `network3.py`'s L2 term, whole mini-batches at a time
//! ([`pass`]).
//!
//! Each kind of layer is one module — its list item, parameters, initialisation, forward and
//! backward pass, update, buffers and model-file entry — behind the traits of [`kind`]; the
//! registry below lists the kinds, and the pass, the model file and the list reader go through
//! it without knowing one kind from another.
//!
//! The layers are written by [`spec`] (`--layers conv:20:5,pool:2,fc:100,softmax`), drawn as
//! `network3.py` draws them ([`LayerNetwork::new`]), trained by the same loop as the
//! fully-connected networks (they implement [`crate::train::Model`]) and saved in their own
//! JSON layout ([`file`]). [`reference`] keeps the slow, obvious version of every pass — one
//! example at a time, nested loops — that the tests hold the fast one to.
//!
//! What this leaves out of `network3.py`: Theano (the gradients are written out, BP1–BP4, and
//! checked against finite differences); GPU execution; the flipped filters of Theano's
//! `conv2d` (see [`conv_pool`]).

/// Calls `$body` with `$n` a constant equal to `$v`, one of the listed values — for the
/// kernels of [`direct_conv`] and [`small_batch`], whose tiles are arrays of a length known when
/// compiling, kept in registers.
macro_rules! with_const {
    ($v:expr, $n:ident => $body:expr; $($c:literal)*) => {
        match $v {
            $($c => {
                const $n: usize = $c;
                $body
            })*
            v => unreachable!("no kernel for {v}"),
        }
    };
}

pub mod conv_pool;
pub mod dense;
pub mod direct_conv;
pub mod file;
pub mod fully_connected;
pub mod item;
pub mod kind;
pub mod pass;
pub mod phase;
pub mod reference;
pub mod row_dots;
pub mod shards;
pub mod small_batch;
pub mod softmax;
pub mod spec;

use ndarray::{ArrayViewD, ArrayViewMutD};
use rand::RngExt;
use rand_distr::StandardNormal;

use crate::data::Dataset;
use crate::model::network::{argmax, count_correct};
use crate::real::Real;
use crate::rng::SeededRng;

pub use conv_pool::ConvPool;
pub use dense::Dense;
pub use fully_connected::FullyConnected;
pub use softmax::Softmax;

use item::{Defaults, Item, Shape, SpecError};
use kind::{Backward, Buffer, FileEntry, Forward, Kind, KindSpec, Parameter, Place};
use kind::{Rate, Role, TunableName};

/// The registry of layer kinds: for each, its name in the enums below (and, in kebab case, in
/// the JSON of lists and model files), its list item ([`KindSpec`]) and its layer ([`Kind`]).
/// The enums only forward to the kinds; a new kind is its module and one line here.
macro_rules! registry {
    ($($(#[$doc:meta])* $name:ident($spec:ident, $layer:ident),)*) => {
        /// One item of a layer list ([`spec`]). Its JSON form — `{"kind": "conv-pool", ...}`
        /// with the item's fields — is stored in model files, checkpoints and tuning studies.
        #[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "kind", rename_all = "kebab-case")]
        pub enum LayerSpec {
            $($(#[$doc])* $name($spec),)*
        }

        /// One layer of a [`LayerNetwork`].
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(bound = "")]
        pub enum Layer<F: Real = f64> {
            $($(#[$doc])* $name($layer<F>),)*
        }

        /// One layer's buffers in a [`pass::Pass`].
        #[derive(Clone, Debug)]
        pub enum LayerBuffers<F: Real> {
            $($name(<$layer<F> as Kind<F>>::Buffers),)*
        }

        /// One layer's model-file entry, its kind's [`Kind::File`] tagged with `"kind"`.
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(tag = "kind", rename_all = "kebab-case")]
        pub enum LayerFile {
            $($name(<$layer<f64> as Kind<f64>>::File),)*
        }

        impl LayerSpec {
            /// Reads `item` as the kind whose keyword it starts with.
            fn parse_item(
                item: &Item<'_>,
                following: &[&str],
                defaults: Defaults,
            ) -> Result<(Self, usize), SpecError> {
                $(if <$spec as KindSpec>::KEYWORDS.contains(&item.kind) {
                    let (spec, used) = $spec::parse(item, following, defaults)?;
                    return Ok((spec.into(), used));
                })*
                Err(SpecError::UnknownKind {
                    index: item.index,
                    item: item.text.to_string(),
                    kind: item.kind.to_string(),
                })
            }

            /// Every number of every kind that a study may vary ([`KindSpec::TUNABLE`]).
            pub fn tunables() -> Vec<TunableName> {
                let mut all = Vec::new();
                $(all.extend(<$spec as KindSpec>::TUNABLE.iter().map(|t| TunableName {
                    keyword: <$spec as KindSpec>::KEYWORDS[0],
                    name: t.name,
                    bound: t.bound,
                    what: t.what,
                }));)*
                all
            }

            /// The keyword that names the layer's kind (`conv`, `fc`, `softmax`).
            pub fn keyword(&self) -> &'static str {
                match self { $(LayerSpec::$name(_) => <$spec as KindSpec>::KEYWORDS[0],)* }
            }

            /// Sets the tunable number `name` of this layer to `value` (as written); `None` if
            /// the kind has no such number or `value` is not one.
            pub fn set_tunable(&mut self, name: &str, value: &str) -> Option<()> {
                match self {
                    $(LayerSpec::$name(s) => {
                        let tunable = <$spec as KindSpec>::TUNABLE.iter().find(|t| t.name == name)?;
                        (tunable.set)(s, value)
                    })*
                }
            }

            /// The text [`spec::parse`] reads back as this layer, with every option spelled
            /// out.
            pub fn text(&self) -> String {
                match self { $(LayerSpec::$name(s) => s.text(),)* }
            }

            fn check(&self, place: &Place<'_>) -> Result<(), SpecError> {
                match self { $(LayerSpec::$name(s) => s.check(place),)* }
            }

            /// The layer's output shape for an `input` shape, given the `classes` of the data.
            pub fn output(&self, input: Shape, classes: usize) -> Shape {
                match self { $(LayerSpec::$name(s) => s.output(input, classes),)* }
            }

            fn keeps_maps(&self) -> bool {
                match self { $(LayerSpec::$name(s) => s.keeps_maps(),)* }
            }

            fn is_output(&self) -> bool {
                match self { $(LayerSpec::$name(s) => s.is_output(),)* }
            }

            /// The probability of dropping each input while training (0 for none).
            pub fn dropout(&self) -> f64 {
                match self { $(LayerSpec::$name(s) => s.dropout(),)* }
            }

            fn parameters(&self, input: Shape, classes: usize) -> Option<u128> {
                match self { $(LayerSpec::$name(s) => s.parameters(input, classes),)* }
            }

            /// See [`KindSpec::multiply_adds`].
            pub fn multiply_adds(&self, input: Shape, classes: usize) -> f64 {
                match self { $(LayerSpec::$name(s) => s.multiply_adds(input, classes),)* }
            }

            /// See [`KindSpec::buffers`].
            pub fn buffers<F: Real>(
                &self,
                input: Shape,
                output: Shape,
                m: usize,
                role: Role,
            ) -> Option<Vec<Buffer>> {
                match self { $(LayerSpec::$name(s) => s.buffers::<F>(input, output, m, role),)* }
            }

            fn build<F: Real>(
                &self,
                input: Shape,
                classes: usize,
                draw: &mut impl FnMut(f64) -> F,
            ) -> Layer<F> {
                match self { $(LayerSpec::$name(s) => s.build(input, classes, draw),)* }
            }
        }

        impl<F: Real> Layer<F> {
            /// The list item that builds a layer like this one.
            pub fn spec(&self) -> LayerSpec {
                match self { $(Layer::$name(l) => l.spec().into(),)* }
            }

            /// `(C, H, W)` of one example's input (`(n_in, 1, 1)` for a dense layer after
            /// another).
            pub fn input(&self) -> Shape {
                match self { $(Layer::$name(l) => l.input(),)* }
            }

            /// `(C, H, W)` of one example's output (`(n_out, 1, 1)` for a dense layer).
            pub fn output(&self) -> Shape {
                match self { $(Layer::$name(l) => l.output(),)* }
            }

            /// Every parameter array ([`Kind::parameters`]).
            pub fn parameters(&self) -> Vec<Parameter<'_, F>> {
                match self { $(Layer::$name(l) => l.parameters(),)* }
            }

            pub fn parameters_mut(&mut self) -> Vec<ArrayViewMutD<'_, F>> {
                match self { $(Layer::$name(l) => l.parameters_mut(),)* }
            }

            /// The dropout probability of the layer's inputs (0 for none).
            pub fn dropout(&self) -> f64 {
                self.spec().dropout()
            }

            fn cast<G: Real>(&self) -> Layer<G> {
                match self { $(Layer::$name(l) => l.cast(),)* }
            }

            /// The layer as `nndl eval` computes it ([`Kind::export`]).
            pub fn export(&self) -> crate::model::export::layer::Exported<'_, F> {
                match self { $(Layer::$name(l) => l.export(),)* }
            }

            fn allocate(&self, buffers: &[Buffer]) -> LayerBuffers<F> {
                match self { $(Layer::$name(l) => LayerBuffers::$name(l.allocate(buffers)),)* }
            }

            fn use_general_products(&self, buffers: &mut LayerBuffers<F>) {
                match (self, buffers) {
                    $((Layer::$name(l), LayerBuffers::$name(b)) => l.use_general_products(b),)*
                    _ => unreachable!("buffers made for another layer"),
                }
            }

            fn forward(&self, buffers: &mut LayerBuffers<F>, pass: &mut Forward<'_, F>) {
                match (self, buffers) {
                    $((Layer::$name(l), LayerBuffers::$name(b)) => l.forward(b, pass),)*
                    _ => unreachable!("buffers made for another layer"),
                }
            }

            fn backward(&self, buffers: &mut LayerBuffers<F>, pass: &mut Backward<'_, F>) {
                match (self, buffers) {
                    $((Layer::$name(l), LayerBuffers::$name(b)) => l.backward(b, pass),)*
                    _ => unreachable!("buffers made for another layer"),
                }
            }

            fn backward_update(
                &mut self,
                buffers: &mut LayerBuffers<F>,
                pass: &mut Backward<'_, F>,
                rate: Rate<F>,
            ) {
                match (self, buffers) {
                    $((Layer::$name(l), LayerBuffers::$name(b)) => {
                        l.backward_update(b, pass, rate)
                    })*
                    _ => unreachable!("buffers made for another layer"),
                }
            }

            fn update(&mut self, buffers: &LayerBuffers<F>, rate: Rate<F>) {
                match (self, buffers) {
                    $((Layer::$name(l), LayerBuffers::$name(b)) => l.update(b, rate),)*
                    _ => unreachable!("buffers made for another layer"),
                }
            }


            fn gradients<'a>(&self, buffers: &'a LayerBuffers<F>) -> Vec<ArrayViewD<'a, F>> {
                match (self, buffers) {
                    $((Layer::$name(l), LayerBuffers::$name(b)) => l.gradients(b),)*
                    _ => unreachable!("buffers made for another layer"),
                }
            }

            fn reference_forward(
                &self,
                trace: &mut reference::Trace<F>,
                training: bool,
                mask: Option<&[F]>,
            ) {
                match self { $(Layer::$name(l) => l.reference_forward(trace, training, mask),)* }
            }

            fn reference_backward(
                &self,
                trace: &reference::Trace<F>,
                d_out: &[F],
                mask: Option<&[F]>,
                nabla: &mut [ndarray::ArrayD<F>],
            ) -> Vec<F> {
                match self {
                    $(Layer::$name(l) => l.reference_backward(trace, d_out, mask, nabla),)*
                }
            }

            fn to_file(&self) -> LayerFile {
                match self { $(Layer::$name(l) => LayerFile::$name(l.to_file()),)* }
            }

            fn from_file(file: LayerFile, input: Shape, layer: usize) -> Result<Self, String> {
                Ok(match file {
                    $(LayerFile::$name(f) => Layer::$name($layer::from_file(f, input, layer)?),)*
                })
            }
        }

        impl LayerFile {
            fn spec(&self) -> LayerSpec {
                match self { $(LayerFile::$name(f) => f.spec(),)* }
            }

            fn classes(&self) -> Option<usize> {
                match self { $(LayerFile::$name(f) => f.classes(),)* }
            }
        }
    };
}

registry! {
    /// `ConvPoolLayer`.
    ConvPool(ConvPoolSpec, ConvPool),
    /// `FullyConnectedLayer`.
    FullyConnected(FullyConnectedSpec, FullyConnected),
    /// `SoftmaxLayer`, the output layer.
    Softmax(SoftmaxSpec, Softmax),
}

use conv_pool::ConvPoolSpec;
use fully_connected::FullyConnectedSpec;
use softmax::SoftmaxSpec;

/// `network3.py`'s `Network`: the layers, each reading the one before it, the first the
/// images. Its serde form is for training checkpoints; model files have their own layout
/// ([`file`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(bound = "")]
pub struct LayerNetwork<F: Real = f64> {
    /// `(C, H, W)` of one input image: `(1, 28, 28)` for MNIST.
    pub input: Shape,
    pub layers: Vec<Layer<F>>,
}

impl<F: Real> LayerNetwork<F> {
    /// A network of the `layers` for images of shape `input` and `classes` classes, with
    /// `network3.py`'s initial weights, drawn layer by layer, weights before biases:
    /// convolutional and fully-connected weights N(0, 1/n_out), where a convolution's n_out
    /// is F·K²/P² (the outputs each input reaches), biases N(0, 1); the softmax layer's weights
    /// and biases 0. Drawn in `f64` and rounded, so `f32` and `f64` networks of one seed start
    /// alike.
    pub fn new(
        layers: &[LayerSpec],
        input: Shape,
        classes: usize,
        rng: &mut SeededRng,
    ) -> Result<Self, SpecError> {
        let shapes = spec::check(layers, input, classes)?;
        let mut draw = |sd: f64| F::of(sd * rng.sample::<f64, _>(StandardNormal));
        let layers = layers
            .iter()
            .zip(&shapes)
            .map(|(layer, &input)| layer.build(input, classes, &mut draw))
            .collect();
        Ok(LayerNetwork { input, layers })
    }

    /// The layer list, as [`spec::parse`] reads it.
    pub fn specs(&self) -> Vec<LayerSpec> {
        self.layers.iter().map(Layer::spec).collect()
    }

    /// The values one example has: C·H·W.
    pub fn inputs(&self) -> usize {
        self.input.iter().product()
    }

    /// The classes told apart: the softmax layer's neurons.
    pub fn classes(&self) -> usize {
        self.layers.last().map_or(0, |l| l.output()[0])
    }

    /// The same network computing in `G`.
    pub fn cast<G: Real>(&self) -> LayerNetwork<G> {
        LayerNetwork {
            input: self.input,
            layers: self.layers.iter().map(Layer::cast).collect(),
        }
    }

    /// How many examples of `data` the network classifies correctly (the most active softmax
    /// neuron is the digit).
    pub fn evaluate(&self, data: &Dataset<F>) -> usize {
        count_correct(&self.predictions(data), data.labels())
    }

    /// The digit each example of `data` is read as.
    pub fn predictions(&self, data: &Dataset<F>) -> Vec<usize> {
        let digits = self.map_outputs(data, |out, _| {
            out.columns()
                .into_iter()
                .map(|col| argmax(col.iter().map(|v| v.as_f64())))
                .collect::<Vec<_>>()
        });
        digits.concat()
    }

    /// The cost `network3.py` trains on, over `data`: the mean log-likelihood −ln a_y plus
    /// ½λ‖W‖²/B, with B = n/m the number of mini-batches of size `mini_batch` in `data` (at
    /// least 1). The examples' costs are added one by one, in order.
    pub fn total_cost(&self, data: &Dataset<F>, lambda: f64, mini_batch: usize) -> f64 {
        let costs = self.map_outputs(data, |out, labels| {
            let columns = out.columns().into_iter().zip(labels);
            columns
                .map(|(col, &label)| col[usize::from(label)].as_f64().ln())
                .collect::<Vec<f64>>()
        });
        let total = costs.iter().flatten().fold(0.0, |total, ln_a| total - ln_a);
        let batches = (data.len() / mini_batch.max(1)).max(1) as f64;
        total / data.len() as f64 + 0.5 * lambda * self.weights_squared() / batches
    }

    /// Σ w² over every layer's weights (the parameters the L2 term covers; not the biases).
    pub fn weights_squared(&self) -> f64 {
        let mut sum = 0.0;
        for layer in &self.layers {
            for p in layer.parameters().iter().filter(|p| p.decays) {
                sum += p
                    .values
                    .iter()
                    .map(|w| w.as_f64() * w.as_f64())
                    .sum::<f64>();
            }
        }
        sum
    }

    /// True when every weight and bias is a finite number.
    pub fn is_finite(&self) -> bool {
        self.layers.iter().all(|l| {
            l.parameters()
                .iter()
                .all(|p| p.values.iter().all(|v| v.is_finite()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::activation::Activation;

    /// Training checkpoints store a network in its serde form: each layer tagged with its
    /// variant's name, a fully-connected layer as `{activation, dense}`, a softmax layer as its
    /// `Dense` — the form checkpoints written before the kinds had their own modules hold.
    #[test]
    fn the_checkpoint_form_of_a_network_is_unchanged() {
        let specs = spec::parse("conv:1:2,fc:2,softmax", Activation::Relu, 0.0).unwrap();
        let net: LayerNetwork =
            LayerNetwork::new(&specs, [1, 2, 2], 2, &mut crate::rng::seeded(0)).unwrap();
        let json = serde_json::to_value(&net).unwrap();
        let layers = json["layers"].as_array().unwrap();
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k.join(",")
        };
        assert_eq!(
            keys(&layers[0]["ConvPool"]),
            "activation,biases,filter,filters,input,pool,weights"
        );
        assert_eq!(keys(&layers[1]["FullyConnected"]), "activation,dense");
        assert_eq!(
            keys(&layers[1]["FullyConnected"]["dense"]),
            "biases,dropout,input,weights"
        );
        assert_eq!(keys(&layers[2]["Softmax"]), "biases,dropout,input,weights");
        let back: LayerNetwork = serde_json::from_value(json).unwrap();
        assert_eq!(back, net);
    }
}
