//! The slow, obvious version of [`super::pass`]: one example at a time, every sum a nested
//! loop written as the equations read — the convolution as Σ_c Σ_i Σ_j w·a, the pooling as a
//! scan of each block, BP1–BP4 for every layer. Nothing here is fast; it is what the tests
//! hold the fast passes to (gradients, outputs), and what the finite-difference checks
//! differentiate.
//!
//! Activations are flat vectors per example: a convolution's output in (filter, y, x) order,
//! as [`super::dense::gather`] reads it. Dropout masks are given, not drawn: `masks[l]` is
//! layer l's 0/1 mask over its inputs for this example, or `None` to use every input.

use ndarray::{Array1, Array2, ArrayViewMut1};

use crate::data::Dataset;
use crate::model::activation::Output;
use crate::real::Real;

use super::{FullyConnected, Layer, LayerNetwork, Softmax};

/// ∇W and ∇b of every layer, summed over examples.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradient<F: Real> {
    pub nabla_w: Vec<Array2<F>>,
    pub nabla_b: Vec<Array1<F>>,
}

/// What the forward pass keeps of one layer for backprop.
struct Trace<F> {
    /// The layer's input (masked, for a dense layer in training).
    input: Vec<F>,
    /// The layer's output.
    out: Vec<F>,
    /// Convolution: for each pooled output, the flat (filter, y, x) index of its maximum in the
    /// pre-pooling map.
    argmax: Vec<usize>,
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
            input: a.clone(),
            out: Vec::new(),
            argmax: Vec::new(),
        };
        match layer {
            Layer::ConvPool(conv) => {
                let [c_in, h, w] = conv.input;
                let k = conv.filter;
                let (ho, wo) = conv.map();
                let [_, hp, wp] = conv.output();
                let p = conv.pool;
                for f in 0..conv.filters {
                    // z[y][x] = Σ_c Σ_i Σ_j w[f, c, i, j] · a[c, y + i, x + j]
                    let mut z = vec![F::zero(); ho * wo];
                    for y in 0..ho {
                        for xx in 0..wo {
                            let mut sum = F::zero();
                            for c in 0..c_in {
                                for i in 0..k {
                                    for j in 0..k {
                                        sum += conv.weights[[f, c * k * k + i * k + j]]
                                            * a[c * h * w + (y + i) * w + xx + j];
                                    }
                                }
                            }
                            z[y * wo + xx] = sum;
                        }
                    }
                    for yp in 0..hp {
                        for xp in 0..wp {
                            let mut best = (F::neg_infinity(), 0);
                            for i in 0..p {
                                for j in 0..p {
                                    let at = (yp * p + i) * wo + xp * p + j;
                                    if z[at] > best.0 || (i == 0 && j == 0) {
                                        best = (z[at], at);
                                    }
                                }
                            }
                            trace
                                .out
                                .push(conv.activation.apply(best.0 + conv.biases[f]));
                            trace.argmax.push(f * ho * wo + best.1);
                        }
                    }
                }
            }
            Layer::FullyConnected(FullyConnected { dense, .. })
            | Layer::Softmax(Softmax { dense }) => {
                let scale = match masks {
                    Some(masks) => {
                        if let Some(mask) = &masks[l] {
                            for (v, &m) in trace.input.iter_mut().zip(mask) {
                                *v *= m;
                            }
                        }
                        F::one()
                    }
                    None => F::of(1.0 - dense.dropout),
                };
                let z: Vec<F> = (0..dense.weights.nrows())
                    .map(|j| {
                        let mut sum = F::zero();
                        for (i, &v) in trace.input.iter().enumerate() {
                            sum += dense.weights[[j, i]] * v;
                        }
                        scale * sum + dense.biases[j]
                    })
                    .collect();
                trace.out = match layer {
                    Layer::FullyConnected(FullyConnected { activation, .. }) => {
                        z.iter().map(|&z| activation.apply(z)).collect()
                    }
                    _ => {
                        let mut a = z;
                        Output::Softmax.apply(ArrayViewMut1::from(&mut a[..]));
                        a
                    }
                };
            }
        }
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

/// ∇W and ∇b of −ln a_y for one example `x` of class `label`, with the dropout `masks`
/// (one per layer), by BP1–BP4 one layer at a time.
pub fn backprop<F: Real>(
    net: &LayerNetwork<F>,
    x: &[F],
    label: u8,
    masks: &[Option<Vec<F>>],
) -> Gradient<F> {
    let traces = forward(net, x, Some(masks));
    let mut nabla_w: Vec<Array2<F>> = net
        .layers
        .iter()
        .map(|l| Array2::zeros(weight_shape(l)))
        .collect();
    let mut nabla_b: Vec<Array1<F>> = net
        .layers
        .iter()
        .map(|l| Array1::zeros(l.output()[0]))
        .collect();
    // BP1 for softmax and log-likelihood: δᴸ = a − y, eq. (84).
    let mut d_out: Vec<F> = traces.last().map(|t| t.out.clone()).unwrap_or_default();
    d_out[usize::from(label)] -= F::one();
    for (l, layer) in net.layers.iter().enumerate().rev() {
        let trace = &traces[l];
        let mut d_in = vec![F::zero(); trace.input.len()];
        match layer {
            Layer::ConvPool(conv) => {
                let [c_in, h, w] = conv.input;
                let k = conv.filter;
                let (ho, wo) = conv.map();
                let per_filter = d_out.len() / conv.filters;
                for (q, (&d, &a)) in d_out.iter().zip(&trace.out).enumerate() {
                    let f = q / per_filter;
                    let delta = d * conv.activation.prime_from_output(a);
                    nabla_b[l][f] += delta;
                    // Only the block's maximum passed its z on: δ reaches that z alone.
                    let at = trace.argmax[q] - f * ho * wo;
                    let (y, xx) = (at / wo, at % wo);
                    for c in 0..c_in {
                        for i in 0..k {
                            for j in 0..k {
                                let col = c * k * k + i * k + j;
                                let input = c * h * w + (y + i) * w + xx + j;
                                nabla_w[l][[f, col]] += delta * trace.input[input];
                                d_in[input] += delta * conv.weights[[f, col]];
                            }
                        }
                    }
                }
            }
            Layer::FullyConnected(FullyConnected { dense, .. })
            | Layer::Softmax(Softmax { dense }) => {
                let delta: Vec<F> = match layer {
                    Layer::FullyConnected(FullyConnected { activation, .. }) => d_out
                        .iter()
                        .zip(&trace.out)
                        .map(|(&d, &a)| d * activation.prime_from_output(a))
                        .collect(),
                    _ => d_out.clone(),
                };
                for (j, &dj) in delta.iter().enumerate() {
                    nabla_b[l][j] += dj;
                    for (i, &v) in trace.input.iter().enumerate() {
                        nabla_w[l][[j, i]] += dj * v;
                        d_in[i] += dj * dense.weights[[j, i]];
                    }
                }
                if let Some(mask) = &masks[l] {
                    for (d, &m) in d_in.iter_mut().zip(mask) {
                        *d *= m;
                    }
                }
            }
        }
        d_out = d_in;
    }
    Gradient { nabla_w, nabla_b }
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
                for (a, b) in t.nabla_w.iter_mut().zip(&g.nabla_w) {
                    *a += b;
                }
                for (a, b) in t.nabla_b.iter_mut().zip(&g.nabla_b) {
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

/// `(n_out, n_in)` of a dense layer's weights, `(F, C·K·K)` of a convolution's.
fn weight_shape<F: Real>(layer: &Layer<F>) -> (usize, usize) {
    match layer {
        Layer::ConvPool(conv) => conv.weights.dim(),
        Layer::FullyConnected(FullyConnected { dense, .. }) | Layer::Softmax(Softmax { dense }) => {
            dense.weights.dim()
        }
    }
}
