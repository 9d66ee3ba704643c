//! One item of a chapter-6 layer list as `--layers` writes it (`fc:100:act=relu:dropout=0.5`):
//! its words ([`Item`]), the defaults of the options it leaves out ([`Defaults`]), the shape of
//! the activations between layers ([`Shape`]), and what can be wrong with a list
//! ([`SpecError`]). Each kind reads its own items ([`super::kind::KindSpec::parse`]);
//! [`super::spec`] reads the list.

use crate::model::activation::Activation;

/// The defaults of options a list item may leave out (`--activation`, `--dropout`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Defaults {
    pub activation: Activation,
    pub dropout: f64,
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

/// One item of the list being read: `kind:positional:key=value:…`.
#[derive(Clone, Debug)]
pub struct Item<'a> {
    /// Counted from 1.
    pub index: usize,
    pub text: &'a str,
    /// The word before the first `:`.
    pub kind: &'a str,
    positional: Vec<&'a str>,
    options: Vec<&'a str>,
}

impl<'a> Item<'a> {
    pub(super) fn new(index: usize, text: &'a str) -> Self {
        let mut parts = text.split(':');
        let kind = parts.next().unwrap_or_default();
        let (positional, options) = parts.partition(|p| !p.contains('='));
        Item {
            index,
            text,
            kind,
            positional,
            options,
        }
    }

    /// [`SpecError::Malformed`] for this item.
    pub fn malformed(&self, what: String) -> SpecError {
        SpecError::Malformed {
            index: self.index,
            item: self.text.to_string(),
            what,
        }
    }

    /// The options `act=` and `dropout=` where `allowed` (by key), `defaults` for the others;
    /// refuses any other key and a value that is not an activation or a probability below 1.
    pub fn options(&self, allowed: &[&str], defaults: Defaults) -> Result<Defaults, SpecError> {
        let mut read = defaults;
        for option in &self.options {
            let (key, value) = option.split_once('=').unwrap_or_default();
            if !allowed.contains(&key) {
                let options: Vec<String> = allowed.iter().map(|k| format!("{k}=")).collect();
                return Err(self.malformed(match options.is_empty() {
                    true => format!("`{}` takes no options", self.kind),
                    false => format!(
                        "`{}` is not an option of `{}`; its options are {}",
                        crate::data::quote(key),
                        self.kind,
                        options.join(", ")
                    ),
                }));
            }
            match key {
                "act" => {
                    read.activation = <Activation as clap::ValueEnum>::from_str(value, true)
                        .map_err(|_| {
                            self.malformed(format!(
                                "unknown activation `{value}` (sigmoid, tanh or relu)"
                            ))
                        })?
                }
                _ => {
                    read.dropout = value
                        .parse::<f64>()
                        .ok()
                        .filter(|p| (0.0..1.0).contains(p))
                        .ok_or_else(|| {
                            self.malformed(format!(
                            "dropout must be a probability at least 0 and below 1, got `{value}`"
                        ))
                        })?
                }
            }
        }
        Ok(read)
    }

    /// The positional sizes `names`, each a whole number above 0.
    pub fn counts<const N: usize>(&self, names: [&str; N]) -> Result<[usize; N], SpecError> {
        if self.positional.len() != N {
            return Err(self.malformed(format!(
                "expected {}{}",
                self.kind,
                names.iter().map(|n| format!(":{n}")).collect::<String>()
            )));
        }
        let mut counts = [0; N];
        for ((count, p), name) in counts.iter_mut().zip(&self.positional).zip(names) {
            *count = p.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
                self.malformed(format!("{name} must be a whole number above 0, got `{p}`"))
            })?;
        }
        Ok(counts)
    }
}
