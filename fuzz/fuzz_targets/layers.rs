//! `--layers`: a chapter-6 layer list as written, read, checked against MNIST's images and
//! its memory counted; a list that reads must read back the same from its own text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nndl::config::{layers_memory_needed, Precision};
use nndl::data::{CLASSES, IMAGE_SHAPE};
use nndl::model::activation::Activation;
use nndl::model::layers::spec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(layers) = spec::parse(text, Activation::Sigmoid, 0.0) else {
        return;
    };
    let again = spec::parse(&spec::text(&layers), Activation::Relu, 0.5);
    assert_eq!(again.as_deref(), Ok(&layers[..]), "{text:?} does not read back");
    if spec::check(&layers, IMAGE_SHAPE, CLASSES).is_ok() {
        for precision in [Precision::F32, Precision::F64] {
            let _ = layers_memory_needed(&layers, 10, 2, precision);
        }
    }
});
