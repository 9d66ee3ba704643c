//! A model file: network2.py's four fields, or nndl's with the activation, output layer and
//! training configuration; read in both precisions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nndl::model::file::parse;
use nndl::model::network::Network;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("fuzz.json");
    let _ = parse::<f64>(path, text).map(|(net, _): (Network<f64>, _)| net.sizes);
    let _ = parse::<f32>(path, text).map(|(net, _): (Network<f32>, _)| net.sizes);
});
