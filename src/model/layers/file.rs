//! The model file of a chapter-6 network. `network3.py` saves nothing, so the layout is
//! nndl's own, in the spirit of `network2.py`'s: one JSON object, the layer list in order,
//! each layer's weights as nested lists the way NumPy's `tolist()` writes an array:
//!
//! ```text
//! {"input": [1, 28, 28],                       (channels, height, width) of an image
//!  "cost": "log-likelihood",
//!  "layers": [
//!    {"kind": "conv-pool", "filters": 20, "filter": 5, "pool": 2, "activation": "relu",
//!     "weights": (filters, channels, filter, filter), "biases": (filters,)},
//!    {"kind": "fully-connected", "neurons": 100, "activation": "relu", "dropout": 0.5,
//!     "weights": (neurons, n_in), "biases": (neurons,)},
//!    {"kind": "softmax", "neurons": 10, "dropout": 0.5,
//!     "weights": (neurons, n_in), "biases": (neurons,)}],
//!  "config": {...}}                            the training configuration, optional
//! ```
//!
//! A fully-connected layer's weights are `(n_out, n_in)` as in `network2.py` (the transpose of
//! `network3.py`'s `w`); a layer after a convolution reads its input in (channel, y, x) order.
//! Numbers are written in the shortest form that reads back to the same `f64`. Loading checks
//! the layer kinds, that the list can be built on the input ([`super::spec::check`]), every
//! shape, and that every number is finite.

use std::path::Path;

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::model::activation::Activation;
use crate::model::write::{write_atomically, ModelError};
use crate::real::Real;

use super::spec::{self, LayerSpec};
use super::{ConvPool, Dense, Layer, LayerNetwork};

/// The file's layout.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LayersFile {
    input: [usize; 3],
    cost: String,
    layers: Vec<LayerFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    config: Option<TrainConfig>,
}

/// One layer's entry.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum LayerFile {
    ConvPool {
        filters: usize,
        filter: usize,
        pool: usize,
        activation: Activation,
        weights: Vec<Vec<Vec<Vec<f64>>>>,
        biases: Vec<f64>,
    },
    FullyConnected {
        neurons: usize,
        activation: Activation,
        dropout: f64,
        weights: Vec<Vec<f64>>,
        biases: Vec<f64>,
    },
    Softmax {
        neurons: usize,
        dropout: f64,
        weights: Vec<Vec<f64>>,
        biases: Vec<f64>,
    },
}

/// The only cost these networks train on.
const COST: &str = "log-likelihood";

fn rows<F: Real>(w: &Array2<F>) -> Vec<Vec<f64>> {
    w.rows()
        .into_iter()
        .map(|r| r.iter().map(|v| v.as_f64()).collect())
        .collect()
}

fn values<F: Real>(b: &Array1<F>) -> Vec<f64> {
    b.iter().map(|v| v.as_f64()).collect()
}

/// The file's content for `net`, with the configuration it was trained with, if given.
pub(crate) fn to_file<F: Real>(net: &LayerNetwork<F>, config: Option<&TrainConfig>) -> LayersFile {
    let layers = net
        .layers
        .iter()
        .map(|layer| match layer {
            Layer::ConvPool(conv) => {
                let k = conv.filter;
                let weights = conv
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
                LayerFile::ConvPool {
                    filters: conv.filters,
                    filter: k,
                    pool: conv.pool,
                    activation: conv.activation,
                    weights,
                    biases: values(&conv.biases),
                }
            }
            Layer::FullyConnected { activation, dense } => LayerFile::FullyConnected {
                neurons: dense.weights.nrows(),
                activation: *activation,
                dropout: dense.dropout,
                weights: rows(&dense.weights),
                biases: values(&dense.biases),
            },
            Layer::Softmax(dense) => LayerFile::Softmax {
                neurons: dense.weights.nrows(),
                dropout: dense.dropout,
                weights: rows(&dense.weights),
                biases: values(&dense.biases),
            },
        })
        .collect();
    LayersFile {
        input: net.input,
        cost: COST.to_string(),
        layers,
        config: config.cloned(),
    }
}

/// Writes `net` to `path` atomically, with the configuration it was trained with, if given.
pub fn save<F: Real>(
    net: &LayerNetwork<F>,
    config: Option<&TrainConfig>,
    path: &Path,
) -> Result<(), ModelError> {
    let file = to_file(net, config);
    write_atomically(path, |out| {
        serde_json::to_writer(out, &file).map_err(Into::into)
    })
    .map_err(|source| ModelError::Write {
        path: path.to_path_buf(),
        source,
    })
}

impl LayerFile {
    /// The list item this entry describes.
    fn spec(&self) -> LayerSpec {
        match *self {
            LayerFile::ConvPool {
                filters,
                filter,
                pool,
                activation,
                ..
            } => LayerSpec::ConvPool {
                filters,
                filter,
                pool,
                activation,
            },
            LayerFile::FullyConnected {
                neurons,
                activation,
                dropout,
                ..
            } => LayerSpec::FullyConnected {
                neurons,
                activation,
                dropout,
            },
            LayerFile::Softmax { dropout, .. } => LayerSpec::Softmax { dropout },
        }
    }
}

/// Builds the network a file describes, checking it (the message says what is wrong).
pub(crate) fn from_file<F: Real>(
    file: LayersFile,
) -> Result<(LayerNetwork<F>, Option<TrainConfig>), String> {
    if file.cost != COST {
        return Err(format!(
            "unknown cost {:?} (these networks train on {COST:?})",
            file.cost
        ));
    }
    let classes = match file.layers.last() {
        Some(LayerFile::Softmax { neurons, .. }) => *neurons,
        _ => return Err("the last layer must be a softmax layer".to_string()),
    };
    let specs: Vec<LayerSpec> = file.layers.iter().map(LayerFile::spec).collect();
    let shapes = spec::check(&specs, file.input, classes).map_err(|e| e.to_string())?;
    let mut layers = Vec::with_capacity(specs.len());
    for (i, (entry, &input)) in file.layers.into_iter().zip(&shapes).enumerate() {
        let layer = i + 1;
        layers.push(match entry {
            LayerFile::ConvPool {
                filters,
                filter,
                pool,
                activation,
                weights,
                biases,
            } => {
                let c = input[0];
                let ok = weights.len() == filters
                    && weights.iter().all(|f| {
                        f.len() == c
                            && f.iter().all(|ch| {
                                ch.len() == filter && ch.iter().all(|r| r.len() == filter)
                            })
                    });
                if !ok {
                    return Err(format!(
                        "layer {layer}: weights is not {filters}×{c}×{filter}×{filter} \
                         (filters, channels, height, width)"
                    ));
                }
                let flat = weights.into_iter().flatten().flatten().flatten().collect();
                let (weights, biases) =
                    parameters(layer, (filters, c * filter * filter), flat, biases)?;
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
            LayerFile::FullyConnected {
                neurons,
                activation,
                dropout,
                weights,
                biases,
            } => Layer::FullyConnected {
                activation,
                dense: dense(layer, input, neurons, dropout, weights, biases)?,
            },
            LayerFile::Softmax {
                neurons,
                dropout,
                weights,
                biases,
            } => Layer::Softmax(dense(layer, input, neurons, dropout, weights, biases)?),
        });
    }
    Ok((
        LayerNetwork {
            input: file.input,
            layers,
        },
        file.config,
    ))
}

/// A fully-connected or softmax layer's entry, its weights a list of `neurons` rows.
fn dense<F: Real>(
    layer: usize,
    input: super::spec::Shape,
    neurons: usize,
    dropout: f64,
    weights: Vec<Vec<f64>>,
    biases: Vec<f64>,
) -> Result<Dense<F>, String> {
    let n_in: usize = input.iter().product();
    if weights.len() != neurons || weights.iter().any(|r| r.len() != n_in) {
        return Err(format!("layer {layer}: weights is not {neurons}×{n_in}"));
    }
    let flat = weights.into_iter().flatten().collect();
    let (weights, biases) = parameters(layer, (neurons, n_in), flat, biases)?;
    Ok(Dense {
        input,
        dropout,
        weights,
        biases,
    })
}

/// A layer's weights, `shape` and given flat, and its biases (one per row), checked finite.
fn parameters<F: Real>(
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
