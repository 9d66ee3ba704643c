//! `nndl predict`'s input: a PNG decoded to grey levels and prepared as an MNIST digit
//! (polarity, bounding box, scaling, centring).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nndl::data::image::{decode_grey, mnist_input};

fuzz_target!(|data: &[u8]| {
    if let Ok(grey) = decode_grey(std::path::Path::new("fuzz.png"), data) {
        let _ = mnist_input(grey);
    }
});
