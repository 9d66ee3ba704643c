//! What a trial trains: the study's fixed configuration with the trial's parameters put in
//! place, each where the table of [`super::hyper`] says. For a fully-connected network the
//! shape keeps the base's number of hidden layers (`hidden` sets the size of every one,
//! `hiddenN` the N-th); for a chapter-6 layer list, the list is read again with the trial's
//! `activation` and `dropout` as its defaults, then `convN.…` and `fcN.…` change the N-th conv
//! or fc layer.

use crate::config::{Architecture, TrainConfig};
use crate::model::layers::item::SpecError;
use crate::model::layers::spec;

use super::hyper::{lookup, Applies, Draft, Hyper, LayerList, Name, Target};
use super::space::{Params, Value};

/// A parameter value that does not fit the configuration it is put into.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ApplyError {
    #[error("{name}={value} is not a value for {name}")]
    Value { name: String, value: String },
    #[error("{name} names {kind} layer {layer}, but {network} has {count}")]
    NoSuchLayer {
        name: String,
        kind: &'static str,
        layer: usize,
        count: usize,
        network: String,
    },
    #[error(
        "{name} applies to {applies}, and this study trains {network}",
        applies = if *.layers { "chapter 6's layer lists (--layers)" } else { "the fully-connected networks (--sizes)" }
    )]
    NotForNetwork {
        name: String,
        /// True for a parameter of layer lists.
        layers: bool,
        network: String,
    },
    #[error("{0} is not a parameter nndl can vary")]
    Unknown(String),
    #[error("the layer list with {params}: {source}")]
    Layers { params: String, source: SpecError },
}

/// `base` with `params` in place; `layers` is the layer list as written, for a chapter-6
/// network (the base's own list is that text read with the base's defaults).
pub fn apply(
    base: &TrainConfig,
    layers: Option<&LayerList>,
    params: &Params,
) -> Result<TrainConfig, ApplyError> {
    let mut draft = Draft {
        config: base.clone(),
        layers: layers.cloned(),
    };
    let found = params
        .iter()
        .map(|(name, value)| {
            let (hyper, n) = lookup(name).ok_or_else(|| ApplyError::Unknown(name.clone()))?;
            if !hyper.applies.to(&base.network.architecture) {
                return Err(ApplyError::NotForNetwork {
                    name: name.clone(),
                    layers: hyper.applies == Applies::Layers,
                    network: base.network.describe(),
                });
            }
            Ok((name, value, hyper, n))
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_layer_numbers(base, &found)?;
    let bad = |name: &str, value: &Value| ApplyError::Value {
        name: name.to_string(),
        value: value.to_string(),
    };
    for &(name, value, hyper, n) in &found {
        if let Target::Config(put) = hyper.target {
            put(&mut draft, n, &value.to_string()).ok_or_else(|| bad(name, value))?;
        }
    }
    if let Some(list) = &draft.layers {
        let mut specs =
            spec::parse(&list.text, list.activation, list.dropout).map_err(|source| {
                ApplyError::Layers {
                    params: params_text(params),
                    source,
                }
            })?;
        for &(name, value, hyper, n) in &found {
            if let Target::Layer {
                keyword,
                name: number,
            } = hyper.target
            {
                let count = specs.iter().filter(|l| l.keyword() == keyword).count();
                let layer = specs
                    .iter_mut()
                    .filter(|l| l.keyword() == keyword)
                    .nth(n.wrapping_sub(1))
                    .ok_or_else(|| ApplyError::NoSuchLayer {
                        name: name.clone(),
                        kind: keyword,
                        layer: n,
                        count,
                        network: base.network.describe(),
                    })?;
                layer
                    .set_tunable(number, &value.to_string())
                    .ok_or_else(|| bad(name, value))?;
            }
        }
        draft.config.network.architecture = Architecture::Layers(specs);
    }
    Ok(draft.config)
}

/// A `hiddenN` beyond the base's hidden layers, refused with the layer and how many there are
/// (before its setter, which would only decline the value).
fn check_layer_numbers(
    base: &TrainConfig,
    found: &[(&String, &Value, Hyper, usize)],
) -> Result<(), ApplyError> {
    let Some(fc) = base.network.fully_connected() else {
        return Ok(());
    };
    let hidden = fc.sizes.len().saturating_sub(2);
    match found
        .iter()
        .find(|(_, _, h, n)| h.name == Name::Plain("hiddenN") && *n > hidden)
    {
        Some((name, _, _, n)) => Err(ApplyError::NoSuchLayer {
            name: name.to_string(),
            kind: "hidden",
            layer: *n,
            count: hidden,
            network: base.network.describe(),
        }),
        None => Ok(()),
    }
}

/// `a=1 b=2`, for messages.
pub fn params_text(params: &Params) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Variant;
    use crate::model::activation::Activation;
    use crate::model::cost::Cost;
    use crate::model::init::Init;

    fn params(pairs: &[(&str, Value)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn every_parameter_lands_in_its_place() {
        let mut base = TrainConfig::book_run(Variant::Network3);
        base.network.fully_connected_mut().unwrap().sizes = vec![784, 30, 20, 10];
        let p = params(&[
            ("eta", Value::Float(0.25)),
            ("lambda", Value::Float(2.0)),
            ("dropout", Value::Float(0.1)),
            ("mini-batch", Value::Choice("20".into())),
            ("epochs", Value::Int(7)),
            ("early-stop", Value::Int(3)),
            ("hidden", Value::Int(50)),
            ("hidden2", Value::Int(40)),
            ("cost", Value::Choice("log-likelihood".into())),
            ("activation", Value::Choice("relu".into())),
            ("weight-init", Value::Choice("large".into())),
        ]);
        let c = apply(&base, None, &p).unwrap();
        assert_eq!(c.sgd.eta, 0.25);
        assert_eq!(c.sgd.lambda, 2.0);
        assert_eq!(c.sgd.dropout, 0.1);
        assert_eq!(c.sgd.mini_batch_size, 20);
        assert_eq!(c.sgd.epochs, 7);
        assert_eq!(c.sgd.early_stop, Some(3));
        let fc = c.network.fully_connected().unwrap();
        // `hidden` sets both layers, then `hidden2` (later in name order) the second.
        assert_eq!(fc.sizes, [784, 50, 40, 10]);
        assert_eq!(fc.cost, Cost::LogLikelihood);
        assert_eq!(fc.activation, Activation::Relu);
        assert_eq!(
            base.network.fully_connected().unwrap().init,
            Init::ScaledNormal
        );
        assert_eq!(fc.init, Init::StandardNormal);
        assert_eq!(c.seed, base.seed);
    }

    fn layered(text: &str) -> (TrainConfig, LayerList) {
        let list = LayerList {
            text: text.into(),
            activation: Activation::Sigmoid,
            dropout: 0.0,
        };
        let mut base = TrainConfig::book_run(Variant::Network3);
        base.network.architecture =
            Architecture::Layers(spec::parse(text, list.activation, list.dropout).unwrap());
        base.sgd.lambda = 0.0;
        (base, list)
    }

    #[test]
    fn a_layer_list_takes_its_defaults_and_its_layers_numbers() {
        let (base, list) =
            layered("conv:20:5,pool:2,conv:40:5:act=tanh,pool:2,fc:100,fc:30:dropout=0.2,softmax");
        let p = params(&[
            ("activation", Value::Choice("relu".into())),
            ("dropout", Value::Float(0.5)),
            ("conv2.filters", Value::Int(16)),
            ("conv1.size", Value::Int(3)),
            ("conv1.pool", Value::Int(1)),
            ("fc1.size", Value::Int(64)),
            ("eta", Value::Float(0.03)),
        ]);
        let c = apply(&base, Some(&list), &p).unwrap();
        // An item's own act= and dropout= are kept: the trial's are only the defaults.
        let want = "conv:20:3:act=relu,conv:16:5:act=tanh,pool:2,fc:64:act=relu:dropout=0.5,\
                    fc:30:act=relu:dropout=0.2,softmax:dropout=0.5";
        let want = spec::parse(want, Activation::Sigmoid, 0.0).unwrap();
        assert_eq!(c.network.layers().unwrap(), want);
        assert_eq!(c.sgd.eta, 0.03);
        assert_eq!(c.sgd.dropout, 0.0);
        // The base is the list read with the base's defaults.
        assert_eq!(apply(&base, Some(&list), &Params::new()).unwrap(), base);
    }

    #[test]
    fn values_that_do_not_fit_are_refused() {
        let base = TrainConfig::book_run(Variant::Network3);
        for (p, want) in [
            (
                params(&[("hidden2", Value::Int(5))]),
                "hidden layer 2, but sizes [784, 30, 10] has 1",
            ),
            (
                params(&[("cost", Value::Choice("hinge".into()))]),
                "cost=hinge",
            ),
            (params(&[("mini-batch", Value::Int(-1))]), "mini-batch=-1"),
            (
                params(&[("weight-init", Value::Choice("xavier".into()))]),
                "weight-init=xavier",
            ),
            (
                params(&[("speed", Value::Int(1))]),
                "speed is not a parameter",
            ),
            (
                params(&[("conv1.filters", Value::Int(4))]),
                "conv1.filters applies to chapter 6's layer lists (--layers), and this study \
                 trains sizes [784, 30, 10]",
            ),
        ] {
            let err = apply(&base, None, &p).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
        let (base, list) = layered("conv:20:5,pool:2,fc:100,softmax");
        for (p, want) in [
            (
                params(&[("conv2.filters", Value::Int(4))]),
                "conv2.filters names conv layer 2, but layers conv:20:5",
            ),
            (
                params(&[("hidden", Value::Int(4))]),
                "hidden applies to the fully-connected networks (--sizes)",
            ),
            (
                params(&[("conv1.size", Value::Int(29))]),
                "larger than its 28×28 input",
            ),
        ] {
            let result = apply(&base, Some(&list), &p).and_then(|c| {
                c.check()
                    .map(|_| c)
                    .map_err(|e| ApplyError::Unknown(e.to_string()))
            });
            let err = result.unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }
}
