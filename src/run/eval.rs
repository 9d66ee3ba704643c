//! `nndl eval`, `nndl predict` and `nndl vote`: saved networks — fully connected
//! (`network2.py`'s JSON) or chapter 6's layers — scored on a set of MNIST, reading the
//! reader's own digits from PNG images, or voting as an ensemble (chapter 6's 99.67%).

use std::path::{Path, PathBuf};

use ndarray::Array2;

use crate::config::{check_shape, check_sizes_against, SgdConfig, TrainConfig};
use crate::data::{image, Dataset, CLASSES, IMAGE_PIXELS, IMAGE_SHAPE};
use crate::model::file::{self, SavedModel};
use crate::model::layers::spec;
use crate::model::network::{argmax, count_correct};
use crate::report::console::{count, say};

use std::io::Write;

use crate::output::write_atomically;

use super::{check_output, load_data, EvalSet, RunError};

/// Loads the model at `path` and checks it reads MNIST's images and names its 10 digits.
pub(super) fn load(path: &Path) -> Result<(SavedModel, Option<TrainConfig>), RunError> {
    let (model, config) = file::load_model(path)?;
    let mismatch = |source| RunError::ModelMismatch {
        path: path.to_path_buf(),
        source,
    };
    match &model {
        SavedModel::FullyConnected(net) => {
            check_sizes_against(&net.sizes, IMAGE_PIXELS, CLASSES).map_err(mismatch)?
        }
        SavedModel::Layers(net) => {
            if net.input != IMAGE_SHAPE {
                return Err(mismatch(crate::config::ConfigError::InputSize {
                    expected: IMAGE_PIXELS,
                    got: net.inputs(),
                }));
            }
            check_shape((net.inputs(), net.classes()), IMAGE_PIXELS, CLASSES).map_err(mismatch)?
        }
    }
    Ok((model, config))
}

impl SavedModel {
    /// One line saying what the network is.
    fn describe(&self) -> String {
        match self {
            SavedModel::FullyConnected(net) => format!(
                "sizes {:?}, {} hidden layers, {} output layer, {} cost",
                net.sizes,
                net.activation.name(),
                net.output().name(),
                net.cost.name()
            ),
            SavedModel::Layers(net) => format!("layers {}", spec::text(&net.specs())),
        }
    }

    fn evaluate(&self, data: &Dataset) -> usize {
        match self {
            SavedModel::FullyConnected(net) => net.evaluate(data),
            SavedModel::Layers(net) => net.evaluate(data),
        }
    }

    fn predictions(&self, data: &Dataset) -> Vec<usize> {
        match self {
            SavedModel::FullyConnected(net) => net.predictions(data),
            SavedModel::Layers(net) => net.predictions(data),
        }
    }

    /// The output activations for each example of `data`, one vector per example.
    fn outputs(&self, data: &Dataset) -> Vec<Vec<f64>> {
        let mut all = Vec::new();
        let mut visit = |out: ndarray::ArrayView2<f64>, _: &[u8]| {
            all.extend(out.columns().into_iter().map(|c| c.to_vec()));
        };
        match self {
            SavedModel::FullyConnected(net) => {
                for k in 0..data.len() {
                    all.push(net.feedforward(data.images().row(k)).to_vec());
                }
            }
            SavedModel::Layers(net) => net.for_each_output(data, &mut visit),
        }
        all
    }
}

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
    outputs: Option<&Path>,
) -> Result<(), RunError> {
    let (net, config) = load(model)?;
    if let Some(path) = outputs {
        check_output(path)?;
    }
    let lambda = lambda
        .or(config.as_ref().map(|c| c.sgd.lambda))
        .unwrap_or(0.0);
    SgdConfig::check_lambda(lambda)?;
    let mnist = load_data(data, validation_size)?;
    let (_, data) = on.pick(mnist)?;
    say(&format!("{}: {}", model.display(), net.describe()));
    if let Some(c) = &config {
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
    let cost = match &net {
        SavedModel::FullyConnected(net) => net.total_cost(&data, lambda),
        // network3.py's L2 term counts the mini-batches the network was trained with.
        SavedModel::Layers(net) => {
            let m = config.as_ref().map_or(10, |c| c.sgd.mini_batch_size);
            net.total_cost(&data, lambda, m)
        }
    };
    say(&format!(
        "Cost on the {} data (lambda {lambda}): {cost:.6}",
        on.name()
    ));
    if let Some(path) = outputs {
        write_outputs(path, &net.outputs(&data), data.labels())?;
        say(&format!("Output activations written to {}", path.display()));
    }
    Ok(())
}

/// Writes each example's label, the digit the network reads and its output activations as a
/// CSV file, `label,digit,a0,…,a9`, one row per example in the set's order; every number in
/// the shortest form that reads back to the same `f64`.
fn write_outputs(path: &Path, outputs: &[Vec<f64>], labels: &[u8]) -> Result<(), RunError> {
    let classes = outputs.first().map_or(0, Vec::len);
    write_atomically(path, |out| {
        let header: Vec<String> = (0..classes).map(|j| format!("a{j}")).collect();
        writeln!(out, "label,digit,{}", header.join(","))?;
        for (a, label) in outputs.iter().zip(labels) {
            let values: Vec<String> = a.iter().map(f64::to_string).collect();
            let digit = argmax(a.iter().copied());
            writeln!(out, "{label},{digit},{}", values.join(","))?;
        }
        Ok(())
    })
    .map_err(|source| RunError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// `nndl predict`: the digit the network saved at `model` reads in each of `images`.
pub fn predict(model: &Path, images: &[PathBuf]) -> Result<(), RunError> {
    let (net, _) = load(model)?;
    for path in images {
        let x = image::read_digit(path)?;
        let one = Dataset::new(
            Array2::from_shape_vec((1, x.len()), x.to_vec()).expect("one image is one row"),
            vec![0],
        );
        let a = net.outputs(&one).pop().unwrap_or_default();
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

/// The majority vote of `predictions` (one list per model) for each example: the digit most
/// models name, the smallest such digit on a tie (as NumPy's `argmax(bincount(…))`).
pub fn majority(predictions: &[Vec<usize>]) -> Vec<usize> {
    let n = predictions.first().map_or(0, Vec::len);
    (0..n)
        .map(|k| {
            let mut votes = [0usize; CLASSES];
            for p in predictions {
                votes[p[k].min(CLASSES - 1)] += 1;
            }
            argmax(votes.iter().map(|&v| v as f64))
        })
        .collect()
}

/// `nndl vote`: each saved network's accuracy on the `on` set and that of their majority vote
/// — chapter 6's ensemble of five networks. Every model is loaded and checked before the data.
pub fn vote(
    models: &[PathBuf],
    on: EvalSet,
    data: &Path,
    validation_size: Option<usize>,
) -> Result<(), RunError> {
    let nets = models
        .iter()
        .map(|path| load(path).map(|(net, _)| net))
        .collect::<Result<Vec<_>, _>>()?;
    let mnist = load_data(data, validation_size)?;
    let (_, data) = on.pick(mnist)?;
    let percent = |correct: usize| 100.0 * correct as f64 / data.len() as f64;
    let mut predictions = Vec::with_capacity(nets.len());
    for (path, net) in models.iter().zip(&nets) {
        let p = net.predictions(&data);
        let correct = count_correct(&p, data.labels());
        say(&format!(
            "{}: {correct} / {} ({:.2}%)  {}",
            path.display(),
            data.len(),
            percent(correct),
            net.describe()
        ));
        predictions.push(p);
    }
    let correct = count_correct(&majority(&predictions), data.labels());
    say(&format!(
        "Majority vote of {} on the {} data: {correct} / {} ({:.2}%)",
        count(nets.len() as u64, "network"),
        on.name(),
        data.len(),
        percent(correct)
    ));
    Ok(())
}
