//! The slow, obvious version of [`super::pass`]: one example at a time, every sum a nested
//! loop written as the equations read — the convolution as Σ_c Σ_i Σ_j w·a, the pooling as a
//! scan of each block, BP1–BP4 for every layer. Nothing here is fast; it is what the tests
//! hold the fast passes to (gradients, outputs), and what the finite-difference checks
//! differentiate. Each kind writes its own ([`super::kind::Kind::reference_forward`],
//! [`super::kind::Kind::reference_backward`]); this module runs them through a network.
//!
//! Activations are flat vectors per example: a convolution's output in (filter, y, x) order,
//! as [`super::dense::gather`] reads it. Dropout masks are given, not drawn: `masks[l]` is
//! layer l's 0/1 mask over its inputs for this example, or `None` to use every input.

use ndarray::ArrayD;

use crate::data::Dataset;
use crate::real::Real;

use super::LayerNetwork;

/// The gradient of every parameter of every layer, summed over examples: `nabla[l][p]` for
/// parameter p of layer l, in the order of [`super::Layer::parameters`] (∇W, then ∇b).
#[derive(Clone, Debug, PartialEq)]
pub struct Gradient<F: Real> {
    pub nabla: Vec<Vec<ArrayD<F>>>,
}

/// What the forward pass keeps of one layer for backprop.
#[derive(Clone, Debug)]
pub struct Trace<F> {
    /// The layer's input (masked, for a dense layer in training).
    pub input: Vec<F>,
    /// The layer's output.
    pub out: Vec<F>,
    /// Convolution: for each pooled output, the flat (filter, y, x) index of its maximum in the
    /// pre-pooling map.
    pub argmax: Vec<usize>,
}

/// Runs one example `x` through `net`. With `masks` (one per layer) this is the training
/// pass; without, the evaluation pass (every input used, dense layers' weighted inputs
/// scaled by 1 − p).
fn forward<F: Real>(
    net: &LayerNetwork<F>,
    x: &[F],
    masks: Option<&[Option<Vec<F>>]>,
) -> Vec<Trace<F>> {
    let mut traces: Vec<Trace<F>> = Vec::with_capacity(net.layers.len());
    let mut a = x.to_vec();
    for (l, layer) in net.layers.iter().enumerate() {
        let mut trace = Trace {
            input: a,
            out: Vec::new(),
            argmax: Vec::new(),
        };
        let mask = masks.and_then(|m| m[l].as_deref());
        layer.reference_forward(&mut trace, masks.is_some(), mask);
        a = trace.out.clone();
        traces.push(trace);
    }
    traces
}

/// The network's output for one example, evaluated (no dropout).
pub fn feedforward<F: Real>(net: &LayerNetwork<F>, x: &[F]) -> Vec<F> {
    forward(net, x, None)
        .pop()
        .map(|t| t.out)
        .unwrap_or_default()
}

/// The gradient of −ln a_y for one example `x` of class `label`, with the dropout `masks`
/// (one per layer), by BP1–BP4 one layer at a time.
pub fn backprop<F: Real>(
    net: &LayerNetwork<F>,
    x: &[F],
    label: u8,
    masks: &[Option<Vec<F>>],
) -> Gradient<F> {
    let traces = forward(net, x, Some(masks));
    let mut nabla: Vec<Vec<ArrayD<F>>> = net
        .layers
        .iter()
        .map(|l| {
            let parameters = l.parameters();
            parameters
                .iter()
                .map(|p| ArrayD::zeros(p.values.raw_dim()))
                .collect()
        })
        .collect();
    // BP1 for softmax and log-likelihood: δᴸ = a − y, eq. (84).
    let mut d_out: Vec<F> = traces.last().map(|t| t.out.clone()).unwrap_or_default();
    d_out[usize::from(label)] -= F::one();
    for (l, layer) in net.layers.iter().enumerate().rev() {
        let mask = masks[l].as_deref();
        d_out = layer.reference_backward(&traces[l], &d_out, mask, &mut nabla[l]);
    }
    Gradient { nabla }
}

/// Example `k` of `data` as a flat vector.
pub fn example<F: Real>(data: &Dataset<F>, k: usize) -> Vec<F> {
    data.images().row(k).to_vec()
}

/// The gradient of the mini-batch `batch` of `data`, summed, with `masks[e]` for its e-th
/// example.
pub fn gradient<F: Real>(
    net: &LayerNetwork<F>,
    data: &Dataset<F>,
    batch: &[usize],
    masks: &[Vec<Option<Vec<F>>>],
) -> Gradient<F> {
    let mut total: Option<Gradient<F>> = None;
    for (e, &k) in batch.iter().enumerate() {
        let g = backprop(net, &example(data, k), data.labels()[k], &masks[e]);
        total = Some(match total {
            None => g,
            Some(mut t) => {
                for (a, b) in t.nabla.iter_mut().flatten().zip(g.nabla.iter().flatten()) {
                    *a += b;
                }
                t
            }
        });
    }
    total.expect("a mini-batch has examples")
}

/// The training cost of the mini-batch `batch` with `masks`: the mean of −ln a_y plus
/// `network3.py`'s ½λ‖W‖²/B for `batches` = B — the function [`gradient`] (divided by m,
/// plus λW/B) is the derivative of.
pub fn cost<F: Real>(
    net: &LayerNetwork<F>,
    data: &Dataset<F>,
    batch: &[usize],
    masks: &[Vec<Option<Vec<F>>>],
    lambda: f64,
    batches: usize,
) -> f64 {
    let mut total = 0.0;
    for (e, &k) in batch.iter().enumerate() {
        let traces = forward(net, &example(data, k), Some(&masks[e]));
        let out = &traces.last().expect("a network has layers").out;
        total -= out[usize::from(data.labels()[k])].as_f64().ln();
    }
    total / batch.len() as f64 + 0.5 * lambda * net.weights_squared() / batches as f64
}
