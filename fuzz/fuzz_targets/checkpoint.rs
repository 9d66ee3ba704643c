//! A training checkpoint, as a study store keeps one per running trial: restored as a
//! fully-connected or a chapter-6 network's run over 100 training examples.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nndl::model::layers::LayerNetwork;
use nndl::model::network::Network;
use nndl::train::Training;

fuzz_target!(|data: &[u8]| {
    let _ = Training::<Network<f64>>::restore(data, 100);
    let _ = Training::<Network<f32>>::restore(data, 100);
    let _ = Training::<LayerNetwork<f64>>::restore(data, 100);
});
