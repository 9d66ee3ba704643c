//! `nndl book --rows`/`--all` and its record: the rows run one after another ([`book`]), one
//! entry per finished row of the book's table
//! ([`super::book::ROWS`]) — nndl's figure, the verdict, the wall time and the settings and
//! machine it was measured with — kept in a JSON file that is rewritten (atomically) after
//! every row, so that a run stopped by Ctrl-C or killed loses only the row it was in and a rerun
//! goes on from there. A vote, five networks of half an hour or more each, also keeps each of
//! its networks as it finishes (its test-set predictions, to vote with), so a stopped vote loses
//! only the network it was in. [`Record::table`] writes it as the markdown table of the README.
//!
//! The file, `book/results.json` by default:
//!
//! ```json
//! {"format": "nndl book record", "version": 1, "rows": [
//!   {"row": "ch1", "settings": {"seed": 0, "precision": "f64", "epochs": 30},
//!    "book": 95.42, "nndl": 95.05, "verdict": "not-reproduced", "seconds": 11.2,
//!    "threads": 1, "backend": "pure Rust (matrixmultiply), 1 thread",
//!    "machine": "AMD EPYC (family 25, model 1), 2 CPUs", "date": "2026-12-06"}],
//!  "networks": [
//!   {"row": "ch6-vote", "settings": {"seed": 0, "precision": "f32", "epochs": 40},
//!    "network": 1, "nndl": 99.58, "seconds": 2068.2, "threads": 2,
//!    "backend": "pure Rust (matrixmultiply)", "machine": "AMD EPYC (family 25, model 1), 2 CPUs",
//!    "date": "2026-12-06",
//!    "predictions": "7210414959…"}]}
//! ```
//!
//! `networks` holds the networks of votes not yet recorded. A rerun uses those kept with the
//! same seed, precision, epochs, thread count, backend and machine, so that a row's time is one
//! machine's (it names the others, and leaves them); the vote's entry replaces them all. The
//! field is new in version 1: an nndl from before it refuses a record that has it.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::Precision;
use crate::report::console::say;

use super::book::{
    row, run_row, BookError, BookRequest, Finished, Member, Members, Net, Row, Verdict, ROWS,
};
use super::RunError;

/// Where `--rows` and `--all` record the rows unless `--record` says otherwise.
pub const DEFAULT_RECORD: &str = "book/results.json";

/// The `format` field that marks a record.
const FORMAT: &str = "nndl book record";
/// The layout of the entries.
const VERSION: u32 = 1;
/// The largest record read: a row's entry takes under 400 bytes, a vote's network kept with
/// its predictions on the 10,000 test images about 10 kB.
const MAX_RECORD_BYTES: u64 = 1 << 20;

/// What a row's figure depends on besides the row: a row recorded with other settings is run
/// again, not reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub seed: u64,
    pub precision: Precision,
    /// Epochs each network trained: the book's, or fewer under `--epochs` (0 for a row that
    /// trains no network).
    pub epochs: usize,
}

impl Settings {
    /// The settings `request` runs `row` with.
    pub fn of(row: &Row, request: &BookRequest) -> Settings {
        Settings {
            seed: request.seed,
            precision: request.precision.unwrap_or(row.precision()),
            epochs: match row.net {
                Net::AverageDarkness => 0,
                _ => request.epochs.unwrap_or(row.epochs),
            },
        }
    }
}

impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {}, {}, {} epochs",
            self.seed,
            self.precision.name(),
            self.epochs
        )
    }
}

/// One finished row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub row: String,
    pub settings: Settings,
    /// The book's figure and nndl's, in %.
    pub book: f64,
    pub nndl: f64,
    pub verdict: Verdict,
    /// The row's wall time: training and scoring (loading the data too for `ch1-darkness`,
    /// which trains nothing; for a vote, its kept networks' times as well).
    pub seconds: f64,
    pub threads: usize,
    pub backend: String,
    /// The CPU's name and how many CPUs the process could use.
    pub machine: String,
    /// The day the row finished, `YYYY-MM-DD` (UTC).
    pub date: String,
    /// For a vote whose first network another row trained ([`Row::first_network_of`]): that
    /// row, whose time counts it (`seconds` does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_network_of: Option<String>,
}

impl Entry {
    /// The entry of `row` finished now on this machine.
    pub fn new(row: &Row, settings: Settings, finished: &Finished, threads: usize) -> Entry {
        Entry {
            row: row.id.to_string(),
            settings,
            book: row.book,
            nndl: finished.accuracy,
            verdict: Verdict::of(row, finished.accuracy, settings.epochs),
            seconds: finished.seconds,
            threads,
            backend: crate::backend::describe(),
            machine: machine(),
            date: today(),
            first_network_of: finished.shared.map(str::to_string),
        }
    }

    /// What is wrong with an entry read from a file, if anything.
    fn problem(&self) -> Option<String> {
        let Some(row) = row(&self.row) else {
            return Some(format!("unknown row {:?}", cut(&self.row)));
        };
        let percent = |x: f64| x.is_finite() && (0.0..=100.0).contains(&x);
        if !percent(self.nndl) || !percent(self.book) {
            return Some(format!("{}: an accuracy outside 0–100%", row.id));
        }
        if !self.seconds.is_finite() || self.seconds < 0.0 {
            return Some(format!(
                "{}: a time that is not a number of seconds",
                row.id
            ));
        }
        if let Some(other) = &self.first_network_of {
            if row.first_network_of != Some(other.as_str()) {
                return Some(format!(
                    "{}: its first network is not {}'s",
                    row.id,
                    cut(other)
                ));
            }
        }
        if self.verdict != Verdict::of(row, self.nndl, self.settings.epochs) {
            return Some(format!(
                "{}: the verdict {:?} does not follow from {:.2}% after {} epochs",
                row.id, self.verdict, self.nndl, self.settings.epochs
            ));
        }
        None
    }
}

/// One finished network of a vote whose row has not finished.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkEntry {
    pub row: String,
    pub settings: Settings,
    /// Which of the row's networks, from 1.
    pub network: usize,
    /// Its own figure, in %.
    pub nndl: f64,
    pub seconds: f64,
    pub threads: usize,
    /// The backend that trained it ([`crate::backend::NAME`]).
    pub backend: String,
    pub machine: String,
    pub date: String,
    /// The digit it gives each test image, in order.
    pub predictions: String,
    /// The row that trained it, when it is that row's network (its time is counted there, and
    /// `seconds` is 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

impl NetworkEntry {
    /// What is wrong with an entry read from a file, if anything.
    fn problem(&self) -> Option<String> {
        let problem = self.what_is_wrong()?;
        Some(format!(
            "\"networks\", {} network {}: {problem} (remove the entry to train that network \
             again)",
            cut(&self.row),
            self.network
        ))
    }

    fn what_is_wrong(&self) -> Option<String> {
        let Some(row) = row(&self.row) else {
            return Some("an unknown row".to_string());
        };
        let id = row.id;
        if row.ensemble < 2 {
            return Some(format!("{id} is not a vote, and has no networks to keep"));
        }
        if !(1..=row.ensemble).contains(&self.network) {
            return Some(format!("{id} has {} networks", row.ensemble));
        }
        if !(self.nndl.is_finite() && (0.0..=100.0).contains(&self.nndl)) {
            return Some("an accuracy outside 0–100%".to_string());
        }
        if !self.seconds.is_finite() || self.seconds < 0.0 {
            return Some("a time that is not a number of seconds".to_string());
        }
        if let Some(from) = &self.from {
            if row.first_network_of != Some(from.as_str()) || self.network != 1 {
                return Some(format!("it is not {}'s network", cut(from)));
            }
        }
        if self.member(row).is_none() {
            return Some("its predictions are not a string of digits".to_string());
        }
        None
    }

    /// The network as `row` takes it back; `None` if its predictions are not digits.
    fn member(&self, row: &Row) -> Option<Member> {
        let predictions: Option<Vec<usize>> = self
            .predictions
            .chars()
            .map(|c| c.to_digit(10).map(|d| d as usize))
            .collect();
        Some(Member {
            network: self.network,
            accuracy: self.nndl,
            seconds: self.seconds,
            predictions: predictions.filter(|p| !p.is_empty())?,
            from: self.from.as_ref().and(row.first_network_of),
        })
    }

    /// Whether this is `row`'s network kept under `settings` with `threads` threads on
    /// `machine`, by this build's backend.
    fn is_of(&self, row: &Row, settings: Settings, threads: usize, machine: &str) -> bool {
        self.row == row.id
            && self.settings == settings
            && self.threads == threads
            && self.backend == crate::backend::NAME
            && self.machine == machine
    }
}

/// The rows recorded so far, and the networks of an unfinished vote.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    format: String,
    version: u32,
    rows: Vec<Entry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    networks: Vec<NetworkEntry>,
}

impl Record {
    /// An empty record.
    pub fn new() -> Record {
        Record {
            format: FORMAT.to_string(),
            version: VERSION,
            rows: Vec::new(),
            networks: Vec::new(),
        }
    }

    /// Reads the record at `path`: empty if there is no file, refused if the file is not a
    /// record (another JSON file, a damaged one, an entry that does not add up).
    pub fn read(path: &Path) -> Result<Record, RunError> {
        let refuse = |reason: String| {
            RunError::from(BookError::Record {
                path: path.to_path_buf(),
                reason,
            })
        };
        if !path.exists() && std::fs::symlink_metadata(path).is_err() {
            return Ok(Record::new());
        }
        let text = crate::data::file::read_text(path, MAX_RECORD_BYTES)
            .map_err(|e| refuse(e.to_string()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| refuse(format!("not JSON: {e}")))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(refuse(format!(
                "it has no \"format\": \"{FORMAT}\" (move it away, or give another --record)"
            )));
        }
        if value.get("version").and_then(|v| v.as_u64()) != Some(VERSION.into()) {
            return Err(refuse(format!(
                "its version is {}, this nndl reads version {VERSION}",
                cut(&value
                    .get("version")
                    .map(|v| v.to_string())
                    .unwrap_or_default())
            )));
        }
        let record: Record =
            serde_json::from_value(value).map_err(|e| refuse(cut(&e.to_string())))?;
        for (k, entry) in record.rows.iter().enumerate() {
            if let Some(problem) = entry.problem() {
                return Err(refuse(problem));
            }
            if record.rows[..k].iter().any(|e| e.row == entry.row) {
                return Err(refuse(format!("{} is recorded twice", entry.row)));
            }
        }
        for (k, entry) in record.networks.iter().enumerate() {
            if let Some(problem) = entry.problem() {
                return Err(refuse(problem));
            }
            let twice = |e: &NetworkEntry| {
                (&e.row, e.network, e.settings, e.threads, &e.machine)
                    == (
                        &entry.row,
                        entry.network,
                        entry.settings,
                        entry.threads,
                        &entry.machine,
                    )
            };
            if record.networks[..k].iter().any(twice) {
                return Err(refuse(format!(
                    "\"networks\": {}'s network {} is recorded twice with the same settings",
                    entry.row, entry.network
                )));
            }
        }
        Ok(record)
    }

    /// Writes the record to `path`, atomically: a run killed while writing leaves the
    /// previous record whole.
    pub fn write(&self, path: &Path) -> Result<(), RunError> {
        crate::output::write_atomically(path, |out| {
            serde_json::to_writer_pretty(&mut *out, self)?;
            std::io::Write::write_all(out, b"\n")
        })
        .map_err(|source| RunError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The entry of row `id`, if recorded.
    pub fn entry(&self, id: &str) -> Option<&Entry> {
        self.rows.iter().find(|e| e.row == id)
    }

    /// Records `entry`, replacing the row's earlier entry and the networks kept of it.
    pub fn put(&mut self, entry: Entry) {
        self.rows.retain(|e| e.row != entry.row);
        self.networks.retain(|e| e.row != entry.row);
        self.rows.push(entry);
    }

    /// The networks of `row` kept under `settings` on this machine with `threads` threads and
    /// this build's backend, in order from the first and without a gap: those a rerun of the
    /// vote need not train again.
    /// (Networks timed elsewhere would make a row's time that of no one machine.)
    pub fn networks(&self, row: &Row, settings: Settings, threads: usize) -> Vec<Member> {
        let machine = machine();
        let mut kept = Vec::new();
        for network in 1..=row.ensemble {
            let found = self
                .networks
                .iter()
                .filter(|e| e.network == network && e.is_of(row, settings, threads, &machine))
                .find_map(|e| e.member(row));
            match found {
                Some(member) => kept.push(member),
                None => break,
            }
        }
        kept
    }

    /// The networks of `row` kept under other settings, another thread count or backend, or on
    /// another machine, which a run under `settings` with `threads` threads does not use (and
    /// does not remove): `(network, what differs)`, the latter a phrase such as "with 1 thread,
    /// not 2 threads" or "on one machine, not another".
    pub fn other_networks(
        &self,
        row: &Row,
        settings: Settings,
        threads: usize,
    ) -> Vec<(usize, String)> {
        let machine = machine();
        self.networks
            .iter()
            .filter(|e| e.row == row.id && !e.is_of(row, settings, threads, &machine))
            .map(|e| {
                let differs = if e.settings != settings {
                    format!("with {}, not {settings}", e.settings)
                } else if e.threads != threads {
                    let threads_ = |n: usize| crate::report::console::count(n as u64, "thread");
                    format!("with {}, not {}", threads_(e.threads), threads_(threads))
                } else if e.backend != crate::backend::NAME {
                    format!("by {}, not {}", e.backend, crate::backend::NAME)
                } else {
                    format!("on {}, not {machine}", e.machine)
                };
                (e.network, differs)
            })
            .collect()
    }

    /// Keeps `member`, a network of `row` finished under `settings` with `threads` threads on
    /// this machine, replacing what was kept of that network under them before (and leaving
    /// what was kept under others).
    pub fn keep(&mut self, row: &Row, settings: Settings, threads: usize, member: &Member) {
        let machine = machine();
        self.networks.retain(|e| {
            !(e.network == member.network && e.is_of(row, settings, threads, &machine))
        });
        self.networks.push(NetworkEntry {
            row: row.id.to_string(),
            settings,
            network: member.network,
            nndl: member.accuracy,
            seconds: member.seconds,
            threads,
            backend: crate::backend::NAME.to_string(),
            machine,
            date: today(),
            // Each is the most likely of the 10 digits, so always a digit; were one not, the
            // record would refuse the entry when read, not misread it.
            predictions: member
                .predictions
                .iter()
                .map(|&d| char::from_digit(d as u32, 10).unwrap_or('?'))
                .collect(),
            from: member.from.map(str::to_string),
        });
    }

    /// After single-network `row` finished under `settings`: keeps its network as the first
    /// of every vote whose first network it is ([`Row::first_network_of`]), so that the vote
    /// does not train it again.
    fn share(&mut self, row: &Row, request: &BookRequest, settings: Settings, finished: &Finished) {
        if finished.predictions.is_empty() {
            return;
        }
        for vote in ROWS.iter().filter(|v| v.first_network_of == Some(row.id)) {
            if Settings::of(vote, request) != settings {
                continue;
            }
            let member = Member {
                network: 1,
                accuracy: finished.accuracy,
                seconds: 0.0,
                predictions: finished.predictions.clone(),
                from: vote.first_network_of,
            };
            self.keep(vote, settings, request.threads, &member);
        }
    }

    /// The recorded rows as the README's markdown table, in the book's order: per row the
    /// book's figure, nndl's, how it is scored, the epochs, the wall time and the verdict; under
    /// it the total time, the seeds, precisions, machines, backends and dates.
    pub fn table(&self) -> String {
        let entries: Vec<(&Row, &Entry)> = ROWS
            .iter()
            .filter_map(|r| self.entry(r.id).map(|e| (r, e)))
            .collect();
        let mut out = String::from(
            "| row | book | nndl | protocol | epochs | time | verdict |\n\
             |---|---|---|---|---|---|---|\n",
        );
        for (r, e) in &entries {
            let epochs = match (e.settings.epochs, r.ensemble) {
                (0, _) => "—".to_string(),
                (n, 1) if n == r.epochs => n.to_string(),
                (n, 1) => format!("{n} of {}", r.epochs),
                (n, _) if n == r.epochs => format!("{n}, each"),
                (n, _) => format!("{n} of {}, each", r.epochs),
            };
            let time = match &e.first_network_of {
                Some(other) => format!("{:.0} s + {other}'s network", e.seconds),
                None => format!("{:.0} s", e.seconds),
            };
            out.push_str(&format!(
                "| {} | {:.2}% | {:.2}% | {} | {epochs} | {time} | {} |\n",
                r.id,
                e.book,
                e.nndl,
                r.scored(),
                e.verdict.cell(e.nndl - e.book)
            ));
        }
        let total: f64 = entries.iter().map(|(_, e)| e.seconds).sum();
        let distinct = |f: &dyn Fn(&Entry) -> String| {
            let mut seen: Vec<String> = Vec::new();
            for (_, e) in &entries {
                let v = f(e);
                if !seen.contains(&v) {
                    seen.push(v);
                }
            }
            seen.join("; ")
        };
        let mut dates: Vec<&str> = entries.iter().map(|(_, e)| e.date.as_str()).collect();
        dates.sort_unstable();
        let dates = match (dates.first(), dates.last()) {
            (Some(a), Some(b)) if a != b => format!("{a} to {b}"),
            (Some(a), _) => a.to_string(),
            _ => "—".to_string(),
        };
        let reproduced = entries
            .iter()
            .filter(|(_, e)| e.verdict == Verdict::Reproduced)
            .count();
        let shared: Vec<String> = entries
            .iter()
            .filter_map(|(r, e)| {
                let other = e.first_network_of.as_ref()?;
                Some(format!(
                    " {}'s first network is {other}'s, trained once, its time in {other}'s row.",
                    r.id
                ))
            })
            .collect();
        out.push_str(&format!(
            "\n{} of the book's {} rows recorded, {reproduced} reproduced. Total time {}.{} \
             Seed {}. Precision: {}. Machine: {}. Backend: {} (--threads {}). Run {dates} by \
             `nndl book --rows`/`--all`; `nndl book --table FILE` writes this table from the \
             record.\n",
            entries.len(),
            ROWS.len(),
            hours(total),
            shared.concat(),
            distinct(&|e| e.settings.seed.to_string()),
            precisions(&entries),
            distinct(&|e| e.machine.clone()),
            distinct(&|e| e.backend.clone()),
            distinct(&|e| e.threads.to_string()),
        ));
        out
    }
}

/// Each precision with the chapters of the rows run in it: `f64 for chapters 1, 3, 5; f32 for
/// chapter 6`.
fn precisions(entries: &[(&Row, &Entry)]) -> String {
    let mut by: Vec<(Precision, Vec<u8>)> = Vec::new();
    for (r, e) in entries {
        let at = match by.iter().position(|(p, _)| *p == e.settings.precision) {
            Some(at) => at,
            None => {
                by.push((e.settings.precision, Vec::new()));
                by.len() - 1
            }
        };
        if !by[at].1.contains(&r.chapter) {
            by[at].1.push(r.chapter);
        }
    }
    let parts: Vec<String> = by
        .iter()
        .map(|(p, chapters)| {
            let list: Vec<String> = chapters.iter().map(u8::to_string).collect();
            let noun = match chapters.len() {
                1 => "chapter",
                _ => "chapters",
            };
            format!("{} for {noun} {}", p.name(), list.join(", "))
        })
        .collect();
    parts.join("; ")
}

/// `2 h 05 min`, `7 min 12 s` or `41 s`.
fn hours(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s ({s} s)", s / 60, s % 60),
        _ => format!("{} h {:02} min ({s} s)", s / 3600, s % 3600 / 60),
    }
}

/// Text from a file cut to a length fit for a message, control characters escaped.
fn cut(text: &str) -> String {
    const MAX: usize = 80;
    let mut out: String = text
        .chars()
        .take(MAX)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    out
}

/// The CPU's name (`model name` of `/proc/cpuinfo`, where there is one), its family and model
/// numbers where `/proc/cpuinfo` gives them, and the CPUs this process may use: `AMD EPYC
/// (family 25, model 1), 2 CPUs`. (Virtual machines often name the CPU no better than `AMD
/// EPYC`, which covers processors whose cores run the same network at twice each other's speed;
/// the numbers tell them apart.)
pub fn machine() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    machine_named(&info, cpus)
}

/// [`machine`] from the text of `/proc/cpuinfo` (empty where there is none) and the CPU count.
fn machine_named(cpuinfo: &str, cpus: usize) -> String {
    // The first CPU's field `key`, if it has a value.
    let field = |key: &str| {
        cpuinfo
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, value)| value.trim())
            .filter(|value| !value.is_empty())
    };
    let name = field("model name").unwrap_or(std::env::consts::ARCH);
    let numbers = match (field("cpu family"), field("model")) {
        (Some(family), Some(model)) => format!(" (family {family}, model {model})"),
        _ => String::new(),
    };
    format!(
        "{name}{numbers}, {}",
        crate::report::console::count(cpus as u64, "CPU")
    )
}

/// Today's date in UTC, `YYYY-MM-DD`. Written out (the civil-from-days conversion of the
/// proleptic Gregorian calendar) rather than taken from a date crate: it is all nndl needs of
/// one.
pub fn today() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil(seconds / 86_400);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The (year, month, day) of day `days` since 1970-01-01.
fn civil(days: u64) -> (u64, u64, u64) {
    // Eras of 400 years (146,097 days) from 0000-03-01, so that leap days fall at the end.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// The record `nndl book` uses: `--record`, or for `--rows`/`--all` and `--table` alone
/// (`several`) the default.
pub fn record_path(given: Option<&Path>, several: bool) -> Option<PathBuf> {
    match given {
        Some(path) => Some(path.to_path_buf()),
        None => several.then(|| PathBuf::from(DEFAULT_RECORD)),
    }
}

/// Makes the default record's directory if it is missing (a record named by `--record` must
/// be in a directory that exists).
pub fn make_default_dir(path: &Path) -> Result<(), RunError> {
    match path.parent() {
        Some(dir) if path == Path::new(DEFAULT_RECORD) => {
            std::fs::create_dir_all(dir).map_err(|source| RunError::Write {
                path: dir.to_path_buf(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// `nndl book ROW`, `--rows` or `--all`: runs the rows one after another, each printed with the
/// book's figure, the run's and the verdict. With a record, a row already in it under the
/// same settings is skipped, and each row that finishes is written to it at once (and to the
/// table, if asked), so that a stopped or killed run loses only the row it was in. Without
/// rows, writes the table from the record alone.
pub fn book(request: &BookRequest, stop: Option<Arc<AtomicBool>>) -> Result<(), RunError> {
    let mut rows: Vec<&'static Row> = Vec::new();
    for id in &request.rows {
        let r = row(id).ok_or_else(|| BookError::UnknownRow(id.clone()))?;
        if !rows.iter().any(|seen| seen.id == r.id) {
            rows.push(r);
        }
    }
    crate::config::check_threads(request.threads)?;
    if let (Some(record), Some(table)) = (&request.record, &request.table) {
        if same_file(record, table) {
            return Err(BookError::TableIsRecord(table.clone()).into());
        }
    }
    let mut record = match &request.record {
        Some(path) => Some((path, Record::read(path)?)),
        None => None,
    };
    if let (Some((path, _)), false) = (&record, rows.is_empty()) {
        make_default_dir(path)?;
        super::check_output(path)?;
    }
    if let Some(path) = &request.table {
        super::check_output(path)?;
    }
    if rows.is_empty() {
        let (path, record) = record
            .as_ref()
            .ok_or_else(|| BookError::NothingRecorded(PathBuf::from(DEFAULT_RECORD)))?;
        if record.is_empty() {
            return Err(BookError::NothingRecorded(path.to_path_buf()).into());
        }
        if let Some(table) = &request.table {
            write_table(record, table)?;
        }
        return Ok(());
    }
    // Everything a row needs is checked before the first one trains.
    let mut plan = Vec::with_capacity(rows.len());
    for &r in &rows {
        let settings = Settings::of(r, request);
        let recorded = record.as_ref().and_then(|(_, rec)| rec.entry(r.id));
        match recorded {
            Some(entry) if entry.settings == settings => {
                plan.push((r, settings, false));
                continue;
            }
            _ => plan.push((r, settings, true)),
        }
        r.check(request)?;
    }
    for (r, settings, run) in plan {
        if stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
            break;
        }
        if let Some((path, rec)) = &record {
            match rec.entry(r.id) {
                Some(entry) if !run => {
                    say(&format!(
                        "{}: skipped, recorded in {} on {}: nndl {:.2}% — {}",
                        r.id,
                        path.display(),
                        entry.date,
                        entry.nndl,
                        entry.verdict.text(entry.nndl - entry.book)
                    ));
                    continue;
                }
                Some(entry) => say(&format!(
                    "{}: recorded in {} with {}, not {}: not reused, running it again",
                    r.id,
                    path.display(),
                    entry.settings,
                    settings
                )),
                None => {}
            }
        }
        let done = match &record {
            Some((path, rec)) => {
                for (network, differs) in rec.other_networks(r, settings, request.threads) {
                    say(&format!(
                        "{}: network {network} kept in {} {differs}: not reused",
                        r.id,
                        path.display()
                    ));
                }
                rec.networks(r, settings, request.threads)
            }
            None => Vec::new(),
        };
        if let (Some(path), Some(last)) = (&request.save, done.last()) {
            say(&format!(
                "--save {}: networks 1 to {} were kept from an earlier run; their files are \
                 those it wrote, if any, not this run's",
                path.display(),
                last.network
            ));
        }
        let mut keep = |member: &Member| match &mut record {
            Some((path, rec)) => {
                rec.keep(r, settings, request.threads, member);
                rec.write(path)
            }
            None => Ok(()),
        };
        let members = Members {
            done,
            keep: &mut keep,
        };
        let Some(finished) = run_row(r, request, stop.clone(), members)? else {
            if let Some((path, rec)) = &record {
                let kept = rec.networks(r, settings, request.threads).len();
                if kept > 0 {
                    say(&format!(
                        "{}: {} of its {} networks kept in {}; a rerun goes on from network {}",
                        r.id,
                        kept,
                        r.ensemble,
                        path.display(),
                        kept + 1
                    ));
                }
            }
            break;
        };
        if let Some((path, rec)) = &mut record {
            rec.put(Entry::new(r, settings, &finished, request.threads));
            rec.share(r, request, settings, &finished);
            rec.write(path)?;
            if let Some(table) = &request.table {
                write_table(rec, table)?;
            }
        }
    }
    Ok(())
}

/// Whether `a` and `b` name one file (the same path, or the same existing file).
fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(a), Ok(b)) if a == b
        )
}

/// Writes `record` as a markdown table to `path` and says so.
fn write_table(record: &Record, path: &Path) -> Result<(), RunError> {
    let text = record.table();
    crate::output::write_atomically(path, |out| out.write_all(text.as_bytes())).map_err(
        |source| RunError::Write {
            path: path.to_path_buf(),
            source,
        },
    )?;
    say(&format!("Wrote {}", path.display()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_dated_as_the_calendar_does() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(59), (1970, 3, 1));
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert_eq!(civil(11_017), (2000, 3, 1));
        assert_eq!(civil(20_793), (2026, 12, 6));
    }

    /// A machine is named by its CPU's name and, where `/proc/cpuinfo` gives them, its family and
    /// model numbers (two processors a virtual machine names alike are told apart by them), from
    /// the first CPU's fields only.
    #[test]
    fn a_machine_is_named_with_its_family_and_model() {
        let cpu = |model: &str| {
            format!(
                "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: \
                 {model}\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2\n\n"
            )
        };
        let zen3 = cpu("1");
        assert_eq!(
            machine_named(&zen3, 2),
            "AMD EPYC (family 25, model 1), 2 CPUs"
        );
        assert_ne!(machine_named(&cpu("17"), 2), machine_named(&zen3, 2));
        let two = format!(
            "{zen3}{}",
            cpu("17").replace("processor\t: 0", "processor\t: 1")
        );
        assert_eq!(
            machine_named(&two, 1),
            "AMD EPYC (family 25, model 1), 1 CPU"
        );
        // Without the numbers (AArch64's /proc/cpuinfo), or without the file at all.
        let arm = "processor\t: 0\nBogoMIPS\t: 48.00\nCPU implementer\t: 0x41\n\n";
        let arch = std::env::consts::ARCH;
        assert_eq!(machine_named(arm, 8), format!("{arch}, 8 CPUs"));
        assert_eq!(machine_named("", 1), format!("{arch}, 1 CPU"));
    }

    /// A vote's networks come back from the file as they were kept, only under the settings,
    /// thread count, backend and machine they were kept with; keeping under others leaves them, and
    /// the vote's entry removes them all.
    #[test]
    fn a_votes_networks_come_back_only_under_their_settings() {
        let vote = row("ch6-vote").unwrap();
        let settings = Settings {
            seed: 3,
            precision: Precision::F32,
            epochs: 40,
        };
        let member = |network: usize, predictions: Vec<usize>| Member {
            network,
            accuracy: 99.5,
            seconds: 2000.0 + network as f64,
            predictions,
            from: None,
        };
        let path = std::env::temp_dir().join(format!("nndl-record-{}.json", std::process::id()));
        let mut record = Record::new();
        record.keep(vote, settings, 2, &member(1, vec![7, 2, 1, 0]));
        record.keep(vote, settings, 2, &member(2, vec![7, 2, 1, 9]));
        // Network 3 with one thread: not one of the two-thread run's.
        record.keep(vote, settings, 1, &member(3, vec![7, 2, 1, 1]));
        record.write(&path).unwrap();
        let read = Record::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(read, record);
        assert_eq!(
            read.networks(vote, settings, 2),
            [member(1, vec![7, 2, 1, 0]), member(2, vec![7, 2, 1, 9])]
        );
        assert!(read.networks(vote, settings, 1).is_empty(), "no network 1");
        let other = Settings {
            epochs: 39,
            ..settings
        };
        assert!(read.networks(vote, other, 2).is_empty());
        assert_eq!(
            read.other_networks(vote, settings, 2),
            [(3, "with 1 thread, not 2 threads".to_string())]
        );
        assert_eq!(read.other_networks(vote, other, 2).len(), 3);
        // A network the other backend trained is named, not reused.
        let mut by_other_backend = read.clone();
        by_other_backend.networks[0].backend = "another backend".to_string();
        assert_eq!(by_other_backend.networks(vote, settings, 2), []);
        assert_eq!(
            by_other_backend.other_networks(vote, settings, 2)[0],
            (
                1,
                format!("by another backend, not {}", crate::backend::NAME)
            )
        );

        // A network kept again under the same settings replaces the first; under others it
        // does not.
        let mut again = read.clone();
        again.keep(vote, settings, 2, &member(2, vec![1, 1, 1, 1]));
        again.keep(vote, other, 2, &member(1, vec![0, 0, 0, 0]));
        assert_eq!(
            again.networks(vote, settings, 2),
            [member(1, vec![7, 2, 1, 0]), member(2, vec![1, 1, 1, 1])]
        );
        assert_eq!(again.networks(vote, other, 2), [member(1, vec![0; 4])]);

        // The row's own network, shared: ch6-dropout's, kept as the vote's first.
        let dropout = row("ch6-dropout").unwrap();
        let request = BookRequest {
            rows: vec![dropout.id.to_string()],
            record: None,
            table: None,
            epochs: None,
            data: PathBuf::new(),
            expanded: PathBuf::new(),
            precision: None,
            threads: 2,
            seed: 5,
            save: None,
            tensorboard: None,
        };
        let dropout_settings = Settings::of(dropout, &request);
        let finished = Finished {
            accuracy: 99.6,
            seconds: 2068.0,
            predictions: vec![3, 1, 4],
            shared: None,
        };
        let mut shared = Record::new();
        shared.share(dropout, &request, dropout_settings, &finished);
        let kept = shared.networks(vote, dropout_settings, 2);
        assert_eq!(kept.len(), 1);
        assert_eq!(
            (
                kept[0].network,
                kept[0].seconds,
                &kept[0].predictions,
                kept[0].from
            ),
            (1, 0.0, &vec![3, 1, 4], Some("ch6-dropout"))
        );

        // The vote recorded: nothing of it is kept any longer.
        again.put(Entry::new(vote, settings, &finished, 2));
        assert!(again.networks.is_empty());
    }

    #[test]
    fn verdicts_follow_the_books_figure_and_epochs() {
        let ch1 = row("ch1").unwrap();
        assert_eq!(Verdict::of(ch1, 95.12, 30), Verdict::Reproduced);
        assert_eq!(Verdict::of(ch1, 95.11, 30), Verdict::NotReproduced);
        assert_eq!(Verdict::of(ch1, 99.0, 29), Verdict::Shortened);
        assert_eq!(
            Verdict::NotReproduced.cell(-0.374),
            "not reproduced (−0.37)"
        );
    }
}
