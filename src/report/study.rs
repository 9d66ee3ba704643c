//! A study as text: the table of its trials that `nndl tune show` prints, the list of the
//! studies in a store, and `nndl tune export`'s files (CSV or JSON Lines, one row per trial).
//!
//! It mirrors Optuna's `trials_dataframe` (one row per trial: number, state, value, timing,
//! one column per parameter) and its `optuna studies`/`optuna trials` listings. The value of
//! a trial is the objective nndl optimises, its best validation accuracy over the epochs it
//! finished ([`Trial::best`]), shown with the epoch that reached it. JSON Lines keeps each
//! trial's whole curve (`values`, one accuracy per epoch), which a table has no room for.
//!
//! Left out: Optuna's datetime columns (a trial's total training `seconds` is kept instead),
//! user and system attributes (nndl has none), and a pandas DataFrame (the CSV loads into one).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::data::{quote, quote_within};
use crate::output::write_atomically;
use crate::tune::space::{Params, Value};
use crate::tune::store::{best_complete, state_name, StudyInfo, StudyResult};
use crate::tune::study::{StudySpec, Trial, TrialState};

/// The most characters of a failed trial's message the table shows.
const MESSAGE_CHARS: usize = 500;

/// The order of the rows of `nndl tune show`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SortBy {
    /// By trial number, as the trials were created.
    #[default]
    Number,
    /// Best validation accuracy first; trials that are running, waiting or failed last.
    Value,
}

/// Why a study could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}: an export must end in .csv or .jsonl")]
    Format(PathBuf),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Every state, in the order the header counts them.
const STATES: [TrialState; 5] = [
    TrialState::Complete,
    TrialState::Pruned,
    TrialState::Failed,
    TrialState::Running,
    TrialState::Waiting,
];

/// The study's best trial: the complete trial with the highest best validation accuracy, the
/// first of equals ([`best_complete`], the one the store keeps the checkpoint of). Pruned
/// trials do not count, as in Optuna: their training was cut short.
pub fn best_trial(trials: &[Trial]) -> Option<&Trial> {
    let number = best_complete(trials)?;
    trials.iter().find(|t| t.number == number)
}

/// The trials in the order `sort` asks for. By value: complete and pruned trials by their best
/// validation accuracy, highest first (ties by number), then every other trial by number.
pub fn sorted(trials: &[Trial], sort: SortBy) -> Vec<&Trial> {
    let mut out: Vec<&Trial> = trials.iter().collect();
    out.sort_by_key(|t| t.number);
    if sort == SortBy::Value {
        let ranked = |t: &Trial| {
            matches!(t.state, TrialState::Complete | TrialState::Pruned)
                .then(|| t.best().map(|(_, v)| v))
                .flatten()
        };
        // A stable sort: equal keys keep their order by number.
        out.sort_by(|a, b| match (ranked(a), ranked(b)) {
            (Some(x), Some(y)) => y.total_cmp(&x),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
    }
    out
}

/// `12 trials: 8 complete, 3 pruned, 1 failed` — the states that occur, in a fixed order.
fn counts(trials: &[Trial]) -> String {
    let parts: Vec<String> = STATES
        .iter()
        .filter_map(|&s| {
            let n = trials.iter().filter(|t| t.state == s).count();
            (n > 0).then(|| format!("{n} {}", state_name(s)))
        })
        .collect();
    let total = trials.len();
    let noun = if total == 1 { "trial" } else { "trials" };
    if parts.is_empty() {
        format!("{total} {noun}")
    } else {
        format!("{total} {noun}: {}", parts.join(", "))
    }
}

/// A trial's parameters in the space's order, as `eta=0.5 lambda=5`.
pub fn params_line(spec: &StudySpec, params: &Params) -> String {
    spec.space
        .params
        .iter()
        .filter_map(|p| {
            params
                .get(&p.name)
                .map(|v| format!("{}={}", p.name, v.short()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The line a study ends with: `Best trial 4: validation 96.12%, test 95.80%, eta=0.5 …`.
pub fn result_line(spec: &StudySpec, result: &StudyResult, trials: &[Trial]) -> String {
    let mut line = format!(
        "Best trial {}: validation {:.2}%, test {:.2}%",
        result.trial, result.validation, result.test
    );
    if let Some(t) = trials.iter().find(|t| t.number == result.trial) {
        let params = params_line(spec, &t.params);
        if !params.is_empty() {
            line.push_str(", ");
            line.push_str(&params);
        }
    }
    line
}

/// The table `nndl tune show STUDY` prints: a header naming the study, its sampler and its
/// trials by state, the recorded result if there is one, then one row per trial (number,
/// state, best validation accuracy and its epoch, epochs run, seconds, worker and every
/// parameter in the space's order), sorted by `sort`, and last why each failed trial failed
/// (`Trial 3 failed: diverged in epoch 0 (eta 1000)`), in the rows' order.
pub fn table(
    spec: &StudySpec,
    trials: &[Trial],
    result: Option<&StudyResult>,
    sort: SortBy,
) -> String {
    let mut out = format!(
        "Study {} (sampler {}): {}\n",
        quote(&spec.name),
        spec.sampler,
        counts(trials)
    );
    if let Some(r) = result {
        let _ = writeln!(out, "{}", result_line(spec, r, trials));
    }
    if trials.is_empty() {
        return out;
    }
    let mut head: Vec<String> = [
        "trial", "state", "best %", "at epoch", "epochs", "seconds", "worker",
    ]
    .map(String::from)
    .to_vec();
    let fixed = head.len();
    head.extend(spec.space.params.iter().map(|p| p.name.clone()));
    let rows: Vec<Vec<String>> = sorted(trials, sort)
        .into_iter()
        .map(|t| {
            let best = t.best();
            let mut row = vec![
                t.number.to_string(),
                state_name(t.state).to_string(),
                best.map_or("-".into(), |(_, v)| format!("{v:.2}")),
                best.map_or("-".into(), |(e, _)| e.to_string()),
                t.values.len().to_string(),
                format!("{:.1}", t.seconds),
                t.worker.as_deref().map_or("-".into(), quote),
            ];
            row.extend(spec.space.params.iter().map(|p| {
                t.params
                    .get(&p.name)
                    .map_or("-".into(), |v| quote(&Value::short(v)))
            }));
            row
        })
        .collect();
    let widths: Vec<usize> = (0..head.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([head[c].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    // Numbers to the right, names (state, worker, parameters that are not numbers) to the left.
    let numeric = |c: usize| {
        matches!(c, 0 | 2 | 3 | 4 | 5)
            || (c >= fixed
                && rows
                    .iter()
                    .all(|r| r[c] == "-" || r[c].parse::<f64>().is_ok()))
    };
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                // Padded by hand: `{:w$}` panics on a width over 65,535.
                let fill = " ".repeat(widths[c] - cell.chars().count());
                if numeric(c) {
                    fill + cell
                } else {
                    format!("{cell}{fill}")
                }
            })
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(&head));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row));
    }
    for t in sorted(trials, sort) {
        if let Some(message) = &t.message {
            let _ = writeln!(
                out,
                "Trial {} failed: {}",
                t.number,
                quote_within(message, MESSAGE_CHARS)
            );
        }
    }
    out
}

/// The list `nndl tune show` prints when no study is named: each study with its sampler, its
/// trials by state and its best complete trial (with the test accuracy once recorded).
pub fn study_list(studies: &[(StudyInfo, Vec<Trial>)]) -> String {
    if studies.is_empty() {
        return "No studies.\n".into();
    }
    let mut out = String::new();
    for (info, trials) in studies {
        let best = match (best_trial(trials), &info.result) {
            (_, Some(r)) => format!(
                "best trial {}: validation {:.2}%, test {:.2}%",
                r.trial, r.validation, r.test
            ),
            (Some(t), None) => match t.best() {
                Some((e, v)) => format!("best trial {}: validation {v:.2}% at epoch {e}", t.number),
                None => "no complete trial".into(),
            },
            (None, None) => "no complete trial".into(),
        };
        let _ = writeln!(
            out,
            "{} (sampler {}): {}; {best}",
            info.spec.name,
            info.spec.sampler,
            counts(trials)
        );
    }
    out
}

/// One trial as an export writes it.
#[derive(Serialize)]
struct ExportRow<'a> {
    number: u32,
    state: &'static str,
    best_value: Option<f64>,
    best_epoch: Option<usize>,
    epochs: usize,
    seconds: f64,
    worker: Option<&'a str>,
    /// Why a failed trial failed.
    message: Option<&'a str>,
}

impl<'a> ExportRow<'a> {
    fn of(t: &'a Trial) -> Self {
        let best = t.best();
        ExportRow {
            number: t.number,
            state: state_name(t.state),
            best_value: best.map(|(_, v)| v),
            best_epoch: best.map(|(e, _)| e),
            epochs: t.values.len(),
            seconds: t.seconds,
            worker: t.worker.as_deref(),
            message: t.message.as_deref(),
        }
    }
}

/// A JSON Lines row: the columns of the CSV, the parameters as an object and every epoch's
/// validation accuracy.
#[derive(Serialize)]
struct JsonRow<'a> {
    #[serde(flatten)]
    row: ExportRow<'a>,
    params: &'a Params,
    values: &'a [f64],
}

/// Writes the study's trials, by number, to `out`: CSV (`.csv`: `number, state, best_value,
/// best_epoch, epochs, seconds, worker`, then one column per parameter in the space's order,
/// then `message`, why a failed trial failed; empty cells where there is no value) or JSON
/// Lines (`.jsonl`: one object per trial with those fields, `params` and `values`, the
/// validation accuracy of every finished epoch; `message` is null but for failed trials). The
/// file is written whole or not at all (through a temporary file renamed over it).
pub fn export(spec: &StudySpec, trials: &[Trial], out: &Path) -> Result<(), ExportError> {
    let jsonl = match out.extension().and_then(|e| e.to_str()) {
        Some("csv") => false,
        Some("jsonl") => true,
        _ => return Err(ExportError::Format(out.to_path_buf())),
    };
    let trials = sorted(trials, SortBy::Number);
    let written = write_atomically(out, |file| {
        if jsonl {
            for t in &trials {
                let row = JsonRow {
                    row: ExportRow::of(t),
                    params: &t.params,
                    values: &t.values,
                };
                serde_json::to_writer(&mut *file, &row)?;
                file.write_all(b"\n")?;
            }
            return Ok(());
        }
        let mut csv = csv::Writer::from_writer(&mut *file);
        let mut head: Vec<String> = [
            "number",
            "state",
            "best_value",
            "best_epoch",
            "epochs",
            "seconds",
            "worker",
        ]
        .map(String::from)
        .to_vec();
        head.extend(spec.space.params.iter().map(|p| p.name.clone()));
        head.push("message".into());
        csv.write_record(&head)?;
        for t in &trials {
            let row = ExportRow::of(t);
            let mut record = vec![
                row.number.to_string(),
                row.state.to_string(),
                row.best_value.map_or(String::new(), |v| v.to_string()),
                row.best_epoch.map_or(String::new(), |e| e.to_string()),
                row.epochs.to_string(),
                row.seconds.to_string(),
                row.worker.unwrap_or_default().to_string(),
            ];
            record.extend(spec.space.params.iter().map(|p| {
                t.params
                    .get(&p.name)
                    .map_or(String::new(), Value::to_string)
            }));
            record.push(row.message.unwrap_or_default().to_string());
            csv.write_record(&record)?;
        }
        csv.flush()
    });
    written.map_err(|source| ExportError::Write {
        path: out.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(number: u32, state: TrialState, values: &[f64]) -> Trial {
        Trial {
            number,
            params: Params::new(),
            state,
            values: values.to_vec(),
            worker: None,
            seconds: 0.0,
            message: None,
        }
    }

    /// A stored cell of any length or content prints as a bounded, escaped one: a cell over
    /// 65,535 characters made `{:w$}` panic, and control bytes went to the terminal raw.
    #[test]
    fn long_and_control_cells_are_cut_and_escaped() {
        let spec = StudySpec {
            name: "s\u{1b}]0;title\u{7}".into(),
            space: crate::tune::space::Space::parse(&["activation=choice:sigmoid,tanh"]).unwrap(),
            sampler: "random".into(),
            base: serde_json::Value::Null,
        };
        let mut t = trial(0, TrialState::Failed, &[50.0]);
        t.worker = Some("w".repeat(70_000));
        t.params
            .insert("activation".into(), Value::Choice("tanh".into()));
        t.message = Some(format!("\u{1b}[2J{}", "m".repeat(10_000)));
        let text = table(&spec, &[t], None, SortBy::Number);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text}"
        );
        assert!(text.contains("Study s\\u{1b}]0;title\\u{7} "), "{text}");
        assert!(text.contains("… (70000 characters)"), "{text}");
        assert!(text.contains("… (10004 characters)"), "{text}");
        assert!(text.len() < 2_000, "{} bytes", text.len());
    }

    #[test]
    fn by_value_puts_the_best_first_and_the_unranked_last_by_number() {
        let trials = [
            trial(0, TrialState::Failed, &[99.0]),
            trial(1, TrialState::Complete, &[90.0, 95.0]),
            trial(2, TrialState::Running, &[98.0]),
            trial(3, TrialState::Pruned, &[96.0]),
            trial(4, TrialState::Complete, &[95.0]),
            trial(5, TrialState::Waiting, &[]),
        ];
        let order: Vec<u32> = sorted(&trials, SortBy::Value)
            .iter()
            .map(|t| t.number)
            .collect();
        assert_eq!(order, [3, 1, 4, 0, 2, 5]);
        assert_eq!(best_trial(&trials).map(|t| t.number), Some(1));
    }

    #[test]
    fn counts_name_only_the_states_present() {
        let trials = [
            trial(0, TrialState::Complete, &[1.0]),
            trial(1, TrialState::Pruned, &[1.0]),
            trial(2, TrialState::Complete, &[1.0]),
        ];
        assert_eq!(counts(&trials), "3 trials: 2 complete, 1 pruned");
        assert_eq!(counts(&[]), "0 trials");
    }
}
