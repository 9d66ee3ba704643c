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
//! Each kind's module reads and writes its own entry ([`super::kind::Kind::to_file`]). Numbers
//! are written in the shortest form that reads back to the same `f64`. Loading checks the
//! layer kinds, that the list can be built on the input ([`super::spec::check`]), every shape,
//! and that every number is finite.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::model::write::ModelError;
use crate::output::write_atomically;
use crate::real::Real;

use super::spec::{self, LayerSpec};
use super::{Layer, LayerFile, LayerNetwork};

/// The file's layout.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LayersFile {
    input: [usize; 3],
    cost: String,
    /// Each entry is its kind's ([`super::kind::Kind::File`]), tagged with `"kind"`.
    layers: Vec<LayerFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    config: Option<TrainConfig>,
}

/// The only cost these networks train on.
const COST: &str = "log-likelihood";

/// The file's content for `net`, with the configuration it was trained with, if given.
pub(crate) fn to_file<F: Real>(net: &LayerNetwork<F>, config: Option<&TrainConfig>) -> LayersFile {
    LayersFile {
        input: net.input,
        cost: COST.to_string(),
        layers: net.layers.iter().map(Layer::to_file).collect(),
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
    let Some(classes) = file.layers.last().and_then(LayerFile::classes) else {
        return Err("the last layer must be a softmax layer".to_string());
    };
    let specs: Vec<LayerSpec> = file.layers.iter().map(LayerFile::spec).collect();
    let shapes = spec::check(&specs, file.input, classes).map_err(|e| e.to_string())?;
    let mut layers = Vec::with_capacity(specs.len());
    for (i, (entry, &input)) in file.layers.into_iter().zip(&shapes).enumerate() {
        layers.push(Layer::from_file(entry, input, i + 1)?);
    }
    Ok((
        LayerNetwork {
            input: file.input,
            layers,
        },
        file.config,
    ))
}
