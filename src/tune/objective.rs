//! What a trial trains: the study's fixed configuration with the trial's parameters put in
//! place, by their command-line names. The network's shape keeps the base's number of hidden
//! layers; `hidden` sets the size of every one, `hiddenN` the size of the N-th.

use crate::config::TrainConfig;
use crate::model::activation::Activation;
use crate::model::cost::Cost;
use crate::model::init::Init;

use super::space::{hidden_layer, Params, Value};

/// A parameter value that does not fit the configuration it is put into.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ApplyError {
    #[error("{name}={value} is not a value for {name}")]
    Value { name: String, value: String },
    #[error("{name} names hidden layer {layer}, but sizes {sizes:?} have {hidden} hidden layers")]
    NoSuchLayer {
        name: String,
        layer: usize,
        hidden: usize,
        sizes: Vec<usize>,
    },
    #[error("{0} is not a parameter nndl can vary")]
    Unknown(String),
}

/// `base` with `params` in place.
pub fn apply(base: &TrainConfig, params: &Params) -> Result<TrainConfig, ApplyError> {
    let mut config = base.clone();
    for (name, value) in params {
        let bad = || ApplyError::Value {
            name: name.clone(),
            value: value.to_string(),
        };
        let float = || value.as_f64().ok_or_else(bad);
        let count = || {
            value
                .as_i64()
                .and_then(|v| usize::try_from(v).ok())
                .ok_or_else(bad)
        };
        let sizes = &mut config.network.sizes;
        let hidden = sizes.len().saturating_sub(2);
        match name.as_str() {
            "eta" => config.sgd.eta = float()?,
            "lambda" => config.sgd.lambda = float()?,
            "dropout" => config.sgd.dropout = float()?,
            "mini-batch" => config.sgd.mini_batch_size = count()?,
            "epochs" => config.sgd.epochs = count()?,
            "early-stop" => config.sgd.early_stop = Some(count()?),
            "hidden" => {
                let n = count()?;
                for size in &mut sizes[1..=hidden] {
                    *size = n;
                }
            }
            "cost" => config.network.cost = choice::<Cost>(value).ok_or_else(bad)?,
            "activation" => {
                config.network.activation = choice::<Activation>(value).ok_or_else(bad)?
            }
            "weight-init" => config.network.init = choice::<Init>(value).ok_or_else(bad)?,
            other => match hidden_layer(other) {
                Some(layer) if (1..=hidden).contains(&layer) => sizes[layer] = count()?,
                Some(layer) => {
                    return Err(ApplyError::NoSuchLayer {
                        name: name.clone(),
                        layer,
                        hidden,
                        sizes: sizes.clone(),
                    })
                }
                None => return Err(ApplyError::Unknown(name.clone())),
            },
        }
    }
    Ok(config)
}

/// A choice as the `train` command line spells it (`cross-entropy`, `relu`, …).
fn choice<T: clap::ValueEnum>(value: &Value) -> Option<T> {
    match value {
        Value::Choice(text) => T::from_str(text, false).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Variant;

    fn params(pairs: &[(&str, Value)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn every_parameter_lands_in_its_place() {
        let mut base = TrainConfig::book_run(Variant::Network3);
        base.network.sizes = vec![784, 30, 20, 10];
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
        let c = apply(&base, &p).unwrap();
        assert_eq!(c.sgd.eta, 0.25);
        assert_eq!(c.sgd.lambda, 2.0);
        assert_eq!(c.sgd.dropout, 0.1);
        assert_eq!(c.sgd.mini_batch_size, 20);
        assert_eq!(c.sgd.epochs, 7);
        assert_eq!(c.sgd.early_stop, Some(3));
        // `hidden` sets both layers, then `hidden2` (later in name order) the second.
        assert_eq!(c.network.sizes, [784, 50, 40, 10]);
        assert_eq!(c.network.cost, Cost::LogLikelihood);
        assert_eq!(c.network.activation, Activation::Relu);
        assert_eq!(base.network.init, Init::ScaledNormal);
        assert_eq!(c.network.init, Init::StandardNormal);
        assert_eq!(c.seed, base.seed);
    }

    #[test]
    fn values_that_do_not_fit_are_refused() {
        let base = TrainConfig::book_run(Variant::Network3);
        for (p, want) in [
            (params(&[("hidden2", Value::Int(5))]), "hidden layer 2"),
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
        ] {
            let err = apply(&base, &p).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }
}
