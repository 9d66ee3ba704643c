//! Chapter 6's networks, `network3.py`: a list of layers — convolutional with max-pooling
//! ([`ConvPool`]), fully connected and softmax ([`Dense`]) — trained on the log-likelihood cost
//! with `network3.py`'s L2 term, whole mini-batches at a time ([`pass`]).
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
pub mod pass;
pub mod reference;
pub mod small_batch;
pub mod spec;

use ndarray::{Array1, Array2};
use rand::RngExt;
use rand_distr::StandardNormal;

use crate::data::Dataset;
use crate::model::activation::Activation;
use crate::model::network::{argmax, count_correct};
use crate::real::Real;
use crate::rng::SeededRng;

pub use conv_pool::ConvPool;
pub use dense::Dense;
use spec::{LayerSpec, Shape, SpecError};

/// One layer of a [`LayerNetwork`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(bound = "")]
pub enum Layer<F: Real = f64> {
    /// `ConvPoolLayer`.
    ConvPool(ConvPool<F>),
    /// `FullyConnectedLayer`.
    FullyConnected {
        activation: Activation,
        dense: Dense<F>,
    },
    /// `SoftmaxLayer`, the output layer.
    Softmax(Dense<F>),
}

impl<F: Real> Layer<F> {
    /// `(C, H, W)` of one example's input (`(n_in, 1, 1)` for a dense layer after another).
    pub fn input(&self) -> Shape {
        match self {
            Layer::ConvPool(conv) => conv.input,
            Layer::FullyConnected { dense, .. } | Layer::Softmax(dense) => dense.input,
        }
    }

    /// `(C, H, W)` of one example's output (`(n_out, 1, 1)` for a dense layer).
    pub fn output(&self) -> Shape {
        match self {
            Layer::ConvPool(conv) => conv.output(),
            Layer::FullyConnected { dense, .. } | Layer::Softmax(dense) => {
                [dense.weights.nrows(), 1, 1]
            }
        }
    }

    /// `(F, C·K·K)` or `(n_out, n_in)`.
    pub fn weights(&self) -> &Array2<F> {
        match self {
            Layer::ConvPool(conv) => &conv.weights,
            Layer::FullyConnected { dense, .. } | Layer::Softmax(dense) => &dense.weights,
        }
    }

    pub fn biases(&self) -> &Array1<F> {
        match self {
            Layer::ConvPool(conv) => &conv.biases,
            Layer::FullyConnected { dense, .. } | Layer::Softmax(dense) => &dense.biases,
        }
    }

    pub fn parameters_mut(&mut self) -> (&mut Array2<F>, &mut Array1<F>) {
        match self {
            Layer::ConvPool(conv) => (&mut conv.weights, &mut conv.biases),
            Layer::FullyConnected { dense, .. } | Layer::Softmax(dense) => {
                (&mut dense.weights, &mut dense.biases)
            }
        }
    }

    /// A fully-connected or softmax layer's weights and biases.
    pub fn dense(&self) -> Option<&Dense<F>> {
        match self {
            Layer::ConvPool(_) => None,
            Layer::FullyConnected { dense, .. } | Layer::Softmax(dense) => Some(dense),
        }
    }

    pub fn dense_mut(&mut self) -> Option<&mut Dense<F>> {
        match self {
            Layer::ConvPool(_) => None,
            Layer::FullyConnected { dense, .. } | Layer::Softmax(dense) => Some(dense),
        }
    }

    /// The dropout probability of a dense layer's inputs (`None` for a convolution).
    pub fn dropout(&self) -> Option<f64> {
        match self {
            Layer::ConvPool(_) => None,
            Layer::FullyConnected { dense, .. } | Layer::Softmax(dense) => Some(dense.dropout),
        }
    }

    /// The list item that builds a layer like this one.
    pub fn spec(&self) -> LayerSpec {
        match self {
            Layer::ConvPool(conv) => LayerSpec::ConvPool {
                filters: conv.filters,
                filter: conv.filter,
                pool: conv.pool,
                activation: conv.activation,
            },
            Layer::FullyConnected { activation, dense } => LayerSpec::FullyConnected {
                neurons: dense.weights.nrows(),
                activation: *activation,
                dropout: dense.dropout,
            },
            Layer::Softmax(dense) => LayerSpec::Softmax {
                dropout: dense.dropout,
            },
        }
    }

    fn cast<G: Real>(&self) -> Layer<G> {
        let w = |a: &Array2<F>| a.mapv(|v| G::of(v.as_f64()));
        let b = |a: &Array1<F>| a.mapv(|v| G::of(v.as_f64()));
        let dense = |d: &Dense<F>| Dense {
            input: d.input,
            dropout: d.dropout,
            weights: w(&d.weights),
            biases: b(&d.biases),
        };
        match self {
            Layer::ConvPool(c) => Layer::ConvPool(ConvPool {
                input: c.input,
                filters: c.filters,
                filter: c.filter,
                pool: c.pool,
                activation: c.activation,
                weights: w(&c.weights),
                biases: b(&c.biases),
            }),
            Layer::FullyConnected {
                activation,
                dense: d,
            } => Layer::FullyConnected {
                activation: *activation,
                dense: dense(d),
            },
            Layer::Softmax(d) => Layer::Softmax(dense(d)),
        }
    }
}

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
        let mut built = Vec::with_capacity(layers.len());
        for (layer, &input) in layers.iter().zip(&shapes) {
            let n_in: usize = input.iter().product();
            built.push(match *layer {
                LayerSpec::ConvPool {
                    filters,
                    filter,
                    pool,
                    activation,
                } => {
                    let n_out = (filters * filter * filter) as f64 / (pool * pool) as f64;
                    let weights =
                        Array2::from_shape_simple_fn((filters, input[0] * filter * filter), || {
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
                LayerSpec::FullyConnected {
                    neurons,
                    activation,
                    dropout,
                } => {
                    let weights = Array2::from_shape_simple_fn((neurons, n_in), || {
                        draw((neurons as f64).recip().sqrt())
                    });
                    let biases = Array1::from_shape_simple_fn(neurons, || draw(1.0));
                    Layer::FullyConnected {
                        activation,
                        dense: Dense {
                            input,
                            dropout,
                            weights,
                            biases,
                        },
                    }
                }
                LayerSpec::Softmax { dropout } => Layer::Softmax(Dense {
                    input,
                    dropout,
                    weights: Array2::zeros((classes, n_in)),
                    biases: Array1::zeros(classes),
                }),
            });
        }
        Ok(LayerNetwork {
            input,
            layers: built,
        })
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
        let mut digits = Vec::with_capacity(data.len());
        self.for_each_output(data, |out, _| {
            digits.extend(
                out.columns()
                    .into_iter()
                    .map(|col| argmax(col.iter().map(|v| v.as_f64()))),
            );
        });
        digits
    }

    /// The cost `network3.py` trains on, over `data`: the mean log-likelihood −ln a_y plus
    /// ½λ‖W‖²/B, with B = n/m the number of mini-batches of size `mini_batch` in `data` (at
    /// least 1).
    pub fn total_cost(&self, data: &Dataset<F>, lambda: f64, mini_batch: usize) -> f64 {
        let mut total = 0.0;
        self.for_each_output(data, |out, labels| {
            for (col, &label) in out.columns().into_iter().zip(labels) {
                total -= col[usize::from(label)].as_f64().ln();
            }
        });
        let batches = (data.len() / mini_batch.max(1)).max(1) as f64;
        total / data.len() as f64 + 0.5 * lambda * self.weights_squared() / batches
    }

    /// Σ w² over every layer's weights (not the biases).
    pub fn weights_squared(&self) -> f64 {
        self.layers
            .iter()
            .flat_map(|l| l.weights().iter())
            .map(|w| w.as_f64() * w.as_f64())
            .sum()
    }

    /// True when every weight and bias is a finite number.
    pub fn is_finite(&self) -> bool {
        self.layers.iter().all(|l| {
            l.weights().iter().all(|v| v.is_finite()) && l.biases().iter().all(|v| v.is_finite())
        })
    }
}
