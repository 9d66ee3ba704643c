//! `mnist.pkl.gz`'s content after inflating: the pickle machine and the MNIST tuple built from
//! what it returns (shapes, element types, pixels, labels), and the same machine stopped at the
//! first array's shape (the number of training images learnt before loading).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nndl::data::mnist::parse_mnist(std::path::Path::new("fuzz.pkl"), data);
    let _ = nndl::data::pickle::first_array_shape(data);
});
