//! `nndl tune show`, `nndl tune export` and `nndl tune plot`: a study read back from its store
//! and shown as a table ([`show`]), written out as CSV or JSON Lines ([`export`]) or drawn
//! ([`plot`]). They only read the store: a study database that does not exist is an error,
//! not a new empty file.
//!
//! They mirror Optuna's `optuna studies`, `optuna trials`, `study.trials_dataframe()` and its
//! `optuna.visualization` figures; the formats are in [`crate::report::study`] and
//! [`crate::report::study_plot`].

use std::path::{Path, PathBuf};

use crate::report::console::say;
use crate::report::plot::PlotError;
use crate::report::study;
use crate::report::study_plot;
use crate::tune::store::{self, redact, Store, StudyInfo};
use crate::tune::study::Trial;

use super::RunError;

/// The order of `nndl tune show`'s rows (`--sort number|value`).
pub use crate::report::study::SortBy;

/// Prints the table of the trials of `study` in the store at `storage_url`, sorted by `sort`,
/// or, with no study named, the list of the store's studies.
pub fn show(storage_url: &str, study: Option<&str>, sort: SortBy) -> Result<(), RunError> {
    let mut store = open(storage_url)?;
    match study {
        Some(name) => {
            let (info, trials) = find(store.as_mut(), storage_url, name)?;
            let text = study::table(&info.spec, &trials, info.result.as_ref(), sort);
            say(text.trim_end());
        }
        None => {
            let mut all = Vec::new();
            for info in store.studies()? {
                let trials = store.trials(info.id)?;
                all.push((info, trials));
            }
            say(study::study_list(&all).trim_end());
        }
    }
    Ok(())
}

/// Deletes `study` from the store at `storage_url` with all its trials: at once with `yes`,
/// else after the user confirms on a terminal; without a terminal to ask on, refused
/// ([`RunError::NotConfirmed`]).
pub fn delete(storage_url: &str, name: &str, yes: bool) -> Result<(), RunError> {
    use std::io::{BufRead, IsTerminal, Write};
    if let Some(path) = store::sqlite_path(storage_url) {
        if !path.is_empty() && !Path::new(path).exists() {
            return Err(RunError::NoStore(PathBuf::from(path)));
        }
    }
    let mut store = store::open(storage_url)?;
    let (info, trials) = find(store.as_mut(), storage_url, name)?;
    let what = format!(
        "study {} ({} trials) from {}",
        info.spec.name,
        trials.len(),
        redact(storage_url)
    );
    if !yes {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Err(RunError::NotConfirmed(what));
        }
        eprint!("Delete {what}? [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        stdin
            .lock()
            .read_line(&mut answer)
            .map_err(|_| RunError::NotConfirmed(what.clone()))?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Err(RunError::NotConfirmed(what));
        }
    }
    store.delete_study(info.id)?;
    say(&format!("Deleted {what}"));
    Ok(())
}

/// Converts the study database at `storage_url` from nndl's old layout to Optuna's schema,
/// keeping the old tables (see [`store::migrate`]).
pub fn migrate(storage_url: &str) -> Result<(), RunError> {
    if let Some(path) = store::sqlite_path(storage_url) {
        if !path.is_empty() && !Path::new(path).exists() {
            return Err(RunError::NoStore(PathBuf::from(path)));
        }
    }
    let done = store::migrate(storage_url)?;
    say(&format!(
        "Migrated {} studies ({} trials) of {} from nndl's layout {} to Optuna's schema; \
         the old tables are kept as nndl_v{}_*",
        done.studies,
        done.trials,
        redact(storage_url),
        done.from,
        done.from
    ));
    Ok(())
}

/// Writes the trials of `study` to `output`, CSV or JSON Lines by its extension.
pub fn export(storage_url: &str, study: &str, output: &Path) -> Result<(), RunError> {
    let mut store = open(storage_url)?;
    let (info, trials) = find(store.as_mut(), storage_url, study)?;
    study::export(&info.spec, &trials, output)?;
    say(&format!(
        "Wrote {} trials of study {} to {}",
        trials.len(),
        info.spec.name,
        output.display()
    ));
    Ok(())
}

/// Draws the three figures of `study` ([`figure_paths`] says where) and returns their paths.
pub fn plot(
    storage_url: &str,
    study: &str,
    output_dir_or_prefix: &Path,
) -> Result<Vec<PathBuf>, RunError> {
    let [history, params, curves] = figure_paths(output_dir_or_prefix, study)?;
    let mut store = open(storage_url)?;
    let (info, trials) = find(store.as_mut(), storage_url, study)?;
    study_plot::history(&info.spec, &trials, &history)?;
    study_plot::params(&info.spec, &trials, &params)?;
    study_plot::curves(&info.spec, &trials, &curves)?;
    let paths = vec![history, params, curves];
    for path in &paths {
        say(&format!("Wrote {}", path.display()));
    }
    Ok(paths)
}

/// Where [`plot`] writes the figures of `study`, history, parameters and curves in that
/// order: `DIR/STUDY-history.png`, … when `output` is an existing directory (or ends in a
/// separator); `PREFIX-history.svg`, … for a prefix ending in `.svg` or `.png`, whose
/// extension they take; `PREFIX-history.png`, … for a prefix without one. Any other extension
/// is [`PlotError::Format`].
pub fn figure_paths(output: &Path, study: &str) -> Result<[PathBuf; 3], PlotError> {
    let text = output.as_os_str().to_string_lossy();
    let is_dir =
        output.is_dir() || text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR);
    let (base, ext) = if is_dir {
        (output.join(study), "png")
    } else {
        match output.extension().and_then(|e| e.to_str()) {
            None => (output.to_path_buf(), "png"),
            Some("png") => (output.with_extension(""), "png"),
            Some("svg") => (output.with_extension(""), "svg"),
            Some(_) => return Err(PlotError::Format(output.to_path_buf())),
        }
    };
    let name = |figure: &str| {
        let mut path = base.clone().into_os_string();
        path.push(format!("-{figure}.{ext}"));
        PathBuf::from(path)
    };
    Ok([name("history"), name("params"), name("curves")])
}

/// Opens the store at `url` read-only, refusing a SQLite file that does not exist (opening it
/// would create an empty study database where the user mistyped a name) and a database that
/// is not a study store (nothing is created in it).
fn open(url: &str) -> Result<Box<dyn Store>, RunError> {
    if let Some(path) = store::sqlite_path(url) {
        if !path.is_empty() && !Path::new(path).exists() {
            return Err(RunError::NoStore(PathBuf::from(path)));
        }
    }
    Ok(store::open_read_only(url)?)
}

/// The study called `name` and its trials, or [`RunError::NoStudy`] naming the ones there are.
fn find(store: &mut dyn Store, url: &str, name: &str) -> Result<(StudyInfo, Vec<Trial>), RunError> {
    let studies = store.studies()?;
    let known: Vec<String> = studies.iter().map(|s| s.spec.name.clone()).collect();
    let Some(info) = studies.into_iter().find(|s| s.spec.name == name) else {
        return Err(RunError::NoStudy {
            name: name.to_string(),
            storage: redact(url),
            known,
        });
    };
    let trials = store.trials(info.id)?;
    Ok((info, trials))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figure_names_follow_the_prefix() {
        let names = |p: &str| {
            figure_paths(Path::new(p), "ch3")
                .map(|ps| ps.map(|p| p.display().to_string()))
                .ok()
        };
        assert_eq!(
            names("out/ch3"),
            Some(
                [
                    "out/ch3-history.png",
                    "out/ch3-params.png",
                    "out/ch3-curves.png"
                ]
                .map(String::from)
            )
        );
        assert_eq!(
            names("figs/run.svg"),
            Some(
                [
                    "figs/run-history.svg",
                    "figs/run-params.svg",
                    "figs/run-curves.svg"
                ]
                .map(String::from)
            )
        );
        assert_eq!(
            names("figs/"),
            Some(
                [
                    "figs/ch3-history.png",
                    "figs/ch3-params.png",
                    "figs/ch3-curves.png"
                ]
                .map(String::from)
            )
        );
        assert_eq!(names("figs/run.gif"), None);
    }
}
