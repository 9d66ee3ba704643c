//! The hyperparameters a study can vary — chapter 3's η, λ, mini-batch size, epochs, the
//! network's shape — in one table, [`PARAMS`]: each row says the name `--param` takes, what its
//! values must be ([`Rule`]), which networks it applies to and where it goes in a trial's
//! configuration. The search space's checks ([`super::space`]), a trial's configuration
//! ([`super::objective`]) and `--param`'s help ([`help`]) all read this table.
//!
//! A name may hold a layer's number, counted from 1, where the table writes `N`: `hidden2` is
//! the second hidden layer of a fully-connected network, `conv1.filters` the first conv layer's
//! filters and `fc2.size` the second fc layer's neurons in a chapter-6 layer list.
//!
//! Values arrive as the command line writes them (`0.25`, `30`, `relu`), so that a trial's
//! parameter means what the same `train` option means: `activation` and `dropout` on a layer
//! list are `--activation` and `--dropout`, the defaults of the items that set none.

use crate::config::{Architecture, TrainConfig};
use crate::model::activation::Activation;
use crate::model::cost::Cost;
use crate::model::init::Init;
use crate::model::layers::spec::LayerSpec;

/// What a parameter's values must be: the rules of [`crate::config::TrainConfig::check`],
/// applied to a whole range at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// η: a float above 0.
    Eta,
    /// λ: a float of at least 0.
    Lambda,
    /// A dropout probability: a float in [0, 1).
    Dropout,
    /// Sizes, counts and patiences: whole numbers of at least 1.
    Count,
    /// One of a fixed list of names, as the `train` command line spells them.
    Named(&'static [&'static str]),
}

impl Rule {
    /// Whether `value` obeys the rule, and the rule in words for the message when it does not.
    pub fn admits(self, value: f64) -> (bool, &'static str) {
        match self {
            Rule::Eta => (value > 0.0, "above 0"),
            Rule::Lambda => (value >= 0.0, "at least 0"),
            Rule::Dropout => ((0.0..1.0).contains(&value), "at least 0 and below 1"),
            Rule::Count => (value >= 1.0, "at least 1"),
            Rule::Named(_) => (true, ""),
        }
    }
}

/// The kind of network a parameter applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applies {
    Any,
    /// The fully-connected networks of chapters 1–3 (`--sizes`).
    FullyConnected,
    /// Chapter 6's layer lists (`--layers`).
    Layers,
}

impl Applies {
    /// Whether a parameter of this kind applies to `architecture`.
    pub fn to(self, architecture: &Architecture) -> bool {
        matches!(
            (self, architecture),
            (Applies::Any, _)
                | (Applies::FullyConnected, Architecture::FullyConnected(_))
                | (Applies::Layers, Architecture::Layers(_))
        )
    }
}

/// A chapter-6 layer list as written (`--layers`), with the activation and dropout of the
/// items that set none (`--activation`, `--dropout`): a trial's `activation` and `dropout`
/// replace these defaults and the list is read again.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerList {
    pub text: String,
    pub activation: Activation,
    pub dropout: f64,
}

/// A trial's configuration while its parameters are put in place.
pub struct Draft {
    pub config: TrainConfig,
    /// The layer list's defaults, for a chapter-6 network.
    pub layers: Option<LayerList>,
}

/// Where a parameter goes.
#[derive(Clone, Copy)]
pub enum Target {
    /// Into the configuration, or the layer list's defaults, before the list is read: the
    /// function gets the name's number (0 when it has none) and the value as written, and
    /// returns `None` when the value does not fit.
    Config(fn(&mut Draft, usize, &str) -> Option<()>),
    /// Into the N-th layer of a kind (`conv`, `fc`) once the list is read.
    Layer(LayerKind, fn(&mut LayerSpec, &str) -> Option<()>),
}

/// The layers a name like `conv1.filters` counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// `conv:F:K` items (with the `pool:P` after them).
    Conv,
    /// `fc:N` items.
    Fc,
}

impl LayerKind {
    /// The N-th layer of this kind in `layers` (N from 1).
    pub fn nth(self, layers: &mut [LayerSpec], n: usize) -> Option<&mut LayerSpec> {
        layers
            .iter_mut()
            .filter(|l| self.counts(l))
            .nth(n.checked_sub(1)?)
    }

    /// How many layers of this kind `layers` has.
    pub fn count(self, layers: &[LayerSpec]) -> usize {
        layers.iter().filter(|l| self.counts(l)).count()
    }

    fn counts(self, layer: &LayerSpec) -> bool {
        matches!(
            (self, layer),
            (LayerKind::Conv, LayerSpec::ConvPool { .. })
                | (LayerKind::Fc, LayerSpec::FullyConnected { .. })
        )
    }

    /// The kind as the list writes it.
    pub fn name(self) -> &'static str {
        match self {
            LayerKind::Conv => "conv",
            LayerKind::Fc => "fc",
        }
    }
}

/// One hyperparameter a study can vary.
#[derive(Clone, Copy)]
pub struct Hyper {
    /// The name `--param` takes; `N` stands for a layer's number (from 1).
    pub name: &'static str,
    pub rule: Rule,
    pub applies: Applies,
    /// What it sets, for `--param`'s help and messages.
    pub what: &'static str,
    pub target: Target,
}

/// The values `cost` may take, as on the `train` command line.
pub const COSTS: [&str; 3] = ["quadratic", "cross-entropy", "log-likelihood"];

/// The values `activation` may take, as on the `train` command line.
pub const ACTIVATIONS: [&str; 3] = ["sigmoid", "tanh", "relu"];

/// The values `weight-init` may take, as on the `train` command line: `network2.py`'s
/// `large_weight_initializer` and `default_weight_initializer`.
pub const WEIGHT_INITS: [&str; 2] = ["large", "scaled"];

/// Every hyperparameter a study can vary.
pub const PARAMS: [Hyper; 16] = [
    Hyper {
        name: "eta",
        rule: Rule::Eta,
        applies: Applies::Any,
        what: "the learning rate η",
        target: Target::Config(|d, _, v| set(&mut d.config.sgd.eta, v)),
    },
    Hyper {
        name: "lambda",
        rule: Rule::Lambda,
        applies: Applies::Any,
        what: "the L2 regularisation λ",
        target: Target::Config(|d, _, v| set(&mut d.config.sgd.lambda, v)),
    },
    Hyper {
        name: "mini-batch",
        rule: Rule::Count,
        applies: Applies::Any,
        what: "the mini-batch size",
        target: Target::Config(|d, _, v| set(&mut d.config.sgd.mini_batch_size, v)),
    },
    Hyper {
        name: "epochs",
        rule: Rule::Count,
        applies: Applies::Any,
        what: "the most epochs",
        target: Target::Config(|d, _, v| set(&mut d.config.sgd.epochs, v)),
    },
    Hyper {
        name: "early-stop",
        rule: Rule::Count,
        applies: Applies::Any,
        what: "early stopping's patience, in epochs",
        target: Target::Config(|d, _, v| {
            d.config.sgd.early_stop = Some(v.parse().ok()?);
            Some(())
        }),
    },
    Hyper {
        name: "activation",
        rule: Rule::Named(&ACTIVATIONS),
        applies: Applies::Any,
        what: "the hidden layers' activation (with --layers: of every conv and fc layer that \
               sets none)",
        target: Target::Config(|d, _, v| {
            let activation = choice(v)?;
            match (&mut d.layers, d.config.network.fully_connected_mut()) {
                (Some(list), _) => list.activation = activation,
                (None, Some(fc)) => fc.activation = activation,
                (None, None) => return None,
            }
            Some(())
        }),
    },
    Hyper {
        name: "dropout",
        rule: Rule::Dropout,
        applies: Applies::Any,
        what: "the dropout probability (with --layers: of every fc and softmax layer that \
               sets none)",
        target: Target::Config(|d, _, v| match &mut d.layers {
            Some(list) => set(&mut list.dropout, v),
            None => set(&mut d.config.sgd.dropout, v),
        }),
    },
    Hyper {
        name: "hidden",
        rule: Rule::Count,
        applies: Applies::FullyConnected,
        what: "the neurons of every hidden layer",
        target: Target::Config(|d, _, v| {
            let n = v.parse().ok()?;
            let sizes = &mut d.config.network.fully_connected_mut()?.sizes;
            let hidden = sizes.len().saturating_sub(2);
            sizes[1..=hidden].fill(n);
            Some(())
        }),
    },
    Hyper {
        name: "hiddenN",
        rule: Rule::Count,
        applies: Applies::FullyConnected,
        what: "the neurons of hidden layer N",
        target: Target::Config(|d, n, v| {
            let sizes = &mut d.config.network.fully_connected_mut()?.sizes;
            let hidden = sizes.len().saturating_sub(2);
            if !(1..=hidden).contains(&n) {
                return None;
            }
            set(&mut sizes[n], v)
        }),
    },
    Hyper {
        name: "cost",
        rule: Rule::Named(&COSTS),
        applies: Applies::FullyConnected,
        what: "the cost",
        target: Target::Config(|d, _, v| {
            d.config.network.fully_connected_mut()?.cost = choice::<Cost>(v)?;
            Some(())
        }),
    },
    Hyper {
        name: "weight-init",
        rule: Rule::Named(&WEIGHT_INITS),
        applies: Applies::FullyConnected,
        what: "the initial weights",
        target: Target::Config(|d, _, v| {
            d.config.network.fully_connected_mut()?.init = choice::<Init>(v)?;
            Some(())
        }),
    },
    Hyper {
        name: "convN.filters",
        rule: Rule::Count,
        applies: Applies::Layers,
        what: "the filters (feature maps) of conv layer N",
        target: Target::Layer(LayerKind::Conv, |l, v| match l {
            LayerSpec::ConvPool { filters, .. } => set(filters, v),
            _ => None,
        }),
    },
    Hyper {
        name: "convN.size",
        rule: Rule::Count,
        applies: Applies::Layers,
        what: "the filter size K (K×K) of conv layer N",
        target: Target::Layer(LayerKind::Conv, |l, v| match l {
            LayerSpec::ConvPool { filter, .. } => set(filter, v),
            _ => None,
        }),
    },
    Hyper {
        name: "convN.pool",
        rule: Rule::Count,
        applies: Applies::Layers,
        what: "the max-pooling size P (P×P) after conv layer N",
        target: Target::Layer(LayerKind::Conv, |l, v| match l {
            LayerSpec::ConvPool { pool, .. } => set(pool, v),
            _ => None,
        }),
    },
    Hyper {
        name: "fcN.size",
        rule: Rule::Count,
        applies: Applies::Layers,
        what: "the neurons of fc layer N",
        target: Target::Layer(LayerKind::Fc, |l, v| match l {
            LayerSpec::FullyConnected { neurons, .. } => set(neurons, v),
            _ => None,
        }),
    },
    Hyper {
        name: "fcN.dropout",
        rule: Rule::Dropout,
        applies: Applies::Layers,
        what: "the dropout probability of fc layer N's inputs",
        target: Target::Layer(LayerKind::Fc, |l, v| match l {
            LayerSpec::FullyConnected { dropout, .. } => set(dropout, v),
            _ => None,
        }),
    },
];

/// The row of the table a parameter name matches, with the layer number it holds (0 for
/// names without one), or `None` for a name nndl does not know.
pub fn lookup(name: &str) -> Option<(&'static Hyper, usize)> {
    PARAMS
        .iter()
        .find_map(|hyper| match hyper.name.split_once('N') {
            None => (hyper.name == name).then_some((hyper, 0)),
            Some((before, after)) => {
                let digits = name.strip_prefix(before)?.strip_suffix(after)?;
                let plain = !digits.is_empty()
                    && !digits.starts_with('0')
                    && digits.bytes().all(|b| b.is_ascii_digit());
                let n: usize = digits.parse().ok().filter(|_| plain)?;
                Some((hyper, n))
            }
        })
}

/// The names `--param` takes, as one line: `eta, lambda, …, convN.filters, …`.
pub fn names() -> String {
    PARAMS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

/// `--param`'s help: every name with what it sets, and which networks it applies to.
pub fn help() -> String {
    let mut lines = Vec::with_capacity(PARAMS.len());
    for p in &PARAMS {
        let only = match p.applies {
            Applies::Any => "",
            Applies::FullyConnected => " [--sizes]",
            Applies::Layers => " [--layers]",
        };
        lines.push(format!("  {}: {}{only}", p.name, p.what));
    }
    lines.join("\n")
}

/// Parses `text` into `field`.
fn set<T: std::str::FromStr>(field: &mut T, text: &str) -> Option<()> {
    *field = text.parse().ok()?;
    Some(())
}

/// A choice as the `train` command line spells it (`cross-entropy`, `relu`, …).
fn choice<T: clap::ValueEnum>(text: &str) -> Option<T> {
    T::from_str(text, false).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_with_their_layer_numbers() {
        let found = |name: &str| lookup(name).map(|(h, n)| (h.name, n));
        assert_eq!(found("eta"), Some(("eta", 0)));
        assert_eq!(found("hidden"), Some(("hidden", 0)));
        assert_eq!(found("hidden12"), Some(("hiddenN", 12)));
        assert_eq!(found("conv2.filters"), Some(("convN.filters", 2)));
        assert_eq!(found("fc1.size"), Some(("fcN.size", 1)));
        assert_eq!(found("fc1.dropout"), Some(("fcN.dropout", 1)));
        for unknown in [
            "hidden0",
            "hidden01",
            "hiddenN",
            "conv.filters",
            "conv1.filter",
            "conv1.filters2",
            "fc-1.size",
            "speed",
            "",
        ] {
            assert_eq!(found(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn every_row_is_in_the_help() {
        let help = help();
        for p in &PARAMS {
            assert!(help.contains(p.name), "{}", p.name);
        }
        assert!(names().contains("convN.filters"));
    }
}
