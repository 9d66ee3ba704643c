//! `network3.py`'s `SoftmaxLayer`, the output layer: out = softmax(W·x + b) (eq. 78), one
//! neuron per class, trained on the log-likelihood cost, whose δᴸ = a − y (eq. 84) the pass
//! hands it. Its weights and biases start at zero, as `network3.py`'s do.
//!
//! In a list: `softmax` (`dropout=` the probability); it must come last.

use ndarray::{s, ArrayD, ArrayViewMut1};
use serde::{Deserialize, Serialize};

use crate::model::activation::Output;
use crate::model::export::layer::{Exported, Function};
use crate::real::Real;

use super::dense::{self, Dense, DenseBuffers};
use super::item::{Defaults, Item, Shape, SpecError};
use super::kind::{Backward, Buffer, FileEntry, Forward, Kind, KindSpec, Place, Rate, Role};
use super::phase::Phase;
use super::reference::Trace;
use super::{Layer, LayerSpec};

/// The list item of a `SoftmaxLayer`, dropping each of its inputs with probability `dropout`
/// while training.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SoftmaxSpec {
    pub dropout: f64,
}

impl KindSpec for SoftmaxSpec {
    const KEYWORDS: &'static [&'static str] = &["softmax"];

    fn parse(
        item: &Item<'_>,
        _following: &[&str],
        defaults: Defaults,
    ) -> Result<(Self, usize), SpecError> {
        let dropout = item.options(&["dropout"], defaults)?.dropout;
        item.counts([])?;
        Ok((SoftmaxSpec { dropout }, 1))
    }

    fn text(&self) -> String {
        format!("softmax:dropout={}", self.dropout)
    }

    fn check(&self, place: &Place<'_>) -> Result<(), SpecError> {
        place.sizes_valid((0.0..1.0).contains(&self.dropout))?;
        if !place.last {
            return Err(SpecError::SoftmaxNotLast { index: place.index });
        }
        Ok(())
    }

    fn output(&self, _input: Shape, classes: usize) -> Shape {
        [classes, 1, 1]
    }

    fn is_output(&self) -> bool {
        true
    }

    fn dropout(&self) -> f64 {
        self.dropout
    }

    fn parameters(&self, input: Shape, classes: usize) -> Option<u128> {
        dense::parameters(input, classes)
    }

    fn multiply_adds(&self, input: Shape, classes: usize) -> f64 {
        input.iter().product::<usize>() as f64 * classes as f64
    }

    fn buffers<F: Real>(
        &self,
        input: Shape,
        output: Shape,
        m: usize,
        role: Role,
    ) -> Option<Vec<Buffer>> {
        dense::buffers::<F>(input, output[0], m, role)
    }

    /// Weights and biases zero; nothing drawn.
    fn build<F: Real>(
        &self,
        input: Shape,
        classes: usize,
        draw: &mut impl FnMut(f64) -> F,
    ) -> Layer<F> {
        let dense = Dense::build(input, classes, self.dropout, None, draw);
        Layer::Softmax(Softmax { dense })
    }
}

impl From<SoftmaxSpec> for LayerSpec {
    fn from(spec: SoftmaxSpec) -> Self {
        LayerSpec::Softmax(spec)
    }
}

/// `SoftmaxLayer`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound = "", transparent)]
pub struct Softmax<F: Real = f64> {
    pub dense: Dense<F>,
}

impl<F: Real> Kind<F> for Softmax<F> {
    type Spec = SoftmaxSpec;
    type Buffers = DenseBuffers<F>;
    type File = SoftmaxFile;

    dense::forward_to_dense!();

    fn spec(&self) -> SoftmaxSpec {
        SoftmaxSpec {
            dropout: self.dense.dropout,
        }
    }

    fn export(&self) -> Exported<'_, F> {
        self.dense
            .export(SoftmaxSpec::KEYWORDS[0], Function::Output(Output::Softmax))
    }

    fn cast<G: Real>(&self) -> Layer<G> {
        Layer::Softmax(Softmax {
            dense: self.dense.cast(),
        })
    }

    /// out = softmax(W·x + b).
    fn forward(&self, buffers: &mut DenseBuffers<F>, pass: &mut Forward<'_, F>) {
        self.dense.product(buffers, pass);
        let out = pass.out.slice_mut(s![.., ..pass.m]);
        Output::Softmax.apply_layer(out, self.dense.biases.view());
        pass.timer.mark(Phase::DenseForward);
    }

    /// δ is the error the pass hands it (a − y): no f′ to apply.
    fn backward(&self, buffers: &mut DenseBuffers<F>, pass: &mut Backward<'_, F>) {
        self.dense.backward(buffers, pass);
    }

    fn backward_update(
        &mut self,
        buffers: &mut DenseBuffers<F>,
        pass: &mut Backward<'_, F>,
        rate: Rate<F>,
    ) {
        self.dense.backward_update(buffers, pass, rate);
    }

    fn reference_forward(&self, trace: &mut Trace<F>, training: bool, mask: Option<&[F]>) {
        let mut z = self.dense.reference_product(trace, training, mask);
        Output::Softmax.apply(ArrayViewMut1::from(&mut z[..]));
        trace.out = z;
    }

    fn reference_backward(
        &self,
        trace: &Trace<F>,
        d_out: &[F],
        mask: Option<&[F]>,
        nabla: &mut [ArrayD<F>],
    ) -> Vec<F> {
        self.dense.reference_backward(trace, d_out, mask, nabla)
    }

    fn to_file(&self) -> SoftmaxFile {
        let (weights, biases) = self.dense.to_file();
        SoftmaxFile {
            neurons: self.dense.n_out(),
            dropout: self.dense.dropout,
            weights,
            biases,
        }
    }

    fn from_file(file: SoftmaxFile, input: Shape, layer: usize) -> Result<Self, String> {
        let SoftmaxFile {
            neurons,
            dropout,
            weights,
            biases,
        } = file;
        let dense = Dense::from_file(layer, input, neurons, dropout, weights, biases)?;
        Ok(Softmax { dense })
    }
}

/// The softmax layer's model-file entry: `neurons` (the classes), `weights` `(neurons,
/// n_in)`, `biases` `(neurons,)`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftmaxFile {
    neurons: usize,
    dropout: f64,
    weights: Vec<Vec<f64>>,
    biases: Vec<f64>,
}

impl FileEntry for SoftmaxFile {
    fn spec(&self) -> LayerSpec {
        LayerSpec::Softmax(SoftmaxSpec {
            dropout: self.dropout,
        })
    }

    fn classes(&self) -> Option<usize> {
        Some(self.neurons)
    }
}
