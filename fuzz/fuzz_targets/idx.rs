//! An IDX file, read both as an images file and as a labels file (its header says which it
//! is; the other reading must refuse it cleanly).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nndl::data::idx::{parse_images, parse_labels};

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz-idx-ubyte");
    let _ = parse_images(path, &mut &data[..], data.len() as u64);
    let _ = parse_labels(path, &mut &data[..], data.len() as u64);
});
