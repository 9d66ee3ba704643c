//! The layering `docs/architecture.md` states, checked over the source: every module of
//! `src/` names the modules it uses (`use crate::…`, `use super::…`, and paths such as
//! `crate::model::file::save(…)` in code), and
//! - no two modules use each other, directly or round a longer circle;
//! - each folder builds only on the folders listed before it: `real`, `backend`, `rng` and
//!   `output`;
//!   `data`; `model`; `config`; `train`; `tune`; `report`; `run` — with one exception, stated
//!   in the architecture page: a model file (`model/file.rs`, `model/layers/file.rs`) records
//!   the configuration it was trained with, so it may use `config`.
//!
//! Comments and `#[cfg(test)]` modules are left out: a doc link or a test is no dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The folders (or top-level files) in the order they build on each other.
const ORDER: [&[&str]; 8] = [
    &["real", "backend", "rng", "output"],
    &["data"],
    &["model"],
    &["config"],
    &["train"],
    &["tune"],
    &["report"],
    &["run"],
];

/// Uses against the order that the architecture page states: (module, folder it may use).
const EXCEPTIONS: [(&str, &str); 2] =
    [("model::file", "config"), ("model::layers::file", "config")];

fn rank(module: &str) -> Option<usize> {
    let top = module.split("::").next()?;
    ORDER.iter().position(|folder| folder.contains(&top))
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file under `src/` is: `model::layers::file`, `tune` for `tune/mod.rs`.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// The code of a file without comments and without its `#[cfg(test)]` module.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a file names from `crate::` or `super::`, as module paths (`model::file::save`),
/// with the items of `use a::{b, c::{d}}` groups spelled out.
fn paths(module: &str, is_mod_rs: bool, code: &str) -> Vec<String> {
    let parent: Vec<&str> = {
        let mut parts: Vec<&str> = module.split("::").filter(|p| !p.is_empty()).collect();
        if !is_mod_rs {
            parts.pop();
        }
        parts
    };
    let mut found = Vec::new();
    for start in ["crate::", "super::"] {
        let mut rest = code;
        while let Some(at) = rest.find(start) {
            let before = rest[..at].chars().last();
            rest = &rest[at + start.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let base: Vec<&str> = if start == "crate::" {
                Vec::new()
            } else {
                parent.clone()
            };
            let mut prefix = base.join("::");
            for path in expand(rest) {
                let mut path = path;
                // `super::super::x`
                let mut base = parent.clone();
                let mut from_super = start == "super::";
                while let Some(r) = path.strip_prefix("super::") {
                    base.pop();
                    path = r.to_string();
                    from_super = true;
                }
                if from_super {
                    prefix = base.join("::");
                }
                found.push(if prefix.is_empty() {
                    path
                } else {
                    format!("{prefix}::{path}")
                });
            }
        }
    }
    found
}

/// `a::b::{c, d::{e}}` at the start of `text`, as full paths (`a::b::c`, `a::b::d::e`).
fn expand(text: &str) -> Vec<String> {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len());
    let head = &text[..end];
    if text[end..].starts_with('{') && head.ends_with("::") {
        let mut depth = 0;
        let mut items = Vec::new();
        let mut item_start = end + 1;
        for (i, c) in text[end..].char_indices() {
            let i = end + i;
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        items.push(&text[item_start..i]);
                        break;
                    }
                }
                ',' if depth == 1 => {
                    items.push(&text[item_start..i]);
                    item_start = i + 1;
                }
                _ => {}
            }
        }
        return items
            .into_iter()
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .flat_map(|i| expand(i).into_iter().map(move |p| format!("{head}{p}")))
            .collect();
    }
    vec![head.trim_end_matches("::").to_string()]
}

/// The longest prefix of `path` that is a module of `modules`.
fn resolve<'a>(path: &str, modules: &'a BTreeSet<String>) -> Option<&'a String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .find_map(|n| modules.get(&parts[..n].join("::")))
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut edges = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "lib" || module == "main" || module == "cli" {
            continue;
        }
        let is_mod_rs = file.file_name().is_some_and(|n| n == "mod.rs");
        let text = std::fs::read_to_string(file).unwrap();
        let used: BTreeSet<String> = paths(&module, is_mod_rs, &code(&text))
            .iter()
            .filter_map(|p| resolve(p, &modules))
            .filter(|m| **m != module)
            .cloned()
            .collect();
        edges.insert(module, used);
    }
    edges
}

#[test]
fn paths_are_read_as_modules() {
    assert_eq!(
        expand("model::{file::{self, SavedModel}, layers::LayerNetwork};"),
        [
            "model::file::self",
            "model::file::SavedModel",
            "model::layers::LayerNetwork"
        ]
    );
    let found = paths(
        "tune::objective",
        false,
        "use super::hyper::{lookup, Draft};\nlet x = crate::config::TrainConfig::default();",
    );
    assert_eq!(
        found,
        [
            "config::TrainConfig::default",
            "tune::hyper::lookup",
            "tune::hyper::Draft"
        ]
    );
    let g = graph();
    assert!(
        g["tune::objective"].contains("tune::hyper"),
        "{:?}",
        g["tune::objective"]
    );
    assert!(
        g["run::tune"].contains("tune::store"),
        "{:?}",
        g["run::tune"]
    );
}

#[test]
fn no_module_uses_one_that_uses_it() {
    let g = graph();
    // Depth-first search for a path back to the start, from every module.
    let mut circles = Vec::new();
    for start in g.keys() {
        let mut stack = vec![vec![start.clone()]];
        let mut seen = BTreeSet::new();
        while let Some(path) = stack.pop() {
            let last = path.last().unwrap();
            for next in g.get(last).into_iter().flatten() {
                if next == start {
                    circles.push(path.join(" → ") + " → " + start);
                } else if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push(longer);
                }
            }
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn each_folder_builds_only_on_the_ones_before_it() {
    let g = graph();
    let mut against = Vec::new();
    for (module, used) in &g {
        let Some(own) = rank(module) else { continue };
        for other in used {
            let top = other.split("::").next().unwrap_or_default();
            let allowed = EXCEPTIONS.contains(&(module.as_str(), top));
            if rank(other).is_some_and(|r| r > own) && !allowed {
                against.push(format!("{module} uses {other}"));
            }
        }
    }
    assert!(
        against.is_empty(),
        "against the layering:\n{}",
        against.join("\n")
    );
}
