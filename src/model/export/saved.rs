//! The export description ([`super::layer`]) of a saved network of either layout — the
//! fully-connected programs' [`Network`] or a chapter-6 [`SavedModel::Layers`] list — and
//! the model file's description of the network that the exports carry as metadata.

use crate::model::file::SavedModel;
use crate::model::network::Network;
use crate::real::Real;

use super::layer::{Exported, ExportedNetwork, Function, Product};

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
