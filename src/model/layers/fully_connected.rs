//! `network3.py`'s `FullyConnectedLayer`: out = f(W·x + b) for every example, each input
//! dropped with probability p while training ([`super::dense`] has the product, backprop and
//! update it shares with the softmax layer).
//!
//! In a list: `fc:N` (`act=` the activation, `dropout=` the probability).

use ndarray::{s, ArrayD, Zip};
use serde::{Deserialize, Serialize};

use crate::model::activation::Activation;
use crate::model::export::layer::{Exported, Function};
use crate::real::Real;

use super::dense::{self, Dense, DenseBuffers};
use super::item::{Defaults, Item, Shape, SpecError};
use super::kind::{
    put, Backward, Bound, Buffer, FileEntry, Forward, Kind, KindSpec, Place, Rate, Role, Tunable,
};
use super::phase::Phase;
use super::reference::Trace;
use super::{Layer, LayerSpec};

/// The list item of a `FullyConnectedLayer` of `neurons`, dropping each of its inputs with
/// probability `dropout` while training.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FullyConnectedSpec {
    pub neurons: usize,
    pub activation: Activation,
    pub dropout: f64,
}

impl KindSpec for FullyConnectedSpec {
    const KEYWORDS: &'static [&'static str] = &["fc"];

    const TUNABLE: &'static [Tunable<Self>] = &[
        Tunable {
            name: "size",
            bound: Bound::Count,
            what: "the neurons of fc layer N",
            set: |s, v| put(&mut s.neurons, v),
        },
        Tunable {
            name: "dropout",
            bound: Bound::Probability,
            what: "the dropout probability of fc layer N's inputs",
            set: |s, v| put(&mut s.dropout, v),
        },
    ];

    fn parse(
        item: &Item<'_>,
        _following: &[&str],
        defaults: Defaults,
    ) -> Result<(Self, usize), SpecError> {
        let options = item.options(&["act", "dropout"], defaults)?;
        let [neurons] = item.counts(["NEURONS"])?;
        let spec = FullyConnectedSpec {
            neurons,
            activation: options.activation,
            dropout: options.dropout,
        };
        Ok((spec, 1))
    }

    fn text(&self) -> String {
        let (neurons, dropout) = (self.neurons, self.dropout);
        format!(
            "fc:{neurons}:act={}:dropout={dropout}",
            self.activation.name()
        )
    }

    fn check(&self, place: &Place<'_>) -> Result<(), SpecError> {
        place.sizes_valid(self.neurons > 0 && (0.0..1.0).contains(&self.dropout))
    }

    fn output(&self, _input: Shape, _classes: usize) -> Shape {
        [self.neurons, 1, 1]
    }

    fn dropout(&self) -> f64 {
        self.dropout
    }

    fn parameters(&self, input: Shape, _classes: usize) -> Option<u128> {
        dense::parameters(input, self.neurons)
    }

    fn multiply_adds(&self, input: Shape, _classes: usize) -> f64 {
        input.iter().product::<usize>() as f64 * self.neurons as f64
    }

    fn buffers<F: Real>(
        &self,
        input: Shape,
        _output: Shape,
        m: usize,
        role: Role,
    ) -> Option<Vec<Buffer>> {
        dense::buffers::<F>(input, self.neurons, m, role)
    }

    /// Weights N(0, 1/n_out), then biases N(0, 1).
    fn build<F: Real>(
        &self,
        input: Shape,
        _classes: usize,
        draw: &mut impl FnMut(f64) -> F,
    ) -> Layer<F> {
        let sd = (self.neurons as f64).recip().sqrt();
        Layer::FullyConnected(FullyConnected {
            activation: self.activation,
            dense: Dense::build(input, self.neurons, self.dropout, Some(sd), draw),
        })
    }
}

impl From<FullyConnectedSpec> for LayerSpec {
    fn from(spec: FullyConnectedSpec) -> Self {
        LayerSpec::FullyConnected(spec)
    }
}

/// `FullyConnectedLayer`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct FullyConnected<F: Real = f64> {
    pub activation: Activation,
    pub dense: Dense<F>,
}

impl<F: Real> Kind<F> for FullyConnected<F> {
    type Spec = FullyConnectedSpec;
    type Buffers = DenseBuffers<F>;
    type File = FullyConnectedFile;

    dense::forward_to_dense!();

    fn spec(&self) -> FullyConnectedSpec {
        FullyConnectedSpec {
            neurons: self.dense.n_out(),
            activation: self.activation,
            dropout: self.dense.dropout,
        }
    }

    fn export(&self) -> Exported<'_, F> {
        self.dense.export(
            FullyConnectedSpec::KEYWORDS[0],
            Function::Hidden(self.activation),
        )
    }

    fn cast<G: Real>(&self) -> Layer<G> {
        Layer::FullyConnected(FullyConnected {
            activation: self.activation,
            dense: self.dense.cast(),
        })
    }

    /// out = f(W·x + b).
    fn forward(&self, buffers: &mut DenseBuffers<F>, pass: &mut Forward<'_, F>) {
        self.dense.product(buffers, pass);
        let out = pass.out.slice_mut(s![.., ..pass.m]);
        self.activation
            .apply_layer(out, self.dense.biases.view(), true);
        pass.timer.mark(Phase::DenseForward);
    }

    fn backward(&self, buffers: &mut DenseBuffers<F>, pass: &mut Backward<'_, F>) {
        self.delta(pass);
        self.dense.backward(buffers, pass);
    }

    fn backward_update(
        &mut self,
        buffers: &mut DenseBuffers<F>,
        pass: &mut Backward<'_, F>,
        rate: Rate<F>,
    ) {
        self.delta(pass);
        self.dense.backward_update(buffers, pass, rate);
    }

    fn reference_forward(&self, trace: &mut Trace<F>, training: bool, mask: Option<&[F]>) {
        let z = self.dense.reference_product(trace, training, mask);
        trace.out = z.iter().map(|&z| self.activation.apply(z)).collect();
    }

    fn reference_backward(
        &self,
        trace: &Trace<F>,
        d_out: &[F],
        mask: Option<&[F]>,
        nabla: &mut [ArrayD<F>],
    ) -> Vec<F> {
        let delta: Vec<F> = d_out
            .iter()
            .zip(&trace.out)
            .map(|(&d, &a)| d * self.activation.prime_from_output(a))
            .collect();
        self.dense.reference_backward(trace, &delta, mask, nabla)
    }

    fn to_file(&self) -> FullyConnectedFile {
        let (weights, biases) = self.dense.to_file();
        FullyConnectedFile {
            neurons: self.dense.n_out(),
            activation: self.activation,
            dropout: self.dense.dropout,
            weights,
            biases,
        }
    }

    fn from_file(file: FullyConnectedFile, input: Shape, layer: usize) -> Result<Self, String> {
        let FullyConnectedFile {
            neurons,
            activation,
            dropout,
            weights,
            biases,
        } = file;
        Ok(FullyConnected {
            activation,
            dense: Dense::from_file(layer, input, neurons, dropout, weights, biases)?,
        })
    }
}

impl<F: Real> FullyConnected<F> {
    /// BP2's ⊙ f′(z), from the stored outputs: ∂C/∂out becomes δ.
    fn delta(&self, pass: &mut Backward<'_, F>) {
        let m = pass.m;
        Zip::from(&mut pass.d_out.slice_mut(s![.., ..m]))
            .and(pass.out.slice(s![.., ..m]))
            .for_each(|d, &a| *d *= self.activation.prime_from_output(a));
    }
}

/// A fully-connected layer's model-file entry: `weights` `(neurons, n_in)`, `biases`
/// `(neurons,)`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FullyConnectedFile {
    neurons: usize,
    activation: Activation,
    dropout: f64,
    weights: Vec<Vec<f64>>,
    biases: Vec<f64>,
}

impl FileEntry for FullyConnectedFile {
    fn spec(&self) -> LayerSpec {
        LayerSpec::FullyConnected(FullyConnectedSpec {
            neurons: self.neurons,
            activation: self.activation,
            dropout: self.dropout,
        })
    }
}
