//! A trained network as other tools read it (`nndl export`): each layer written as the
//! product it computes when `nndl eval` scores it — a fully-connected product, or chapter 6's
//! convolution with max-pooling — its parameters, and the function applied after, in one
//! neutral description ([`Exported`]) that both formats are written from: [`onnx`] (a graph
//! onnxruntime runs and Netron draws) and [`safetensors`] (the weights, with the model file's
//! description of the network, for PyTorch and the like).
//!
//! The description is the evaluation pass, not the training one: a chapter-6 layer with
//! dropout p scales its weighted input by 1 − p as `network3.py` evaluates it; the
//! fully-connected programs' dropout is inverted ([`crate::model::dropout`]) and needs nothing.

pub mod onnx;
pub mod onnx_proto;
pub mod safetensors;

use ndarray::{ArrayView1, ArrayView2};

use crate::model::activation::{Activation, Output};
use crate::model::file::SavedModel;
use crate::model::layers::item::Shape;
use crate::model::network::Network;
use crate::real::Real;

/// The product a layer computes from its input, before its bias.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Product {
    /// `scale`·(W·x) for W `(n_out, n_in)` and x the input flattened in (channel, y, x) order;
    /// `scale` is 1 − p for a chapter-6 layer whose inputs are dropped with probability p
    /// while training, else 1.
    Dense { scale: f64 },
    /// `network3.py`'s `ConvPoolLayer` before its bias: every filter slid over every input
    /// channel (valid, stride 1, no flipping: z = Σ_c Σ_i Σ_j w[f,c,i,j]·a[c,y+i,x+j]), then
    /// the maximum of each `pool`×`pool` block.
    ConvPool { filter: usize, pool: usize },
}

/// What a layer applies to its weighted input z = product + b.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Function {
    Hidden(Activation),
    Output(Output),
}

/// One layer as [`onnx`] and [`safetensors`] write it.
#[derive(Clone, Debug)]
pub struct Exported<'a, F: Real> {
    /// The word naming its kind, `conv`, `fc` or `softmax` (the fully-connected programs'
    /// output layer is named by its function, `sigmoid` or `softmax`).
    pub keyword: &'static str,
    pub product: Product,
    /// The weights as stored, `(n_out, …)`, one output neuron or filter per row.
    pub weights: ArrayView2<'a, F>,
    /// The shape the weights are written in: `(n_out, n_in)` for a dense product (PyTorch's
    /// `nn.Linear` layout), `(filters, channels, K, K)` for a convolution (`nn.Conv2d`'s).
    pub weight_shape: Vec<usize>,
    /// `(n_out,)`, one per neuron or filter.
    pub biases: ArrayView1<'a, F>,
    pub function: Function,
}

/// A whole network as the exporters read it.
#[derive(Clone, Debug)]
pub struct ExportedNetwork<'a, F: Real> {
    /// `(C, H, W)` of one example; the fully-connected programs read `(sizes[0], 1, 1)`.
    pub input: Shape,
    pub layers: Vec<Exported<'a, F>>,
}

impl<F: Real> Network<F> {
    /// The layers as exported: w·a + b then the hidden activation, the last layer's output
    /// function (eq. 22).
    pub fn export(&self) -> ExportedNetwork<'_, F> {
        let last = self.weights.len() - 1;
        let layers = self
            .weights
            .iter()
            .zip(&self.biases)
            .enumerate()
            .map(|(l, (w, b))| {
                let (keyword, function) = if l == last {
                    (self.output().name(), Function::Output(self.output()))
                } else {
                    ("fc", Function::Hidden(self.activation))
                };
                Exported {
                    keyword,
                    product: Product::Dense { scale: 1.0 },
                    weights: w.view(),
                    weight_shape: w.shape().to_vec(),
                    biases: b.view(),
                    function,
                }
            })
            .collect();
        ExportedNetwork {
            input: [self.sizes[0], 1, 1],
            layers,
        }
    }
}

impl<F: Real> SavedModel<F> {
    /// The network as exported, whichever kind it is.
    pub fn export(&self) -> ExportedNetwork<'_, F> {
        match self {
            SavedModel::FullyConnected(net) => net.export(),
            SavedModel::Layers(net) => ExportedNetwork {
                input: net.input,
                layers: net.layers.iter().map(|l| l.export()).collect(),
            },
        }
    }
}

/// The model file's description of the network: its JSON `model` with every `weights` and
/// `biases` left out (the top-level lists of `network2.py`'s layout, each layer's of chapter
/// 6's), keeping the layer list, activations, dropout, cost and training configuration. The
/// exports carry it as metadata, so that their own tensors and it rebuild the model file
/// ([`safetensors::model_file`]).
pub fn description(mut model: serde_json::Value) -> String {
    let strip = |v: &mut serde_json::Value| {
        if let Some(object) = v.as_object_mut() {
            object.remove("weights");
            object.remove("biases");
        }
    };
    strip(&mut model);
    if let Some(layers) = model.get_mut("layers").and_then(|l| l.as_array_mut()) {
        layers.iter_mut().for_each(strip);
    }
    model.to_string()
}

impl<F: Real> ExportedNetwork<'_, F> {
    /// Each layer's name: its keyword and its place among the layers of that keyword, from 1
    /// (`conv1`, `conv2`, `fc1`, `softmax1`), as `nndl tune` names a layer's numbers.
    pub fn names(&self) -> Vec<String> {
        let mut names = Vec::with_capacity(self.layers.len());
        for (l, layer) in self.layers.iter().enumerate() {
            let n = 1 + self.layers[..l]
                .iter()
                .filter(|other| other.keyword == layer.keyword)
                .count();
            names.push(format!("{}{n}", layer.keyword));
        }
        names
    }

    /// The values one example has: C·H·W.
    pub fn inputs(&self) -> usize {
        self.input.iter().product()
    }

    /// The classes: the last layer's neurons.
    pub fn classes(&self) -> usize {
        self.layers.last().map_or(0, |l| l.biases.len())
    }
}
