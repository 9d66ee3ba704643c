//! `mnist.pkl.gz`'s content after inflating: the pickle machine and the MNIST tuple built from
//! what it returns (shapes, element types, pixels, labels).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nndl::data::mnist::parse_mnist(std::path::Path::new("fuzz.pkl"), data);
});
