//! A model file of either layout: network2.py's four fields (or nndl's with the activation,
//! output layer and training configuration), or a chapter-6 layer list; read in both
//! precisions; and a safetensors export, rebuilt into a model file and read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nndl::model::file::{parse_model, SavedModel};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = nndl::model::export::safetensors::model_file(data) {
        let _ = parse_model::<f64>(std::path::Path::new("fuzz.safetensors"), &text);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("fuzz.json");
    if let Ok((SavedModel::Layers(net), _)) = parse_model::<f64>(path, text) {
        // A network that loads is one its own list describes.
        let _ = net.specs();
    }
    let _ = parse_model::<f32>(path, text);
});
