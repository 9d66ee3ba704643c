//! `nndl inspect`: a look inside a saved network — fully connected (`network2.py`'s JSON) or
//! chapter 6's layers, trained in f32 or f64 — on a set of MNIST: its confusion matrix
//! (printed, and drawn), the misclassified digits it was surest of, with their true and
//! predicted digits, and its first layer's weights as images (a hidden neuron's 784 weights
//! as a 28×28 tile, as chapter 1 looks at one; a convolution's filters, as chapter 6 shows
//! them). The pictures are [`crate::report::images`]', the same as `--tensorboard` shows.

use std::path::{Path, PathBuf};

use crate::data::CLASSES;
use crate::model::file::SavedModel;
use crate::model::view::{confusion, Inspect, Snapshot};
use crate::report::console::say;
use crate::report::images::{self, Picture, GALLERY};

use super::eval::load;
use super::{check_output, load_data, EvalSet, RunError};

/// What `nndl inspect` is asked.
#[derive(Clone, Debug)]
pub struct InspectRequest {
    pub model: PathBuf,
    /// The set the network is scored on.
    pub on: EvalSet,
    pub data: PathBuf,
    pub validation_size: Option<usize>,
    /// The pictures are PREFIX-confusion.png, PREFIX-mistakes.png and PREFIX-weights.png.
    pub output: PathBuf,
}

impl InspectRequest {
    /// The three pictures' files: the confusion matrix, the mistakes, the first layer.
    pub fn outputs(&self) -> [PathBuf; 3] {
        let name = self
            .output
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        ["confusion", "mistakes", "weights"]
            .map(|what| self.output.with_file_name(format!("{name}-{what}.png")))
    }
}

/// `nndl inspect`: loads and checks the network and the outputs' places before the data,
/// scores the network on the set asked for, prints its confusion matrix and writes the three
/// pictures.
pub fn inspect(request: &InspectRequest) -> Result<(), RunError> {
    let (net, _) = load(&request.model)?;
    let outputs = request.outputs();
    for path in &outputs {
        check_output(path)?;
    }
    let mnist = load_data(&request.data, request.validation_size)?;
    let (_, data) = request.on.pick(mnist)?;
    let view: &dyn Inspect<f64> = match &net {
        SavedModel::FullyConnected(net) => net,
        SavedModel::Layers(net) => net,
    };
    let set = request.on.name();
    let verdicts = view.verdicts(&data);
    let matrix = confusion(&verdicts, CLASSES);
    say(&format!(
        "{}: confusion matrix on the {set} data",
        request.model.display()
    ));
    for line in confusion_table(&matrix) {
        say(&line);
    }
    let snapshot = Snapshot::of(view, &data, GALLERY);
    let draw = |path: &Path| {
        let path = path.to_path_buf();
        move |message| RunError::Plot(crate::report::plot::PlotError::Draw { path, message })
    };
    let [confusion_png, mistakes_png, weights_png] = &outputs;
    let pictures: [(&PathBuf, Picture); 3] = [
        (
            confusion_png,
            images::confusion_matrix(&matrix, set).map_err(draw(confusion_png))?,
        ),
        (
            mistakes_png,
            images::gallery(&snapshot.mistakes, set).map_err(draw(mistakes_png))?,
        ),
        (
            weights_png,
            images::weight_tiles(&snapshot.first_layer).map_err(draw(weights_png))?,
        ),
    ];
    for (path, picture) in &pictures {
        picture.write_png(path)?;
        say(&format!("Wrote {}", path.display()));
    }
    Ok(())
}

/// The confusion matrix as text: a header of predicted digits, then one row per true digit
/// with its count and the share of it read right.
pub fn confusion_table(matrix: &[Vec<usize>]) -> Vec<String> {
    let mut lines = Vec::with_capacity(matrix.len() + 2);
    let header: String = (0..matrix.len()).map(|j| format!("{j:>6}")).collect();
    lines.push(format!("true\\predicted{header}   right"));
    let mut correct = 0;
    let mut total = 0;
    for (i, row) in matrix.iter().enumerate() {
        let cells: String = row.iter().map(|c| format!("{c:>6}")).collect();
        let n: usize = row.iter().sum();
        correct += row.get(i).copied().unwrap_or(0);
        total += n;
        let right = match n {
            0 => "      -".to_string(),
            _ => format!("{:>7.2}%", 100.0 * row[i] as f64 / n as f64),
        };
        lines.push(format!("{i:>14}{cells}{right}"));
    }
    if total > 0 {
        lines.push(format!(
            "{correct} / {total} right ({:.2}%)",
            100.0 * correct as f64 / total as f64
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_a_row_per_digit_and_the_total() {
        let mut m = vec![vec![0; 10]; 10];
        m[0][0] = 9;
        m[0][6] = 1;
        m[1][1] = 5;
        let lines = confusion_table(&m);
        assert_eq!(lines.len(), 12);
        assert!(lines[1].ends_with("90.00%"), "{}", lines[1]);
        assert!(lines[3].ends_with('-'), "{}", lines[3]);
        assert_eq!(lines[11], "14 / 15 right (93.33%)");
    }

    #[test]
    fn the_pictures_are_named_after_the_prefix() {
        let request = InspectRequest {
            model: "net.json".into(),
            on: EvalSet::Test,
            data: "data".into(),
            validation_size: None,
            output: "out/net".into(),
        };
        assert_eq!(
            request.outputs().map(|p| p.display().to_string()),
            [
                "out/net-confusion.png",
                "out/net-mistakes.png",
                "out/net-weights.png"
            ]
        );
    }
}
