//! A network as a safetensors file (`nndl export --format safetensors`), written with Hugging
//! Face's `safetensors` crate: one tensor per weight and bias, named by the layer's place in
//! the list and its kind — `layers.0.conv.weight` `(filters, channels, K, K)`,
//! `layers.0.conv.bias` `(filters,)`, `layers.1.fc.weight` `(n_out, n_in)`, … (PyTorch's
//! `nn.Conv2d` and `nn.Linear` layouts) — in the precision the network was trained in (`F32`
//! or `F64`), and under the metadata key [`DESCRIPTION_KEY`] the model file with its weights
//! and biases left out ([`super::saved::description`]): the layer list, activations, dropout and
//! training configuration. The file alone rebuilds the model file ([`model_file`]), which is
//! how `nndl eval` and the others read a `.safetensors` export.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde_json::Value;

use crate::real::Real;

use super::layer::ExportedNetwork;

/// The metadata key holding the model file's description of the network.
pub const DESCRIPTION_KEY: &str = "nndl.model";

/// Why a safetensors file cannot be written or read back as a model.
#[derive(Debug, thiserror::Error)]
pub enum SafetensorsError {
    #[error("not a safetensors file: {0}")]
    Format(#[from] safetensors::SafeTensorError),
    #[error("a safetensors file nndl did not write: it has no {DESCRIPTION_KEY:?} metadata")]
    NoDescription,
    #[error("its {DESCRIPTION_KEY:?} metadata is not a model file's description: {0}")]
    Description(String),
    #[error("it has no tensor {0:?}")]
    Missing(String),
    #[error("tensor {name:?} has shape {shape:?}; a layer's weights or biases have 1 to 4 dimensions, none 0")]
    Shape { name: String, shape: Vec<usize> },
    #[error("tensor {name:?} is {dtype:?}; nndl writes F32 or F64")]
    Dtype { name: String, dtype: Dtype },
}

/// Each layer's tensor names, weight then bias: `layers.{l}.{keyword}.weight` and `.bias`.
pub fn tensor_names<F: Real>(net: &ExportedNetwork<'_, F>) -> Vec<[String; 2]> {
    net.layers
        .iter()
        .enumerate()
        .map(|(l, layer)| {
            let stem = format!("layers.{l}.{}", layer.keyword);
            [format!("{stem}.weight"), format!("{stem}.bias")]
        })
        .collect()
}

/// The safetensors file of `net`, its bytes, each value stored as an `F` (`F32` or `F64`), with
/// `description` under [`DESCRIPTION_KEY`].
pub fn to_safetensors<F: Real>(
    net: &ExportedNetwork<'_, F>,
    description: &str,
) -> Result<Vec<u8>, SafetensorsError> {
    let (dtype, bytes): (Dtype, fn(f64) -> Vec<u8>) = if std::mem::size_of::<F>() == 4 {
        (Dtype::F32, |v| (v as f32).to_le_bytes().to_vec())
    } else {
        (Dtype::F64, |v| v.to_le_bytes().to_vec())
    };
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (layer, [weight, bias]) in net.layers.iter().zip(tensor_names(net)) {
        let values = |v: &F| bytes(v.as_f64());
        data.push((
            weight,
            layer.weight_shape.clone(),
            layer.weights.iter().flat_map(values).collect(),
        ));
        data.push((
            bias,
            vec![layer.biases.len()],
            layer.biases.iter().flat_map(values).collect(),
        ));
    }
    let views = data
        .iter()
        .map(|(name, shape, bytes)| {
            Ok((name.as_str(), TensorView::new(dtype, shape.clone(), bytes)?))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let metadata = HashMap::from([(DESCRIPTION_KEY.to_string(), description.to_string())]);
    Ok(safetensors::serialize(views, Some(metadata))?)
}

/// The values of a tensor as nested JSON lists of its shape (as NumPy's `tolist()`).
fn nested(values: &[f64], shape: &[usize]) -> Value {
    match shape {
        [] => values.first().copied().map_or(Value::Null, Value::from),
        [_] => Value::from(values.to_vec()),
        [n, rest @ ..] => {
            let step = values.len() / n.max(&1);
            Value::Array(
                (0..*n)
                    .map(|i| nested(&values[i * step..(i + 1) * step], rest))
                    .collect(),
            )
        }
    }
}

/// The values of tensor `name` of `file`, in `f64`, with its shape.
fn tensor(file: &SafeTensors<'_>, name: &str) -> Result<(Vec<f64>, Vec<usize>), SafetensorsError> {
    let view = file
        .tensor(name)
        .map_err(|_| SafetensorsError::Missing(name.to_string()))?;
    // A layer's tensor has 1 to 4 dimensions, none empty; refused before `nested` walks a shape
    // such as (2⁴⁰, 0), which holds no values but 2⁴⁰ empty lists.
    if view.shape().is_empty() || view.shape().len() > 4 || view.shape().contains(&0) {
        return Err(SafetensorsError::Shape {
            name: name.to_string(),
            shape: view.shape().to_vec(),
        });
    }
    let data = view.data();
    let values = match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes(b.try_into().expect("4 bytes"))))
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect(),
        dtype => {
            return Err(SafetensorsError::Dtype {
                name: name.to_string(),
                dtype,
            })
        }
    };
    Ok((values, view.shape().to_vec()))
}

/// The model file a safetensors export was made from, rebuilt from the file alone: its
/// description with each layer's weights and biases put back from the tensors, in the layout
/// of [`crate::model::file`] (`network2.py`'s biases as one-element rows) or
/// [`crate::model::layers::file`]. The text [`crate::model::file::parse_model`] reads, which
/// checks every shape.
pub fn model_file(bytes: &[u8]) -> Result<String, SafetensorsError> {
    let file = SafeTensors::deserialize(bytes)?;
    let (_, metadata) = SafeTensors::read_metadata(bytes)?;
    let text = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(DESCRIPTION_KEY))
        .ok_or(SafetensorsError::NoDescription)?;
    let bad = |what: &str| SafetensorsError::Description(what.to_string());
    let mut model: Value =
        serde_json::from_str(text).map_err(|e| SafetensorsError::Description(e.to_string()))?;
    let object = model
        .as_object_mut()
        .ok_or_else(|| bad("not a JSON object"))?;
    // The tensors of layer l, whatever its keyword, by the prefix `layers.{l}.`.
    let names: Vec<String> = file.names().into_iter().map(str::to_string).collect();
    let layer = |l: usize, kind: &str| -> Result<(Vec<f64>, Vec<usize>), SafetensorsError> {
        let prefix = format!("layers.{l}.");
        let name = names
            .iter()
            .find(|n| n.starts_with(&prefix) && n.ends_with(&format!(".{kind}")))
            .ok_or_else(|| SafetensorsError::Missing(format!("{prefix}*.{kind}")))?;
        tensor(&file, name)
    };
    if let Some(layers) = object.get_mut("layers").and_then(Value::as_array_mut) {
        for (l, entry) in layers.iter_mut().enumerate() {
            let entry = entry
                .as_object_mut()
                .ok_or_else(|| bad("a layer is not an object"))?;
            let (w, w_shape) = layer(l, "weight")?;
            let (b, b_shape) = layer(l, "bias")?;
            entry.insert("weights".into(), nested(&w, &w_shape));
            entry.insert("biases".into(), nested(&b, &b_shape));
        }
    } else {
        let count = object
            .get("sizes")
            .and_then(Value::as_array)
            .map(|s| s.len().saturating_sub(1))
            .ok_or_else(|| bad("neither `layers` nor `sizes`"))?;
        let mut weights = Vec::with_capacity(count);
        let mut biases = Vec::with_capacity(count);
        for l in 0..count {
            let (w, w_shape) = layer(l, "weight")?;
            let (b, _) = layer(l, "bias")?;
            weights.push(nested(&w, &w_shape));
            biases.push(nested(&b, &[b.len(), 1]));
        }
        object.insert("weights".into(), Value::Array(weights));
        object.insert("biases".into(), Value::Array(biases));
    }
    Ok(model.to_string())
}

/// Whether `bytes` start like a safetensors file: an 8-byte little-endian header length below
/// 2³² (safetensors refuses headers past 100 MB), then the header's JSON object. A model file's
/// JSON text cannot: its first eight bytes, all printable, read as a length above 2 × 10¹⁸. A
/// safetensors file cut short still looks like one, and is refused by its reader, saying why.
pub fn looks_like(bytes: &[u8]) -> bool {
    bytes.len() > 8
        && bytes[8] == b'{'
        && u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) < 1 << 32
}
