//! `nndl eval` and `nndl predict`: a saved network scored on a set of MNIST, or reading the
//! reader's own digits from PNG images.

use std::path::{Path, PathBuf};

use crate::config::{check_sizes_against, SgdConfig};
use crate::data::{image, CLASSES, IMAGE_PIXELS};
use crate::model::file;
use crate::model::network::{argmax, Network};
use crate::report::console::say;

use super::{load_data, EvalSet, RunError};

/// `nndl eval`: scores the network saved at `model` on the `on` set of the data at `data`
/// (the MNIST pickle or a directory of IDX files, its validation set the last
/// `validation_size` training images when given), with λ for the cost's L2 term (default: the
/// λ the model was trained with, if its file says, else 0).
pub fn eval(
    model: &Path,
    on: EvalSet,
    lambda: Option<f64>,
    data: &Path,
    validation_size: Option<usize>,
) -> Result<(), RunError> {
    let (net, config): (Network, _) = file::load_with_config(model)?;
    check_sizes_against(&net.sizes, IMAGE_PIXELS, CLASSES).map_err(|source| {
        RunError::ModelMismatch {
            path: model.to_path_buf(),
            source,
        }
    })?;
    let lambda = lambda
        .or(config.as_ref().map(|c| c.sgd.lambda))
        .unwrap_or(0.0);
    SgdConfig::check_lambda(lambda)?;
    let mnist = load_data(data, validation_size)?;
    let (_, data) = on.pick(mnist);
    say(&format!(
        "{}: sizes {:?}, {} hidden layers, {} output layer, {} cost",
        model.display(),
        net.sizes,
        net.activation.name(),
        net.output().name(),
        net.cost.name()
    ));
    if let Some(c) = config {
        let sgd = &c.sgd;
        say(&format!(
            "Trained with eta {}, lambda {}, dropout {}, mini-batch {}, up to {} epochs, seed {}, {}",
            sgd.eta,
            sgd.lambda,
            sgd.dropout,
            sgd.mini_batch_size,
            sgd.epochs,
            c.seed,
            c.network.precision.name()
        ));
    }
    let correct = net.evaluate(&data);
    say(&format!(
        "Accuracy on the {} data: {correct} / {} ({:.2}%)",
        on.name(),
        data.len(),
        100.0 * correct as f64 / data.len() as f64
    ));
    say(&format!(
        "Cost on the {} data (lambda {lambda}): {:.6}",
        on.name(),
        net.total_cost(&data, lambda)
    ));
    Ok(())
}

/// `nndl predict`: the digit the network saved at `model` reads in each of `images`.
pub fn predict(model: &Path, images: &[PathBuf]) -> Result<(), RunError> {
    let net: Network = file::load(model)?;
    check_sizes_against(&net.sizes, IMAGE_PIXELS, CLASSES).map_err(|source| {
        RunError::ModelMismatch {
            path: model.to_path_buf(),
            source,
        }
    })?;
    for path in images {
        let x = image::read_digit(path)?;
        let a = net.feedforward(x.view());
        let digit = argmax(a.iter().copied());
        let activations: Vec<String> = a.iter().map(|v| format!("{v:.3}")).collect();
        say(&format!(
            "{}: {digit}   (output activations 0–9: {})",
            path.display(),
            activations.join(" ")
        ));
    }
    Ok(())
}
