//! A look inside a network, for the pictures of what it learned and got wrong (`nndl inspect`,
//! `--tensorboard`): each layer's weights and biases, the first layer's weights laid out as
//! images — a fully-connected layer's 784 input weights of a neuron as a 28×28 tile, as the
//! book draws them in chapter 1; a convolution's K×K filters, as chapter 6's figure of the
//! first layer's 20 feature maps — and every example's verdict: its label, the class named and
//! the output activation behind it. Both kinds of network answer [`Inspect`]; nothing here
//! changes how a network trains.

use ndarray::{ArrayView2, Axis};

use crate::data::Dataset;
use crate::model::layers::{Layer, LayerNetwork};
use crate::model::network::{argmax, Network};
use crate::real::Real;

/// One parameter array of a layer, as plain numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct Parameters {
    /// `layer1/weights`, `conv1/biases`: the layer (counted from 1, by kind for a layer list)
    /// and what the array is.
    pub name: String,
    pub values: Vec<f64>,
}

/// Weights laid out as `count` tiles of `height × width`, tile after tile, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Tiles {
    pub count: usize,
    pub height: usize,
    pub width: usize,
    pub values: Vec<f64>,
    /// What one tile is, for a caption: `neuron`, `filter`.
    pub what: &'static str,
}

/// What a network made of one example.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verdict {
    /// The example's position in its data set.
    pub index: usize,
    pub label: usize,
    /// The class the network names (the most active output neuron).
    pub predicted: usize,
    /// The output activation of that class: the probability it gives it under a softmax
    /// output, the sigmoid neuron's activation otherwise.
    pub confidence: f64,
}

/// What a picture of a network needs from it.
pub trait Inspect<F: Real> {
    /// Every layer's weights and biases, input side first.
    fn parameters(&self) -> Vec<Parameters>;

    /// The first layer's weights as images: one tile per neuron of a fully-connected layer
    /// (its weights over the input image's pixels, one tile per input channel), one per
    /// filter and input channel of a convolution.
    fn first_layer(&self) -> Tiles;

    /// The output activations of every example of `data`, chunk by chunk: `(classes, m)`,
    /// one example per column, and the chunk's labels.
    fn each_output(&self, data: &Dataset<F>, visit: &mut dyn FnMut(ArrayView2<F>, &[u8]));

    /// The verdict on every example of `data`, in order.
    fn verdicts(&self, data: &Dataset<F>) -> Vec<Verdict> {
        let mut all = Vec::with_capacity(data.len());
        self.each_output(data, &mut |out, labels| {
            for (col, &label) in out.axis_iter(Axis(1)).zip(labels) {
                let predicted = argmax(col.iter().map(|v| v.as_f64()));
                all.push(Verdict {
                    index: all.len(),
                    label: usize::from(label),
                    predicted,
                    confidence: col[predicted].as_f64(),
                });
            }
        });
        all
    }
}

/// The `n` misclassified examples of `verdicts` the network was surest of, surest first
/// (the first of equals first).
pub fn most_confident_mistakes(verdicts: &[Verdict], n: usize) -> Vec<Verdict> {
    let mut wrong: Vec<Verdict> = verdicts
        .iter()
        .filter(|v| v.label != v.predicted)
        .copied()
        .collect();
    wrong.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    wrong.truncate(n);
    wrong
}

/// The counts of (label, predicted class) over `verdicts`: row = label, column = prediction.
pub fn confusion(verdicts: &[Verdict], classes: usize) -> Vec<Vec<usize>> {
    let mut matrix = vec![vec![0; classes]; classes];
    for v in verdicts {
        if v.label < classes && v.predicted < classes {
            matrix[v.label][v.predicted] += 1;
        }
    }
    matrix
}

/// `rows` (one tile's values per row, C·H·W) cut into tiles of `height × width`.
fn tiles_of<F: Real>(
    rows: ArrayView2<F>,
    height: usize,
    width: usize,
    what: &'static str,
) -> Tiles {
    let values: Vec<f64> = rows.iter().map(|v| v.as_f64()).collect();
    let side = (height * width).max(1);
    Tiles {
        count: values.len() / side,
        height,
        width,
        values,
        what,
    }
}

/// The side of the square image of `n` pixels (28 for MNIST's 784), or `(1, n)` when `n` is
/// not a square.
fn image_shape(n: usize) -> (usize, usize) {
    let side = n.isqrt();
    if side * side == n {
        (side, side)
    } else {
        (1, n)
    }
}

impl<F: Real> Inspect<F> for Network<F> {
    fn parameters(&self) -> Vec<Parameters> {
        let mut all = Vec::new();
        for (l, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            let layer = format!("layer{}", l + 1);
            all.push(Parameters {
                name: format!("{layer}/weights"),
                values: w.iter().map(|v| v.as_f64()).collect(),
            });
            all.push(Parameters {
                name: format!("{layer}/biases"),
                values: b.iter().map(|v| v.as_f64()).collect(),
            });
        }
        all
    }

    fn first_layer(&self) -> Tiles {
        let (height, width) = image_shape(self.sizes[0]);
        tiles_of(self.weights[0].view(), height, width, "neuron")
    }

    fn each_output(&self, data: &Dataset<F>, visit: &mut dyn FnMut(ArrayView2<F>, &[u8])) {
        self.for_each_output(data, visit);
    }
}

impl<F: Real> Inspect<F> for LayerNetwork<F> {
    fn parameters(&self) -> Vec<Parameters> {
        let mut all = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for layer in &self.layers {
            let keyword = layer.spec().keyword();
            seen.push(keyword);
            let n = seen.iter().filter(|&&k| k == keyword).count();
            for p in layer.parameters() {
                let what = if p.decays { "weights" } else { "biases" };
                all.push(Parameters {
                    name: format!("{keyword}{n}/{what}"),
                    values: p.values.iter().map(|v| v.as_f64()).collect(),
                });
            }
        }
        all
    }

    fn first_layer(&self) -> Tiles {
        let first = &self.layers[0];
        let weights = first
            .parameters()
            .into_iter()
            .find(|p| p.decays)
            .map(|p| p.values.iter().map(|v| v.as_f64()).collect::<Vec<f64>>())
            .unwrap_or_default();
        let (height, width, what) = match first {
            // A convolution's weights are (F, C·K·K): one K×K tile per filter and channel.
            Layer::ConvPool(conv) => (conv.filter, conv.filter, "filter"),
            // A dense layer's are (n_out, C·H·W): one H×W tile per neuron and channel.
            _ => {
                let [_, h, w] = self.input;
                (h, w, "neuron")
            }
        };
        let side = (height * width).max(1);
        Tiles {
            count: weights.len() / side,
            height,
            width,
            values: weights,
            what,
        }
    }

    fn each_output(&self, data: &Dataset<F>, visit: &mut dyn FnMut(ArrayView2<F>, &[u8])) {
        self.for_each_output(data, visit);
    }
}

/// A misclassified example and its image.
#[derive(Clone, Debug, PartialEq)]
pub struct Mistake {
    pub verdict: Verdict,
    /// Its pixels, row by row, 0 (white) to 1 (black) as MNIST's.
    pub pixels: Vec<f64>,
}

/// A network as it stands after an epoch, for the pictures of it: its parameters, its first
/// layer as tiles, and the misclassified examples of the evaluation set it was surest of.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub parameters: Vec<Parameters>,
    pub first_layer: Tiles,
    pub mistakes: Vec<Mistake>,
}

impl Snapshot {
    /// `model` on `data`, keeping its `mistakes` surest misclassified examples.
    pub fn of<F: Real>(model: &dyn Inspect<F>, data: &Dataset<F>, mistakes: usize) -> Self {
        let verdicts = model.verdicts(data);
        let images = data.images();
        Snapshot {
            parameters: model.parameters(),
            first_layer: model.first_layer(),
            mistakes: most_confident_mistakes(&verdicts, mistakes)
                .into_iter()
                .map(|verdict| Mistake {
                    verdict,
                    pixels: images
                        .row(verdict.index)
                        .iter()
                        .map(|v| v.as_f64())
                        .collect(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cost::Cost;
    use crate::model::init::Init;

    #[test]
    fn a_fully_connected_first_layer_is_one_28_by_28_tile_per_neuron() {
        let mut rng = crate::rng::seeded(1);
        let net: Network<f32> = Network::new(
            &[784, 30, 10],
            Init::ScaledNormal,
            Cost::CrossEntropy,
            &mut rng,
        );
        let tiles = Inspect::first_layer(&net);
        assert_eq!((tiles.count, tiles.height, tiles.width), (30, 28, 28));
        assert_eq!(tiles.values[784 + 5], f64::from(net.weights[0][[1, 5]]));
        let names: Vec<String> = Inspect::parameters(&net)
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(
            names,
            [
                "layer1/weights",
                "layer1/biases",
                "layer2/weights",
                "layer2/biases"
            ]
        );
    }

    #[test]
    fn mistakes_are_the_surest_wrong_ones_and_the_confusion_counts_every_verdict() {
        let v = |index, label, predicted, confidence| Verdict {
            index,
            label,
            predicted,
            confidence,
        };
        let verdicts = [
            v(0, 1, 1, 0.9),
            v(1, 2, 3, 0.6),
            v(2, 4, 5, 0.8),
            v(3, 7, 1, 0.7),
        ];
        let wrong = most_confident_mistakes(&verdicts, 2);
        assert_eq!(wrong.iter().map(|w| w.index).collect::<Vec<_>>(), [2, 3]);
        let m = confusion(&verdicts, 10);
        assert_eq!(m.iter().flatten().sum::<usize>(), 4);
        assert_eq!((m[1][1], m[2][3], m[3][2]), (1, 1, 0));
    }
}
