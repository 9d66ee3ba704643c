//! `nndl export`: a saved network — fully connected (`network2.py`'s JSON) or chapter 6's
//! layers — written as an ONNX model or a safetensors file ([`crate::model::export`]), for
//! onnxruntime, Netron, PyTorch and the other tools that read them.
//!
//! Everything is checked before anything is written: the model is read and built (a missing,
//! unreadable or corrupt file is refused), the output can be made and is not the model itself
//! nor a directory. The export is written atomically ([`crate::output::write_atomically`]).

use std::io::Write;
use std::path::Path;

use crate::config::Precision;
use crate::model::export::saved::description;
use crate::model::export::{onnx, safetensors};
use crate::model::file;
use crate::output::write_atomically;
use crate::real::Real;
use crate::report::console::say;

use super::{check_output, expand::same_file, RunError};

/// The formats `nndl export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// An ONNX model (opset 13, f32): the network's forward pass as a graph.
    Onnx,
    /// The weights and biases, with the network's description as metadata.
    Safetensors,
}

/// Writes the network saved at `model` to `out` in `format`; the safetensors file holds the
/// values in the precision the network was trained in (its file's configuration says; f64
/// when it does not).
pub fn export(model: &Path, format: ExportFormat, out: &Path) -> Result<(), RunError> {
    let text = file::read_model_text(model).map_err(RunError::ExportInput)?;
    let (_, config) = file::parse_model::<f64>(model, &text).map_err(RunError::ExportInput)?;
    check_output(out)?;
    if same_file(out, model) {
        return Err(RunError::Output {
            path: out.to_path_buf(),
            reason: "it is the model (--model); export to another file".into(),
        });
    }
    let precision = config.map_or(Precision::F64, |c| c.network.precision);
    let bytes = match precision {
        Precision::F32 => encode::<f32>(model, &text, format)?,
        Precision::F64 => encode::<f64>(model, &text, format)?,
    };
    write_atomically(out, |w| w.write_all(&bytes)).map_err(|source| RunError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let what = match format {
        ExportFormat::Onnx => format!(
            "ONNX, opset {}, IR version {}, f32",
            onnx::OPSET,
            onnx::IR_VERSION
        ),
        ExportFormat::Safetensors => format!("safetensors, {}", precision.name()),
    };
    say(&format!("{}: {what}, {} bytes", out.display(), bytes.len()));
    Ok(())
}

/// The export's bytes, from the model file's `text` read with values of type `F`.
fn encode<F: Real>(model: &Path, text: &str, format: ExportFormat) -> Result<Vec<u8>, RunError> {
    let (net, _) = file::parse_model::<F>(model, text).map_err(RunError::ExportInput)?;
    let value = serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
    let description = description(value);
    let exported = net.export();
    match format {
        ExportFormat::Onnx => Ok(onnx::to_onnx(&exported, &description)),
        ExportFormat::Safetensors => {
            safetensors::to_safetensors(&exported, &description).map_err(|e| {
                RunError::ExportInput(file::ModelError::Invalid {
                    path: model.to_path_buf(),
                    message: e.to_string(),
                })
            })
        }
    }
}
