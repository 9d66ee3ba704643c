//! The hyperparameters a study can vary — chapter 3's η, λ, mini-batch size, epochs, the
//! network's shape — in one table, [`PARAMS`]: each row says the name `--param` takes, what its
//! values must be ([`Rule`]), which networks it applies to and where it goes in a trial's
//! configuration. The numbers of a chapter-6 layer list (`conv1.filters`) are the layer kinds'
//! own: each kind lists them beside its item
//! ([`crate::model::layers::kind::KindSpec::TUNABLE`]), and [`lookup`] finds them there. The
//! search space's checks ([`super::space`]), a trial's configuration ([`super::objective`]) and
//! `--param`'s help ([`help`]) all read these.
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
use crate::model::layers::kind::{put, Bound, TunableName};
use crate::model::layers::LayerSpec;

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
    /// Into the N-th layer of the kind named by `keyword` once the list is read: its tunable
    /// number `name` ([`LayerSpec::set_tunable`]).
    Layer {
        keyword: &'static str,
        name: &'static str,
    },
}

/// A parameter's name, as `--param` takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name {
    /// A row of [`PARAMS`]: `eta`, or `hiddenN` with `N` for a layer's number.
    Plain(&'static str),
    /// `KEYWORDN.NAME`, a layer kind's tunable number: `conv` and `filters` for `convN.filters`.
    Layer(&'static str, &'static str),
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Name::Plain(name) => f.write_str(name),
            Name::Layer(keyword, name) => write!(f, "{keyword}N.{name}"),
        }
    }
}

/// One hyperparameter a study can vary.
#[derive(Clone, Copy)]
pub struct Hyper {
    /// The name `--param` takes; `N` stands for a layer's number (from 1).
    pub name: Name,
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
pub const PARAMS: [Hyper; 11] = [
    Hyper {
        name: Name::Plain("eta"),
        rule: Rule::Eta,
        applies: Applies::Any,
        what: "the learning rate η",
        target: Target::Config(|d, _, v| put(&mut d.config.sgd.eta, v)),
    },
    Hyper {
        name: Name::Plain("lambda"),
        rule: Rule::Lambda,
        applies: Applies::Any,
        what: "the L2 regularisation λ",
        target: Target::Config(|d, _, v| put(&mut d.config.sgd.lambda, v)),
    },
    Hyper {
        name: Name::Plain("mini-batch"),
        rule: Rule::Count,
        applies: Applies::Any,
        what: "the mini-batch size",
        target: Target::Config(|d, _, v| put(&mut d.config.sgd.mini_batch_size, v)),
    },
    Hyper {
        name: Name::Plain("epochs"),
        rule: Rule::Count,
        applies: Applies::Any,
        what: "the most epochs",
        target: Target::Config(|d, _, v| put(&mut d.config.sgd.epochs, v)),
    },
    Hyper {
        name: Name::Plain("early-stop"),
        rule: Rule::Count,
        applies: Applies::Any,
        what: "early stopping's patience, in epochs",
        target: Target::Config(|d, _, v| {
            d.config.sgd.early_stop = Some(v.parse().ok()?);
            Some(())
        }),
    },
    Hyper {
        name: Name::Plain("activation"),
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
        name: Name::Plain("dropout"),
        rule: Rule::Dropout,
        applies: Applies::Any,
        what: "the dropout probability (with --layers: of every fc and softmax layer that \
               sets none)",
        target: Target::Config(|d, _, v| match &mut d.layers {
            Some(list) => put(&mut list.dropout, v),
            None => put(&mut d.config.sgd.dropout, v),
        }),
    },
    Hyper {
        name: Name::Plain("hidden"),
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
        name: Name::Plain("hiddenN"),
        rule: Rule::Count,
        applies: Applies::FullyConnected,
        what: "the neurons of hidden layer N",
        target: Target::Config(|d, n, v| {
            let sizes = &mut d.config.network.fully_connected_mut()?.sizes;
            let hidden = sizes.len().saturating_sub(2);
            if !(1..=hidden).contains(&n) {
                return None;
            }
            put(&mut sizes[n], v)
        }),
    },
    Hyper {
        name: Name::Plain("cost"),
        rule: Rule::Named(&COSTS),
        applies: Applies::FullyConnected,
        what: "the cost",
        target: Target::Config(|d, _, v| {
            d.config.network.fully_connected_mut()?.cost = choice::<Cost>(v)?;
            Some(())
        }),
    },
    Hyper {
        name: Name::Plain("weight-init"),
        rule: Rule::Named(&WEIGHT_INITS),
        applies: Applies::FullyConnected,
        what: "the initial weights",
        target: Target::Config(|d, _, v| {
            d.config.network.fully_connected_mut()?.init = choice::<Init>(v)?;
            Some(())
        }),
    },
];

/// The parameter a name means, with the layer number it holds (0 for names without one), or
/// `None` for a name nndl does not know: a row of [`PARAMS`], or `KEYWORDN.NAME`, the N-th layer
/// of a kind and one of its tunable numbers.
pub fn lookup(name: &str) -> Option<(Hyper, usize)> {
    let row = PARAMS.iter().find_map(|hyper| {
        let Name::Plain(pattern) = hyper.name else {
            return None;
        };
        match pattern.split_once('N') {
            None => (pattern == name).then_some((*hyper, 0)),
            Some((before, after)) => {
                let digits = name.strip_prefix(before)?.strip_suffix(after)?;
                Some((*hyper, layer_number(digits)?))
            }
        }
    });
    row.or_else(|| {
        let (layer, number_name) = name.split_once('.')?;
        let at = layer.find(|c: char| c.is_ascii_digit())?;
        let (keyword, digits) = layer.split_at(at);
        let n = layer_number(digits)?;
        let tunable = LayerSpec::tunables()
            .into_iter()
            .find(|t| t.keyword == keyword && t.name == number_name)?;
        Some((layer_param(tunable), n))
    })
}

/// A layer kind's tunable number as a parameter.
fn layer_param(tunable: TunableName) -> Hyper {
    Hyper {
        name: Name::Layer(tunable.keyword, tunable.name),
        rule: match tunable.bound {
            Bound::Count => Rule::Count,
            Bound::Probability => Rule::Dropout,
        },
        applies: Applies::Layers,
        what: tunable.what,
        target: Target::Layer {
            keyword: tunable.keyword,
            name: tunable.name,
        },
    }
}

/// A layer's number as a name writes it: digits, from 1, without leading zeros.
fn layer_number(digits: &str) -> Option<usize> {
    let plain = !digits.is_empty()
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit());
    digits.parse().ok().filter(|_| plain)
}

/// Every parameter: the rows of [`PARAMS`], then the layer kinds' numbers.
fn all() -> Vec<Hyper> {
    let layers = LayerSpec::tunables().into_iter().map(layer_param);
    PARAMS.iter().copied().chain(layers).collect()
}

/// The names `--param` takes, as one line: `eta, lambda, …, convN.filters, …`.
pub fn names() -> String {
    all()
        .iter()
        .map(|p| p.name.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `--param`'s help: every name with what it sets, and which networks it applies to.
pub fn help() -> String {
    let mut lines = Vec::new();
    for p in all() {
        let only = match p.applies {
            Applies::Any => "",
            Applies::FullyConnected => " [--sizes]",
            Applies::Layers => " [--layers]",
        };
        lines.push(format!("  {}: {}{only}", p.name, p.what));
    }
    lines.join("\n")
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
        let found = |name: &str| lookup(name).map(|(h, n)| (h.name.to_string(), n));
        let want = |name: &str, n| Some((name.to_string(), n));
        assert_eq!(found("eta"), want("eta", 0));
        assert_eq!(found("hidden"), want("hidden", 0));
        assert_eq!(found("hidden12"), want("hiddenN", 12));
        assert_eq!(found("conv2.filters"), want("convN.filters", 2));
        assert_eq!(found("conv1.size"), want("convN.size", 1));
        assert_eq!(found("conv1.pool"), want("convN.pool", 1));
        assert_eq!(found("fc1.size"), want("fcN.size", 1));
        assert_eq!(found("fc1.dropout"), want("fcN.dropout", 1));
        for unknown in [
            "hidden0",
            "hidden01",
            "hiddenN",
            "conv.filters",
            "conv1.filter",
            "conv1.filters2",
            "fc-1.size",
            "pool1.filters",
            "softmax1.size",
            "fc1.filters",
            "speed",
            "",
        ] {
            assert_eq!(found(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn every_row_is_in_the_help() {
        let help = help();
        for p in all() {
            assert!(help.contains(&p.name.to_string()), "{}", p.name);
        }
        for name in [
            "convN.filters",
            "convN.size",
            "convN.pool",
            "fcN.size",
            "fcN.dropout",
        ] {
            assert!(names().contains(name), "{name}");
        }
    }
}
