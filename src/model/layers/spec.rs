//! The layer list of a chapter-6 network, as written on the command line: `--layers
//! conv:20:5,pool:2,conv:40:5,pool:2,fc:100,softmax` is `network3.py`'s
//!
//! ```text
//! Network([ConvPoolLayer(image_shape=(10, 1, 28, 28), filter_shape=(20, 1, 5, 5), poolsize=(2, 2)),
//!          ConvPoolLayer(image_shape=(10, 20, 12, 12), filter_shape=(40, 20, 5, 5), poolsize=(2, 2)),
//!          FullyConnectedLayer(n_in=40*4*4, n_out=100),
//!          SoftmaxLayer(n_in=100, n_out=10)], mini_batch_size=10)
//! ```
//!
//! where every shape after the first is worked out here instead of written by hand. Items:
//! - `conv:F:K` — F filters of K×K over every input channel, valid, stride 1; a `pool:P` right
//!   after it makes the two one `ConvPoolLayer` with P×P max-pooling (without one, P = 1);
//! - `fc:N` — a fully-connected layer of N neurons;
//! - `softmax` — the output layer, one neuron per class; it must come last.
//!
//! Options follow as `key=value`: `act=sigmoid|tanh|relu` on `conv` and `fc` (default: the
//! run's `--activation`), `dropout=P` on `fc` and `softmax` (default: the run's `--dropout`),
//! e.g. `fc:1000:dropout=0.5:act=relu`. [`parse`] reads the text; [`check`] works out each
//! layer's input and output shape and refuses what cannot be built, naming the item.

use serde::{Deserialize, Serialize};

use crate::model::activation::Activation;

/// One layer of the list.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LayerSpec {
    /// `ConvPoolLayer`: `filters` maps of a `filter`×`filter` convolution, max-pooled over
    /// `pool`×`pool` blocks.
    ConvPool {
        filters: usize,
        filter: usize,
        pool: usize,
        activation: Activation,
    },
    /// `FullyConnectedLayer` of `neurons`, dropping each of its inputs with probability
    /// `dropout` while training.
    FullyConnected {
        neurons: usize,
        activation: Activation,
        dropout: f64,
    },
    /// `SoftmaxLayer`: one neuron per class.
    Softmax { dropout: f64 },
}

/// The shape of one example's activations between layers: `(channels, height, width)`; a
/// fully-connected layer's output is `(neurons, 1, 1)`.
pub type Shape = [usize; 3];

/// A layer list that cannot be built, naming the item (counted from 1) at fault.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error("--layers is empty: give a list such as conv:20:5,pool:2,fc:100,softmax")]
    Empty,
    #[error("an input of shape {input:?} with {classes} classes has nothing to learn")]
    EmptyShape { input: Shape, classes: usize },
    #[error(
        "layer {index} `{item}`: unknown kind `{kind}` (known: conv:FILTERS:SIZE, pool:SIZE, \
         fc:NEURONS, softmax)"
    )]
    UnknownKind {
        index: usize,
        item: String,
        kind: String,
    },
    #[error("layer {index} `{item}`: {what}")]
    Malformed {
        index: usize,
        item: String,
        what: String,
    },
    #[error("layer {index} `{item}`: a pool must follow a conv layer")]
    PoolWithoutConv { index: usize, item: String },
    #[error(
        "layer {index} `{item}`: a {filter}×{filter} filter is larger than its {height}×{width} \
         input"
    )]
    ConvTooLarge {
        index: usize,
        item: String,
        filter: usize,
        height: usize,
        width: usize,
    },
    #[error(
        "layer {index} `{item}`: {pool}×{pool} pooling does not divide the {height}×{width} \
         feature maps of the conv before it"
    )]
    PoolDoesNotDivide {
        index: usize,
        item: String,
        pool: usize,
        height: usize,
        width: usize,
    },
    #[error("layer {index} `{item}`: a conv layer cannot follow a fully-connected one")]
    ConvAfterFullyConnected { index: usize, item: String },
    #[error("layer {index} `softmax`: the softmax layer must be the last")]
    SoftmaxNotLast { index: usize },
    #[error("the last layer must be `softmax` (the output layer), got `{0}`")]
    NoSoftmax(String),
    #[error("layer {index} `{item}` has {values} values: more than this machine can address")]
    TooLarge {
        index: usize,
        item: String,
        values: String,
    },
}

/// Reads a layer list. `activation` and `dropout` are the defaults for layers that do not set
/// their own.
pub fn parse(
    text: &str,
    activation: Activation,
    dropout: f64,
) -> Result<Vec<LayerSpec>, SpecError> {
    let items: Vec<&str> = text.split(',').map(str::trim).collect();
    if text.trim().is_empty() {
        return Err(SpecError::Empty);
    }
    let mut layers = Vec::new();
    let mut index = 0;
    while index < items.len() {
        let item = items[index];
        let number = index + 1;
        let malformed = |what: String| SpecError::Malformed {
            index: number,
            item: item.to_string(),
            what,
        };
        let mut parts = item.split(':');
        let kind = parts.next().unwrap_or_default();
        let (positional, options): (Vec<&str>, Vec<&str>) = parts.partition(|p| !p.contains('='));
        let mut act = activation;
        let mut drop = dropout;
        for option in &options {
            let (key, value) = option.split_once('=').unwrap_or_default();
            match (kind, key) {
                ("conv" | "fc", "act") => {
                    act = <Activation as clap::ValueEnum>::from_str(value, true).map_err(|_| {
                        malformed(format!(
                            "unknown activation `{value}` (sigmoid, tanh or relu)"
                        ))
                    })?
                }
                ("fc" | "softmax", "dropout") => {
                    drop = value
                        .parse::<f64>()
                        .ok()
                        .filter(|p| (0.0..1.0).contains(p))
                        .ok_or_else(|| {
                            malformed(format!(
                            "dropout must be a probability at least 0 and below 1, got `{value}`"
                        ))
                        })?
                }
                _ => return Err(malformed(format!("`{key}` is not an option of `{kind}`"))),
            }
        }
        let counts = |names: &[&str]| -> Result<Vec<usize>, SpecError> {
            if positional.len() != names.len() {
                return Err(malformed(format!(
                    "expected {kind}{}",
                    names.iter().map(|n| format!(":{n}")).collect::<String>()
                )));
            }
            positional
                .iter()
                .zip(names)
                .map(|(p, name)| {
                    p.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
                        malformed(format!("{name} must be a whole number above 0, got `{p}`"))
                    })
                })
                .collect()
        };
        match kind {
            "conv" => {
                let n = counts(&["FILTERS", "SIZE"])?;
                let mut pool = 1;
                if let Some(next) = items.get(index + 1).filter(|s| s.starts_with("pool")) {
                    let next_index = index + 2;
                    let sizes = next
                        .strip_prefix("pool:")
                        .and_then(|p| p.parse::<usize>().ok())
                        .filter(|&p| p > 0);
                    pool = sizes.ok_or_else(|| SpecError::Malformed {
                        index: next_index,
                        item: next.to_string(),
                        what: "expected pool:SIZE with a whole number above 0".to_string(),
                    })?;
                    index += 1;
                }
                layers.push(LayerSpec::ConvPool {
                    filters: n[0],
                    filter: n[1],
                    pool,
                    activation: act,
                });
            }
            "pool" => {
                return Err(SpecError::PoolWithoutConv {
                    index: number,
                    item: item.to_string(),
                })
            }
            "fc" => {
                let n = counts(&["NEURONS"])?;
                layers.push(LayerSpec::FullyConnected {
                    neurons: n[0],
                    activation: act,
                    dropout: drop,
                });
            }
            "softmax" => {
                counts(&[])?;
                layers.push(LayerSpec::Softmax { dropout: drop });
            }
            _ => {
                return Err(SpecError::UnknownKind {
                    index: number,
                    item: item.to_string(),
                    kind: kind.to_string(),
                })
            }
        }
        index += 1;
    }
    Ok(layers)
}

impl LayerSpec {
    /// The text [`parse`] reads back as this layer, with every option spelled out.
    pub fn text(&self) -> String {
        match *self {
            LayerSpec::ConvPool {
                filters,
                filter,
                pool,
                activation,
            } => {
                let pool = if pool > 1 {
                    format!(",pool:{pool}")
                } else {
                    String::new()
                };
                format!("conv:{filters}:{filter}:act={}{pool}", activation.name())
            }
            LayerSpec::FullyConnected {
                neurons,
                activation,
                dropout,
            } => format!("fc:{neurons}:act={}:dropout={dropout}", activation.name()),
            LayerSpec::Softmax { dropout } => format!("softmax:dropout={dropout}"),
        }
    }

    /// The layer's output shape for an `input` shape, given the `classes` of the data.
    fn output(&self, input: Shape, classes: usize) -> Shape {
        match *self {
            LayerSpec::ConvPool {
                filters,
                filter,
                pool,
                ..
            } => [
                filters,
                (input[1] + 1 - filter) / pool,
                (input[2] + 1 - filter) / pool,
            ],
            LayerSpec::FullyConnected { neurons, .. } => [neurons, 1, 1],
            LayerSpec::Softmax { .. } => [classes, 1, 1],
        }
    }
}

/// The text of a whole list, as [`parse`] reads it.
pub fn text(layers: &[LayerSpec]) -> String {
    layers
        .iter()
        .map(LayerSpec::text)
        .collect::<Vec<_>>()
        .join(",")
}

/// Works out every layer's input shape from the data's `input` shape `(channels, height,
/// width)`, refusing a conv larger than its input, a pool that does not divide its maps, a conv
/// after a fully-connected layer, a softmax anywhere but last, and parameter counts past the
/// address space. Returns the shape each layer reads, and last the network's output shape.
pub fn check(layers: &[LayerSpec], input: Shape, classes: usize) -> Result<Vec<Shape>, SpecError> {
    let Some(last) = layers.last() else {
        return Err(SpecError::Empty);
    };
    if input.contains(&0) || classes == 0 {
        return Err(SpecError::EmptyShape { input, classes });
    }
    let mut shapes = vec![input];
    let mut seen_fc = false;
    for (i, layer) in layers.iter().enumerate() {
        let index = i + 1;
        let item = layer.text();
        let shape = shapes[i];
        // What `parse` refuses, refused here too for lists read from model files.
        let (sizes, dropout) = match *layer {
            LayerSpec::ConvPool {
                filters,
                filter,
                pool,
                ..
            } => ([filters, filter, pool], 0.0),
            LayerSpec::FullyConnected {
                neurons, dropout, ..
            } => ([neurons, 1, 1], dropout),
            LayerSpec::Softmax { dropout } => ([1, 1, 1], dropout),
        };
        if sizes.contains(&0) || !(0.0..1.0).contains(&dropout) {
            return Err(SpecError::Malformed {
                index,
                item,
                what: "sizes must be above 0 and dropout at least 0 and below 1".to_string(),
            });
        }
        match *layer {
            LayerSpec::ConvPool { filter, pool, .. } => {
                if seen_fc {
                    return Err(SpecError::ConvAfterFullyConnected { index, item });
                }
                let [_, height, width] = shape;
                if filter > height || filter > width {
                    return Err(SpecError::ConvTooLarge {
                        index,
                        item,
                        filter,
                        height,
                        width,
                    });
                }
                let (h, w) = (height + 1 - filter, width + 1 - filter);
                if h % pool != 0 || w % pool != 0 {
                    return Err(SpecError::PoolDoesNotDivide {
                        index,
                        item,
                        pool,
                        height: h,
                        width: w,
                    });
                }
            }
            LayerSpec::FullyConnected { .. } => seen_fc = true,
            LayerSpec::Softmax { .. } => {
                if index != layers.len() {
                    return Err(SpecError::SoftmaxNotLast { index });
                }
            }
        }
        let out = layer.output(shape, classes);
        let values = parameters(layer, shape, classes)
            .zip(
                out.iter()
                    .try_fold(1u128, |acc, &n| acc.checked_mul(n as u128)),
            )
            .and_then(|(p, o)| p.checked_add(o));
        if values.is_none_or(|v| v > isize::MAX as u128 / 8) {
            return Err(SpecError::TooLarge {
                index,
                item,
                values: values.map_or("more".to_string(), |v| v.to_string()),
            });
        }
        shapes.push(out);
    }
    if !matches!(last, LayerSpec::Softmax { .. }) {
        return Err(SpecError::NoSoftmax(last.text()));
    }
    Ok(shapes)
}

/// Weights and biases of `layer` reading `input`, if the count fits in 128 bits.
pub fn parameters(layer: &LayerSpec, input: Shape, classes: usize) -> Option<u128> {
    let [c, h, w] = input.map(|n| n as u128);
    match *layer {
        LayerSpec::ConvPool {
            filters, filter, ..
        } => {
            let (f, k) = (filters as u128, filter as u128);
            f.checked_mul(c)?
                .checked_mul(k.checked_mul(k)?)?
                .checked_add(f)
        }
        LayerSpec::FullyConnected { neurons, .. } => {
            let n = neurons as u128;
            n.checked_mul(c.checked_mul(h)?.checked_mul(w)?)?
                .checked_add(n)
        }
        LayerSpec::Softmax { .. } => {
            let n = classes as u128;
            n.checked_mul(c.checked_mul(h)?.checked_mul(w)?)?
                .checked_add(n)
        }
    }
}

/// Values (numbers of the network's float type) that training `layers` with passes of `m`
/// examples holds: each layer's weights and biases twice (with their gradients) and its
/// per-example buffers m times — a convolution's unrolled patches, weighted inputs and argmax
/// positions; a dense layer's input and mask; every layer's output and its error. `shapes` as
/// [`check`] returns them. `None` past 128 bits.
pub fn values_needed(
    layers: &[LayerSpec],
    shapes: &[Shape],
    classes: usize,
    m: u128,
) -> Option<u128> {
    let mut total: u128 = 0;
    for (layer, pair) in layers.iter().zip(shapes.windows(2)) {
        let (input, output) = (pair[0], pair[1]);
        let [c, h, w] = input.map(|n| n as u128);
        let out = output
            .iter()
            .try_fold(1u128, |a, &n| a.checked_mul(n as u128))?;
        let per_example = match *layer {
            LayerSpec::ConvPool {
                filters, filter, ..
            } => {
                let k = filter as u128;
                let map = (h + 1 - k).checked_mul(w + 1 - k)?;
                let cols = c.checked_mul(k * k)?.checked_mul(map)?;
                let z = (filters as u128).checked_mul(map)?;
                cols.checked_add(z)?.checked_add(out)?
            }
            // A dense layer's input, dropout mask, input error and the small-batch kernels'
            // packed copy of the input.
            _ => c.checked_mul(h)?.checked_mul(w)?.checked_mul(4)?,
        };
        let buffers = per_example
            .checked_add(out.checked_mul(2)?)?
            .checked_mul(m)?;
        let parameters = parameters(layer, input, classes)?.checked_mul(2)?;
        total = total.checked_add(buffers)?.checked_add(parameters)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MNIST: Shape = [1, 28, 28];

    fn parse_default(text: &str) -> Result<Vec<LayerSpec>, SpecError> {
        parse(text, Activation::Sigmoid, 0.0)
    }

    #[test]
    fn the_books_network_has_the_books_shapes() {
        let layers = parse_default("conv:20:5,pool:2,conv:40:5,pool:2,fc:100,softmax").unwrap();
        assert_eq!(layers.len(), 4);
        let shapes = check(&layers, MNIST, 10).unwrap();
        assert_eq!(
            shapes,
            vec![
                [1, 28, 28],
                [20, 12, 12],
                [40, 4, 4],
                [100, 1, 1],
                [10, 1, 1]
            ]
        );
    }

    #[test]
    fn options_set_one_layer_and_defaults_the_rest() {
        let layers = parse(
            "conv:20:5:act=tanh,pool:2,fc:1000:dropout=0.5,softmax",
            Activation::Relu,
            0.25,
        )
        .unwrap();
        assert_eq!(
            layers,
            vec![
                LayerSpec::ConvPool {
                    filters: 20,
                    filter: 5,
                    pool: 2,
                    activation: Activation::Tanh
                },
                LayerSpec::FullyConnected {
                    neurons: 1000,
                    activation: Activation::Relu,
                    dropout: 0.5
                },
                LayerSpec::Softmax { dropout: 0.25 },
            ]
        );
        let again = parse(&text(&layers), Activation::Sigmoid, 0.0).unwrap();
        assert_eq!(again, layers);
    }

    #[test]
    fn bad_lists_name_the_item() {
        let bad = |text: &str| {
            let e = parse_default(text)
                .and_then(|l| check(&l, MNIST, 10).map(|_| ()))
                .unwrap_err();
            e.to_string()
        };
        assert!(bad("conv:20:5,pool:5,softmax").contains("does not divide the 24×24"));
        assert!(bad("conv:20:29,softmax").contains("larger than its 28×28"));
        assert!(bad("softmax,fc:10").contains("must be the last"));
        assert!(bad("fc:10").contains("last layer must be `softmax`"));
        assert!(bad("lstm:10,softmax").contains("unknown kind `lstm`"));
        assert!(bad("pool:2,softmax").contains("a pool must follow a conv"));
        assert!(bad("fc:100,conv:2:2,softmax").contains("cannot follow a fully-connected"));
        assert!(bad("fc:0,softmax").contains("NEURONS must be a whole number above 0"));
        assert!(bad("fc:10:dropout=1,softmax").contains("dropout must be"));
        assert!(bad("conv:2,softmax").contains("expected conv:FILTERS:SIZE"));
        assert!(bad("softmax:act=relu").contains("not an option of `softmax`"));
        assert!(bad("").contains("empty"));
        assert!(bad("fc:18446744073709551615,softmax").contains("more than this machine"));
    }
}
