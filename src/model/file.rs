//! Saving and loading a network in the JSON layout of `network2.py`'s `save()` and `load()`:
//! `{"sizes": [...], "weights": [...], "biases": [...], "cost": "CrossEntropyCost"}`, with
//! every weight matrix a list of rows `(n_out, n_in)` and every bias vector a list of
//! one-element rows `(n_out, 1)`, as NumPy's `tolist()` writes them. The book's Python loads
//! a network saved here and vice versa.
//!
//! Three optional fields say what `network2.py` cannot: `"activation"` of the hidden layers
//! (`"sigmoid"`, `"tanh"` or `"relu"`; sigmoid when absent), `"output"` (`"sigmoid"` or
//! `"softmax"`, which must agree with the cost) and `"config"`, the [`TrainConfig`] the network
//! was trained with. `network2.py`'s `load()` reads only the four fields it knows, so it still
//! loads sigmoid networks saved here; a softmax network's cost, `"LogLikelihoodCost"`, is not
//! a class of `network2.py`'s.
//!
//! JSON numbers are written in the shortest form that reads back to the same `f64`, so a
//! save/load round trip is exact. A save goes to a temporary file that is then renamed over
//! the target, so an interrupted save never leaves a half-written model. Loading checks every
//! shape against `sizes` and that every number is finite.

use std::path::Path;

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::data::file::{read_bytes, read_text};
use crate::model::activation::{Activation, Output};
use crate::model::cost::Cost;
use crate::model::export::safetensors;
use crate::model::layers::LayerNetwork;
use crate::model::network::Network;
use crate::real::Real;

/// The largest model file read (1 GiB): several times the JSON of the largest network the book
/// trains; a bigger one is refused before it is read.
pub const MAX_MODEL_BYTES: u64 = 1 << 30;

pub use super::write::ModelError;
use crate::output::write_atomically;

/// The file's layout: the first four fields as `network2.py` writes them, then ours.
#[derive(Serialize, Deserialize)]
struct ModelFile {
    sizes: Vec<usize>,
    weights: Vec<Vec<Vec<f64>>>,
    biases: Vec<Vec<Vec<f64>>>,
    cost: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    activation: Option<Activation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    output: Option<Output>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    config: Option<TrainConfig>,
}

/// The costs by the class names `network2.py` stores (the last is ours).
const COST_NAMES: [(Cost, &str); 3] = [
    (Cost::Quadratic, "QuadraticCost"),
    (Cost::CrossEntropy, "CrossEntropyCost"),
    (Cost::LogLikelihood, "LogLikelihoodCost"),
];

/// The class name stored for a cost.
fn cost_name(cost: Cost) -> &'static str {
    COST_NAMES
        .iter()
        .find(|(c, _)| *c == cost)
        .map_or("", |(_, name)| name)
}

/// Writes `net` to `path` (through a temporary file in the same directory), with the
/// configuration it was trained with, if given.
pub fn save<F: Real>(
    net: &Network<F>,
    config: Option<&TrainConfig>,
    path: &Path,
) -> Result<(), ModelError> {
    let file = ModelFile {
        sizes: net.sizes.clone(),
        weights: net
            .weights
            .iter()
            .map(|w| {
                w.rows()
                    .into_iter()
                    .map(|r| r.iter().map(|v| v.as_f64()).collect())
                    .collect()
            })
            .collect(),
        biases: net
            .biases
            .iter()
            .map(|b| b.iter().map(|&v| vec![v.as_f64()]).collect())
            .collect(),
        cost: cost_name(net.cost).to_string(),
        activation: Some(net.activation),
        output: Some(net.output()),
        config: config.cloned(),
    };
    write_atomically(path, |out| {
        serde_json::to_writer(out, &file).map_err(Into::into)
    })
    .map_err(|source| ModelError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// A network that can be written to a model file, with the configuration it was trained with.
pub trait SaveModel {
    fn save(&self, config: Option<&TrainConfig>, path: &Path) -> Result<(), ModelError>;
}

impl<F: Real> SaveModel for Network<F> {
    fn save(&self, config: Option<&TrainConfig>, path: &Path) -> Result<(), ModelError> {
        save(self, config, path)
    }
}

impl<F: Real> SaveModel for LayerNetwork<F> {
    fn save(&self, config: Option<&TrainConfig>, path: &Path) -> Result<(), ModelError> {
        crate::model::layers::file::save(self, config, path)
    }
}

/// A saved network of either kind: `network2.py`'s layout or a chapter-6 layer list
/// ([`crate::model::layers::file`]), told apart by the latter's `"layers"` field.
#[derive(Clone, Debug)]
pub enum SavedModel<F: Real = f64> {
    FullyConnected(Network<F>),
    Layers(LayerNetwork<F>),
}

/// Reads a model file of either kind, with its training configuration if it has one; also a
/// safetensors export of one ([`safetensors::model_file`]).
pub fn load_model<F: Real>(
    path: &Path,
) -> Result<(SavedModel<F>, Option<TrainConfig>), ModelError> {
    parse_model(path, &read_model_text(path)?)
}

/// The text of the model file at `path` — its own, or, for a safetensors export, the model file
/// rebuilt from it ([`safetensors::model_file`]).
pub fn read_model_text(path: &Path) -> Result<String, ModelError> {
    let bytes = read_bytes(path, MAX_MODEL_BYTES).map_err(|source| ModelError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |message: String| ModelError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    if safetensors::looks_like(&bytes) {
        safetensors::model_file(&bytes).map_err(|e| invalid(e.to_string()))
    } else {
        String::from_utf8(bytes).map_err(|_| {
            invalid("neither a model file (JSON) nor a safetensors export".to_string())
        })
    }
}

/// Reads a model file's text of either layout (`path` is only used in errors): a chapter-6
/// layer list when it has `layers`, else `network2.py`'s.
pub fn parse_model<F: Real>(
    path: &Path,
    text: &str,
) -> Result<(SavedModel<F>, Option<TrainConfig>), ModelError> {
    let layered = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .is_some_and(|v| v.get("layers").is_some());
    if !layered {
        let (net, config) = parse(path, text)?;
        return Ok((SavedModel::FullyConnected(net), config));
    }
    let file = serde_json::from_str(text)
        .map_err(|source| ModelError::json(path, "chapter-6 layer-list model file", source))?;
    let (net, config) =
        crate::model::layers::file::from_file(file).map_err(|message| ModelError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
    Ok((SavedModel::Layers(net), config))
}

/// Reads a network saved by [`save`] or by `network2.py`'s `save()`, rounding the weights to
/// `F`.
pub fn load<F: Real>(path: &Path) -> Result<Network<F>, ModelError> {
    load_with_config(path).map(|(net, _)| net)
}

/// [`load`], with the training configuration saved beside the network, if any.
pub fn load_with_config<F: Real>(
    path: &Path,
) -> Result<(Network<F>, Option<TrainConfig>), ModelError> {
    let text = read_text(path, MAX_MODEL_BYTES).map_err(|source| ModelError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Reads a model file's text (`path` is only used in errors).
pub fn parse<F: Real>(
    path: &Path,
    text: &str,
) -> Result<(Network<F>, Option<TrainConfig>), ModelError> {
    let file: ModelFile = serde_json::from_str(text).map_err(|source| {
        // Python's json.dump writes a NaN or infinite weight as a bare NaN or Infinity, which
        // is not JSON: say what it means rather than where the syntax broke.
        match non_finite_token(text) {
            Some(token) => ModelError::Invalid {
                path: path.to_path_buf(),
                message: format!(
                    "the weights are not finite: the file holds {token} (as Python's json.dump \
                     writes a weight that is not a number); the network had diverged when it \
                     was saved"
                ),
            },
            None => ModelError::json(path, "network2.py model file", source),
        }
    })?;
    let config = file.config.clone();
    let net = from_file(file).map_err(|message| ModelError::Invalid {
        path: path.to_path_buf(),
        message,
    })?;
    Ok((net, config))
}

/// The first `NaN`, `Infinity` or `-Infinity` outside a string in `text`, as Python's `json`
/// writes non-finite floats.
fn non_finite_token(text: &str) -> Option<&'static str> {
    let bytes = text.as_bytes();
    let (mut in_string, mut escaped) = (false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'N' | b'I' | b'-' => {
                for token in ["NaN", "Infinity", "-Infinity"] {
                    if bytes[i..].starts_with(token.as_bytes()) {
                        return Some(token);
                    }
                }
            }
            _ => {}
        }
    }
    None
}

fn from_file<F: Real>(file: ModelFile) -> Result<Network<F>, String> {
    let cost = COST_NAMES
        .iter()
        .find(|(_, name)| *name == file.cost)
        .map(|&(cost, _)| cost)
        .ok_or_else(|| format!("unknown cost {:?}", file.cost))?;
    if let Some(output) = file.output {
        if output != cost.output() {
            return Err(format!(
                "a {} output layer does not go with the {} cost (it needs a {} one)",
                output.name(),
                file.cost,
                cost.output().name()
            ));
        }
    }
    let sizes = file.sizes;
    crate::config::check_sizes(&sizes).map_err(|e| e.to_string())?;
    let layers = sizes.len() - 1;
    if file.weights.len() != layers || file.biases.len() != layers {
        return Err(format!(
            "sizes {sizes:?} need {layers} weight matrices and bias vectors, found {} and {}",
            file.weights.len(),
            file.biases.len()
        ));
    }
    let mut weights = Vec::with_capacity(layers);
    let mut biases = Vec::with_capacity(layers);
    for (l, (w, b)) in file.weights.into_iter().zip(file.biases).enumerate() {
        let (n_in, n_out) = (sizes[l], sizes[l + 1]);
        if w.len() != n_out || w.iter().any(|row| row.len() != n_in) {
            return Err(format!("weights[{l}] is not {n_out}×{n_in}"));
        }
        if b.len() != n_out || b.iter().any(|row| row.len() != 1) {
            return Err(format!("biases[{l}] is not {n_out}×1"));
        }
        let w = Array2::from_shape_vec((n_out, n_in), w.into_iter().flatten().collect())
            .map_err(|e| e.to_string())?;
        let b: Array1<f64> = b.into_iter().flatten().collect();
        if w.iter().chain(&b).any(|v| !v.is_finite()) {
            return Err(format!("layer {l} has a weight or bias that is not finite"));
        }
        weights.push(w.mapv(F::of));
        biases.push(b.mapv(F::of));
    }
    Ok(Network {
        sizes,
        weights,
        biases,
        activation: file.activation.unwrap_or_default(),
        cost,
    })
}
