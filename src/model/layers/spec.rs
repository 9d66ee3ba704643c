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
//! layer's input and output shape and refuses what cannot be built, naming the item;
//! [`bytes_needed`] is the memory training a list takes.
//!
//! What is particular to a kind — its keyword, sizes and options, what it needs of its input —
//! is in the kind's module ([`super::kind::KindSpec`]); this module reads and checks a list
//! item by item.

use crate::model::activation::Activation;
use crate::real::Real;

use super::item::{Defaults, Item, Shape, SpecError};
use super::pass;

pub use super::LayerSpec;

/// Reads a layer list. `activation` and `dropout` are the defaults for layers that do not set
/// their own.
pub fn parse(
    text: &str,
    activation: Activation,
    dropout: f64,
) -> Result<Vec<LayerSpec>, SpecError> {
    if text.trim().is_empty() {
        return Err(SpecError::Empty);
    }
    let items: Vec<&str> = text.split(',').map(str::trim).collect();
    let defaults = Defaults {
        activation,
        dropout,
    };
    let mut layers = Vec::new();
    let mut index = 0;
    while index < items.len() {
        let item = Item::new(index + 1, items[index]);
        let (layer, used) = LayerSpec::parse_item(&item, &items[index + 1..], defaults)?;
        layers.push(layer);
        index += used;
    }
    Ok(layers)
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
/// width)`, refusing what a kind cannot be built on (a conv larger than its input, a pool that
/// does not divide its maps, a conv after a fully-connected layer, a softmax anywhere but
/// last), a list not ending in an output layer, and parameter counts past the address space.
/// Returns the shape each layer reads, and last the network's output shape.
pub fn check(layers: &[LayerSpec], input: Shape, classes: usize) -> Result<Vec<Shape>, SpecError> {
    let Some(last) = layers.last() else {
        return Err(SpecError::Empty);
    };
    if input.contains(&0) || classes == 0 {
        return Err(SpecError::EmptyShape { input, classes });
    }
    let mut shapes = vec![input];
    let mut maps = true;
    for (i, layer) in layers.iter().enumerate() {
        let index = i + 1;
        let item = layer.text();
        let shape = shapes[i];
        layer.check(&super::kind::Place {
            index,
            item: &item,
            input: shape,
            maps,
            last: index == layers.len(),
        })?;
        maps &= layer.keeps_maps();
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
    if !last.is_output() {
        return Err(SpecError::NoSoftmax(last.text()));
    }
    Ok(shapes)
}

/// Weights and biases of `layer` reading `input`, if the count fits in 128 bits.
pub fn parameters(layer: &LayerSpec, input: Shape, classes: usize) -> Option<u128> {
    layer.parameters(input, classes)
}

/// Layers a shared training step ([`super::shards`]) runs on each thread's share of the
/// examples: the leading ones that keep feature maps (the convolutions), as long as they drop
/// nothing. The rest — the dense layers — run once on the whole mini-batch, each splitting its
/// neurons between the threads ([`super::dense::split`]).
pub fn shared_head(layers: &[LayerSpec]) -> usize {
    layers
        .iter()
        .position(|l| !l.keeps_maps() || l.dropout() > 0.0)
        .unwrap_or(layers.len())
}

/// Bytes that training `layers` on mini-batches of `m` examples on `threads` threads holds,
/// with floats of type `F`: the network's parameters and every buffer of its training passes
/// — exactly what [`pass::Pass::new`] (one thread) or [`super::shards::Shards::new`] allocate,
/// from the same declarations ([`pass::buffers`]) — and of one evaluation pass of
/// [`pass::EVAL_CHUNK`] examples per thread. `shapes` as [`check`] returns them. `None` past
/// 128 bits.
pub fn bytes_needed<F: Real>(
    layers: &[LayerSpec],
    shapes: &[Shape],
    classes: usize,
    m: usize,
    threads: usize,
) -> Option<u128> {
    let mut total: u128 = 0;
    for (layer, &input) in layers.iter().zip(shapes) {
        let values = parameters(layer, input, classes)?;
        total = total.checked_add(values.checked_mul(std::mem::size_of::<F>() as u128)?)?;
    }
    let pass = |n: usize, m: usize, training: bool, parts: usize| -> Option<u128> {
        let (own, per_layer) = pass::buffers::<F>(&layers[..n], &shapes[..=n], m, training, parts)?;
        own.iter()
            .chain(per_layer.iter().flatten())
            .try_fold(0u128, |sum, b| sum.checked_add(b.bytes::<F>()?))
    };
    let threads = threads.max(1);
    let parts = threads.min(m.max(1));
    total = total.checked_add(pass(layers.len(), m, true, parts)?)?;
    let head = shared_head(layers);
    if parts > 1 && head > 0 {
        let share = pass(head, m.div_ceil(parts), true, 1)?;
        total = total.checked_add(share.checked_mul(parts as u128)?)?;
    }
    let evaluation = pass(layers.len(), pass::EVAL_CHUNK, false, 1)?;
    total.checked_add(evaluation.checked_mul(threads as u128)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::layers::conv_pool::ConvPoolSpec;
    use crate::model::layers::fully_connected::FullyConnectedSpec;
    use crate::model::layers::softmax::SoftmaxSpec;

    const MNIST: Shape = [1, 28, 28];

    fn parse_default(text: &str) -> Result<Vec<LayerSpec>, SpecError> {
        parse(text, Activation::Sigmoid, 0.0)
    }

    /// An unknown option names the ones the kind has (`drop=` for `dropout=` said only that
    /// it was not one).
    #[test]
    fn an_unknown_option_lists_the_kinds_options() {
        let err = parse_default("fc:30:drop=0.5,softmax")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`drop` is not an option of `fc`; its options are "),
            "{err}"
        );
        assert!(err.contains("dropout="), "{err}");
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
                LayerSpec::ConvPool(ConvPoolSpec {
                    filters: 20,
                    filter: 5,
                    pool: 2,
                    activation: Activation::Tanh
                }),
                LayerSpec::FullyConnected(FullyConnectedSpec {
                    neurons: 1000,
                    activation: Activation::Relu,
                    dropout: 0.5
                }),
                LayerSpec::Softmax(SoftmaxSpec { dropout: 0.25 }),
            ]
        );
        let again = parse(&text(&layers), Activation::Sigmoid, 0.0).unwrap();
        assert_eq!(again, layers);
    }

    /// The JSON of a list, as model files, checkpoints and tuning studies store it.
    #[test]
    fn the_json_form_is_one_object_per_item_tagged_by_kind() {
        let layers = parse(
            "conv:20:5,pool:2,fc:100:dropout=0.5,softmax",
            Activation::Relu,
            0.0,
        )
        .unwrap();
        let json = serde_json::to_string(&layers).unwrap();
        assert_eq!(
            json,
            r#"[{"kind":"conv-pool","filters":20,"filter":5,"pool":2,"activation":"relu"},"#
                .to_string()
                + r#"{"kind":"fully-connected","neurons":100,"activation":"relu","dropout":0.5},"#
                + r#"{"kind":"softmax","dropout":0.0}]"#
        );
        let back: Vec<LayerSpec> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, layers);
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
