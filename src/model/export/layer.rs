//! One layer as `nndl export` writes it: the product it computes when evaluated, its
//! parameters and the function after them ([`Exported`]), and a whole network of them
//! ([`ExportedNetwork`]) — the one description [`super::onnx`] and [`super::safetensors`] are
//! written from.

use ndarray::{ArrayView1, ArrayView2};

use crate::model::activation::{Activation, Output};
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
    pub input: [usize; 3],
    pub layers: Vec<Exported<'a, F>>,
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
