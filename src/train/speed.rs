//! Chapter 5's speed of learning of each hidden layer ("The vanishing gradient problem",
//! `fig/generate_gradient.py`): the norm of the gradient of the cost with respect to the
//! layer's biases, averaged over a fixed set of training images,
//!
//! ‖(1/n) Σₓ ∂Cₓ/∂bˡ‖ for every layer l but the output layer,
//!
//! where ∂Cₓ/∂bˡ = δˡ is BP3's error of the layer for image x. The L2 term does not enter: it
//! does not depend on the biases. [`super::Model::learning_speeds`] computes it for either kind
//! of network; the training loop measures it before the first epoch and after every epoch
//! when an [`super::Observer`] asks ([`super::Observer::learning_speed_images`]).

use ndarray::Array1;

use crate::data::Dataset;
use crate::model::layers::pass::Pass;
use crate::model::layers::LayerNetwork;
use crate::model::network::{one_hot, Network};
use crate::real::Real;

/// Images backpropagated at once for a chapter-6 network's measure (the pass's buffers grow
/// with it; the sum does not depend on it).
const LAYERS_CHUNK: usize = 100;

/// The Euclidean norm of `values`, in f64.
pub fn norm<'a, F: Real>(values: impl IntoIterator<Item = &'a F>) -> f64 {
    values
        .into_iter()
        .map(|v| {
            let v = (*v).as_f64();
            v * v
        })
        .sum::<f64>()
        .sqrt()
}

/// The speed of learning of each hidden layer of `net` over the first `n` images of `data`:
/// `get_average_gradient` of `generate_gradient.py` (the book's `backprop`, one image at a
/// time, summed and divided by n), then the norm of each hidden layer's part.
pub fn network_speeds<F: Real>(net: &Network<F>, data: &Dataset<F>, n: usize) -> Vec<f64> {
    let n = n.min(data.len());
    let hidden = net.sizes.len() - 2;
    let classes = net.sizes[hidden + 1];
    let mut nabla_b: Vec<Array1<F>> = net.sizes[1..=hidden]
        .iter()
        .map(|&s| Array1::zeros(s))
        .collect();
    let images = data.images();
    for (k, &label) in data.labels()[..n].iter().enumerate() {
        let y = one_hot::<F>(label, classes);
        let g = net.backprop(images.row(k), y.view());
        for (sum, b) in nabla_b.iter_mut().zip(&g.nabla_b) {
            *sum += b;
        }
    }
    let scale = 1.0 / n.max(1) as f64;
    nabla_b.iter().map(|b| norm(b) * scale).collect()
}

/// The same measure for a chapter-6 network: each layer but the last (a convolution's
/// biases are one per filter), from the mini-batch pass's gradients with every input kept
/// (no dropout masks drawn).
pub fn layer_speeds<F: Real>(net: &LayerNetwork<F>, data: &Dataset<F>, n: usize) -> Vec<f64> {
    let n = n.min(data.len());
    let hidden = net.layers.len() - 1;
    let mut pass = Pass::new(net, LAYERS_CHUNK.min(n.max(1)), true);
    let mut nabla_b: Vec<Vec<f64>> = vec![Vec::new(); hidden];
    let indices: Vec<usize> = (0..n).collect();
    for chunk in indices.chunks(LAYERS_CHUNK) {
        pass.gather(data, chunk);
        pass.forward(net);
        pass.backward(net);
        for (l, sum) in nabla_b.iter_mut().enumerate() {
            let parameters = net.layers[l].parameters();
            let biases = pass
                .gradients(net, l)
                .into_iter()
                .zip(&parameters)
                .filter(|(_, p)| !p.decays)
                .flat_map(|(g, _)| g.iter().map(|&v| v.as_f64()).collect::<Vec<_>>());
            if sum.is_empty() {
                sum.extend(biases);
            } else {
                for (s, b) in sum.iter_mut().zip(biases) {
                    *s += b;
                }
            }
        }
    }
    let scale = 1.0 / n.max(1) as f64;
    nabla_b.iter().map(|b| norm(b) * scale).collect()
}
