//! The network of `network.py` (ch. 1) and `network2.py` (ch. 3): layer sizes, weights, biases,
//! the hidden layers' activation and the cost it is trained on (which fixes the output layer:
//! sigmoid, or softmax for the log-likelihood), with `feedforward`, the per-example `backprop`
//! (BP1–BP4), dropout masks (ch. 3) and the gradient-descent update with L2 weight decay
//! (eq. 93).
//!
//! Shapes: `weights[l]` is `(sizes[l+1], sizes[l])`, `(n_out, n_in)`, so that a layer computes
//! z = w·a + b on a column; `biases[l]` is `(sizes[l+1],)`. A single input is a vector of
//! `sizes[0]` pixels; a batch of inputs is a matrix with **one example per column**,
//! `(n_in, m)`, as in the book's matrix-based backprop.
//!
//! The mini-batch version of backprop, where each layer is one matrix product, is in
//! [`crate::train::batch`]; both are driven by the one training loop in [`crate::train`].

use crate::rng::SeededRng;
use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis};

use crate::data::Dataset;
use crate::model::activation::{Activation, Output};
use crate::model::cost::Cost;
use crate::model::dropout;
use crate::model::init::Init;
use crate::model::Step;
use crate::real::Real;

/// Rows evaluated per matrix product when scoring a whole data set.
const EVAL_CHUNK: usize = 1000;

/// A fully connected network computing in `F` (`f64` unless chosen otherwise). Its serde form
/// is for training checkpoints; model files have their own layout ([`crate::model::file`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(bound = "")]
pub struct Network<F: Real = f64> {
    /// Neurons per layer, input first: `[784, 30, 10]`.
    pub sizes: Vec<usize>,
    /// `weights[l]`: `(sizes[l+1], sizes[l])`.
    pub weights: Vec<Array2<F>>,
    /// `biases[l]`: `(sizes[l+1],)`.
    pub biases: Vec<Array1<F>>,
    /// The activation of every hidden layer (the output layer's is the cost's).
    pub activation: Activation,
    pub cost: Cost,
}

/// ∂C/∂b and ∂C/∂w for every layer (`nabla_b`, `nabla_w` in the book), same shapes as the
/// biases and weights. Summed, not averaged, over the examples that produced it.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradient<F: Real = f64> {
    pub nabla_b: Vec<Array1<F>>,
    pub nabla_w: Vec<Array2<F>>,
}

impl<F: Real> Gradient<F> {
    /// A zero gradient shaped like `net`.
    pub fn zeros_like(net: &Network<F>) -> Self {
        Gradient {
            nabla_b: net
                .biases
                .iter()
                .map(|b| Array1::zeros(b.raw_dim()))
                .collect(),
            nabla_w: net
                .weights
                .iter()
                .map(|w| Array2::zeros(w.raw_dim()))
                .collect(),
        }
    }
}

impl<F: Real> Network<F> {
    /// A sigmoid network with the given layer sizes, drawn from `init` (biases for every layer
    /// first, then weights, as the book's list comprehensions draw them).
    pub fn new(sizes: &[usize], init: Init, cost: Cost, rng: &mut SeededRng) -> Self {
        let layers = || sizes.windows(2).map(|w| (w[0], w[1]));
        let biases = layers()
            .map(|(_, n_out)| init.layer_biases(n_out, rng))
            .collect();
        let weights = layers()
            .map(|(n_in, n_out)| init.layer_weights(n_out, n_in, rng))
            .collect();
        Network {
            sizes: sizes.to_vec(),
            weights,
            biases,
            activation: Activation::Sigmoid,
            cost,
        }
    }

    /// The same network computing in `G` (each weight rounded to the nearest `G`).
    pub fn cast<G: Real>(&self) -> Network<G> {
        Network {
            sizes: self.sizes.clone(),
            weights: self
                .weights
                .iter()
                .map(|w| w.mapv(|v| G::of(v.as_f64())))
                .collect(),
            biases: self
                .biases
                .iter()
                .map(|b| b.mapv(|v| G::of(v.as_f64())))
                .collect(),
            activation: self.activation,
            cost: self.cost,
        }
    }

    /// The same network with `activation` in its hidden layers.
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// Number of layers including the input layer, as `num_layers` in the book.
    pub fn num_layers(&self) -> usize {
        self.sizes.len()
    }

    /// The output layer, which the cost decides.
    pub fn output(&self) -> Output {
        self.cost.output()
    }

    /// Turns layer `l`'s weighted inputs z = w·a + b into its outputs, in place: the output
    /// layer's function for the last layer; otherwise the hidden activation f, then the
    /// dropout `mask`, if one is given. Every forward pass in the crate goes through this or
    /// [`Network::activate_batch`].
    pub fn activate(&self, l: usize, mut z: ArrayViewMut1<F>, mask: Option<&Array1<F>>) {
        if l == self.weights.len() - 1 {
            self.output().apply(z);
            return;
        }
        match z.as_slice_mut() {
            Some(z) => self.activation.apply_slice(z),
            None => z.mapv_inplace(|v| self.activation.apply(v)),
        }
        if let Some(mask) = mask {
            z *= mask;
        }
    }

    /// [`Network::activate`] for a mini-batch, adding the bias in the same pass: Z ← f(Z + b)
    /// for `z` `(sizes[l+1], m)` of weighted inputs without the bias, one example per column,
    /// then ⊙ `mask` `(sizes[l+1], m)` on a hidden layer, if given.
    pub fn activate_batch(&self, l: usize, mut z: ArrayViewMut2<F>, mask: Option<ArrayView2<F>>) {
        let b = self.biases[l].view();
        if l == self.weights.len() - 1 {
            self.output().apply_layer(z, b);
            return;
        }
        self.activation.apply_layer(z.view_mut(), b, false);
        if let Some(mask) = mask {
            z *= &mask;
        }
    }

    /// The output for one input vector `a` of `sizes[0]` values: a′ = f(w·a + b) per layer
    /// (eq. 22), with f the hidden activation and then the output layer's.
    pub fn feedforward(&self, a: ArrayView1<F>) -> Array1<F> {
        self.feedforward_masked(a, &[])
    }

    /// [`Network::feedforward`] with dropout masks applied (see [`crate::model::dropout`]):
    /// `masks[l]` `(sizes[l+1],)` multiplies the outputs of hidden layer l. No masks, no
    /// dropout.
    pub fn feedforward_masked(&self, a: ArrayView1<F>, masks: &[Array1<F>]) -> Array1<F> {
        self.check_masks(masks);
        let mut a = a.to_owned();
        for (l, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            a = w.dot(&a) + b;
            self.activate(l, a.view_mut(), masks.get(l));
        }
        a
    }

    /// The outputs `(n_out, m)` for inputs `(n_in, m)`, one example per column.
    pub fn feedforward_batch(&self, x: ArrayView2<F>) -> Array2<F> {
        let mut a = self.weights[0].dot(&x);
        self.activate_batch(0, a.view_mut(), None);
        for (l, w) in self.weights.iter().enumerate().skip(1) {
            a = w.dot(&a);
            self.activate_batch(l, a.view_mut(), None);
        }
        a
    }

    /// The book's `backprop(x, y)`: the gradient of the cost of one example `x` with one-hot
    /// target `y`, by equations BP1–BP4.
    pub fn backprop(&self, x: ArrayView1<F>, y: ArrayView1<F>) -> Gradient<F> {
        self.backprop_masked(x, y, &[])
    }

    /// [`Network::backprop`] with dropout masks on the hidden layers, as
    /// [`Network::feedforward_masked`] applies them: the gradient of the cost of the thinned
    /// network the masks pick.
    pub fn backprop_masked(
        &self,
        x: ArrayView1<F>,
        y: ArrayView1<F>,
        masks: &[Array1<F>],
    ) -> Gradient<F> {
        self.check_masks(masks);
        let mut grad = Gradient::zeros_like(self);
        let last = self.weights.len() - 1;
        // Forward pass, keeping every layer's weighted input z and (masked) activation a.
        let mut zs: Vec<Array1<F>> = Vec::with_capacity(last + 1);
        let mut activations: Vec<Array1<F>> = Vec::with_capacity(self.num_layers());
        activations.push(x.to_owned());
        for (l, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            let z = w.dot(&activations[l]) + b;
            let mut a = z.clone();
            self.activate(l, a.view_mut(), masks.get(l));
            zs.push(z);
            activations.push(a);
        }
        // Backward pass. BP1: δᴸ from the cost.
        let output = &activations[last + 1];
        let mut delta: Array1<F> = ndarray::Zip::from(output)
            .and(y)
            .map_collect(|&a, &y| self.cost.delta(a, y));
        for l in (0..=last).rev() {
            // BP3 and BP4: ∂C/∂b = δ, ∂C/∂w = δ·aᵀ of the layer below (an outer product).
            let a_in = &activations[l];
            grad.nabla_b[l] = delta.clone();
            grad.nabla_w[l] = delta
                .view()
                .insert_axis(Axis(1))
                .dot(&a_in.view().insert_axis(Axis(0)));
            if l > 0 {
                // BP2: δˡ = (wˡ⁺¹)ᵀδˡ⁺¹ ⊙ f′(zˡ), and ⊙ the mask under dropout.
                let mut next = self.weights[l].t().dot(&delta);
                next.zip_mut_with(&zs[l - 1], |d, &z| *d *= self.activation.prime(z));
                if let Some(mask) = masks.get(l - 1) {
                    next *= mask;
                }
                delta = next;
            }
        }
        grad
    }

    /// Masks come one per hidden layer, each as long as its layer, or not at all.
    fn check_masks(&self, masks: &[Array1<F>]) {
        assert!(
            masks.is_empty()
                || (masks.len() == self.weights.len() - 1
                    && masks
                        .iter()
                        .zip(&self.sizes[1..])
                        .all(|(m, &n)| m.len() == n)),
            "dropout masks must be one per hidden layer, shaped like it"
        );
    }

    /// Draws one example's dropout masks, one per hidden layer, in the order
    /// [`crate::model::dropout`] fixes.
    pub fn draw_masks(&self, p: f64, rng: &mut SeededRng) -> Vec<Array1<F>> {
        let hidden = &self.sizes[1..self.sizes.len() - 1];
        hidden
            .iter()
            .map(|&n| {
                let mut mask = Array1::zeros(n);
                dropout::fill(p, rng, &mut mask);
                mask
            })
            .collect()
    }

    /// `network.py`'s `update_mini_batch`, as the book writes it: backprop every example of
    /// `batch` on its own, add up the gradients, take one step. Under dropout each example
    /// gets masks of its own from `rng`. The straightforward reference that the fast
    /// mini-batch steps ([`crate::train::per_example`], [`crate::train::batch`]) are tested against.
    pub fn update_mini_batch(
        &mut self,
        data: &Dataset<F>,
        batch: &[usize],
        step: &Step,
        rng: &mut SeededRng,
    ) {
        let classes = self.sizes[self.sizes.len() - 1];
        let mut sum = Gradient::zeros_like(self);
        for &k in batch {
            let y = one_hot(data.labels()[k], classes);
            let masks = if step.dropout > 0.0 {
                self.draw_masks(step.dropout, rng)
            } else {
                Vec::new()
            };
            let g = self.backprop_masked(data.images().row(k), y.view(), &masks);
            for (nb, d) in sum.nabla_b.iter_mut().zip(&g.nabla_b) {
                *nb += d;
            }
            for (nw, d) in sum.nabla_w.iter_mut().zip(&g.nabla_w) {
                *nw += d;
            }
        }
        self.update(&sum, batch.len(), step);
    }

    /// One gradient-descent step from a gradient summed over `m` examples (eq. 93 and
    /// `network2.py`'s `update_mini_batch`):
    /// w → (1 − ηλ/n)·w − (η/m)·∇w,  b → b − (η/m)·∇b.
    pub fn update(&mut self, grad: &Gradient<F>, m: usize, step: &Step) {
        let k = F::of(step.eta / m as f64);
        let decay = F::of(step.decay());
        for (w, nw) in self.weights.iter_mut().zip(&grad.nabla_w) {
            w.zip_mut_with(nw, |w, &nw| *w = decay * *w - k * nw);
        }
        for (b, nb) in self.biases.iter_mut().zip(&grad.nabla_b) {
            b.scaled_add(-k, nb);
        }
    }

    /// `f(outputs, labels)` for every chunk of `data`, in order: `outputs` `(n_out, m)`, one
    /// example per column, with the chunk's labels. [`EVAL_CHUNK`] (1,000) examples a chunk,
    /// one matrix product per layer and chunk; consecutive chunks are shared between the
    /// threads ([`crate::backend::map_ranges`]). The chunks are the same on any number of threads, and so
    /// is every output.
    pub fn map_outputs<'d, R: Send>(
        &self,
        data: &'d Dataset<F>,
        f: impl Fn(ArrayView2<F>, &'d [u8]) -> R + Sync,
    ) -> Vec<R> {
        let chunks = data.len().div_ceil(EVAL_CHUNK);
        let parts = crate::backend::map_ranges(chunks, |range| {
            let mut results = Vec::with_capacity(range.len());
            for k in range {
                let (start, end) = (k * EVAL_CHUNK, ((k + 1) * EVAL_CHUNK).min(data.len()));
                let x = data.images().slice_move(s![start..end, ..]);
                let out = self.feedforward_batch(x.t());
                results.push(f(out.view(), &data.labels()[start..end]));
            }
            results
        });
        parts.into_iter().flatten().collect()
    }

    /// The outputs for every example of `data`, chunk by chunk in order: `visit` gets each
    /// chunk's outputs `(n_out, m)` and labels ([`Network::map_outputs`]).
    pub fn for_each_output(&self, data: &Dataset<F>, mut visit: impl FnMut(ArrayView2<F>, &[u8])) {
        for (out, labels) in self.map_outputs(data, |out, labels| (out.to_owned(), labels)) {
            visit(out.view(), labels);
        }
    }

    /// How many examples of `data` the network classifies correctly: the index of the most
    /// active output neuron is the digit (`evaluate` in the book).
    pub fn evaluate(&self, data: &Dataset<F>) -> usize {
        let correct = self.map_outputs(data, |out, labels| {
            out.axis_iter(Axis(1))
                .zip(labels)
                .filter(|(col, &label)| {
                    argmax(col.iter().map(|v| v.as_f64())) == usize::from(label)
                })
                .count()
        });
        correct.into_iter().sum()
    }

    /// The digit each example of `data` is read as (the most active output neuron).
    pub fn predictions(&self, data: &Dataset<F>) -> Vec<usize> {
        let digits = self.map_outputs(data, |out, _| {
            out.axis_iter(Axis(1))
                .map(|col| argmax(col.iter().map(|v| v.as_f64())))
                .collect::<Vec<_>>()
        });
        digits.concat()
    }

    /// `network2.py`'s `total_cost(data, lmbda)`: the mean cost over `data` plus the L2 term
    /// of eq. (87), (1/n) Σₓ C(a(x), y(x)) + (λ/2n) Σ w², with n the size of `data`.
    pub fn total_cost(&self, data: &Dataset<F>, lambda: f64) -> f64 {
        let squares: f64 = self
            .weights
            .iter()
            .flat_map(|w| w.iter())
            .map(|w| w.as_f64() * w.as_f64())
            .sum();
        self.mean_cost(data) + 0.5 * lambda / data.len() as f64 * squares
    }

    /// The mean cost over `data`, without the L2 term: (1/n) Σₓ C(a(x), y(x)), added example
    /// by example in order.
    pub fn mean_cost(&self, data: &Dataset<F>) -> f64 {
        let classes = self.sizes[self.sizes.len() - 1];
        let costs = self.map_outputs(data, |out, labels| {
            let mut y = vec![F::zero(); classes];
            let mut costs = Vec::with_capacity(labels.len());
            for (col, &label) in out.axis_iter(Axis(1)).zip(labels) {
                y.fill(F::zero());
                y[usize::from(label)] = F::one();
                let a: Vec<F> = col.to_vec();
                costs.push(self.cost.value(&a, &y));
            }
            costs
        });
        let total = costs.iter().flatten().fold(0.0, |total, c| total + c);
        total / data.len() as f64
    }

    /// True when every weight and bias is a finite number.
    pub fn is_finite(&self) -> bool {
        self.weights.iter().all(|w| w.iter().all(|v| v.is_finite()))
            && self.biases.iter().all(|b| b.iter().all(|v| v.is_finite()))
    }
}

/// The book's `vectorized_result(j)`: a one-hot column with 1.0 at `digit`.
pub fn one_hot<F: Real>(digit: u8, classes: usize) -> Array1<F> {
    let mut y = Array1::zeros(classes);
    y[usize::from(digit)] = F::one();
    y
}

/// How many of `predictions` name their example's label.
pub fn count_correct(predictions: &[usize], labels: &[u8]) -> usize {
    predictions
        .iter()
        .zip(labels)
        .filter(|(&p, &l)| p == usize::from(l))
        .count()
}

/// Index of the largest value (the first one on ties, as `np.argmax`).
pub fn argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}
