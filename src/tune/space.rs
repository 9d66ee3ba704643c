//! The search space: which hyperparameters a study varies, and over what values.
//!
//! A parameter is a name nndl knows (the table of [`super::hyper`]) and a [`Kind`]: a float range
//! (`float:LO:HI`), the same on a log scale (`log:LO:HI`), an integer range (`int:LO:HI`,
//! `intlog:LO:HI`) or a list of choices (`choice:A,B,…`).
//!
//! Parsing checks each parameter against the rules `train` applies to one value (η > 0, λ ≥ 0,
//! 0 ≤ dropout < 1, sizes and counts whole and at least 1, known costs, activations and weight
//! initialisers), so a space only holds values a trial can train with. What it cannot check
//! without the data (a mini-batch larger than the training set) is left to the trial's own
//! configuration check.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::hyper::{self, lookup, Name, Rule};

/// The values a parameter may take.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Kind {
    /// A float uniformly in [lo, hi].
    Float { lo: f64, hi: f64 },
    /// A float in [lo, hi] whose logarithm is uniform (0 < lo < hi).
    Log { lo: f64, hi: f64 },
    /// A whole number in lo..=hi.
    Int { lo: i64, hi: i64 },
    /// A whole number in lo..=hi whose logarithm is uniform (0 < lo < hi).
    IntLog { lo: i64, hi: i64 },
    /// One of these values, as written on the command line.
    Choice { choices: Vec<String> },
}

/// One parameter of the space.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// The hyperparameter, by its command-line name (`eta`, `lambda`, `mini-batch`, …).
    pub name: String,
    pub kind: Kind,
}

/// The parameters a study varies, in the order given.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Space {
    pub params: Vec<Param>,
}

/// One parameter's value in a trial.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Int(i64),
    Float(f64),
    /// A choice, as written.
    Choice(String),
}

/// A trial's parameters by name.
pub type Params = BTreeMap<String, Value>;

/// A `--param` that cannot be searched, with what is wrong in the user's terms.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SpaceError {
    #[error("--param {0:?} is not NAME=KIND, e.g. eta=log:0.01:10")]
    NoEquals(String),
    #[error(
        "unknown parameter {0:?}; the known ones are {names} (N: a layer's number, from 1)",
        names = hyper::names()
    )]
    UnknownName(String),
    #[error(
        "unknown kind {kind:?} for {name}; use float:LO:HI, log:LO:HI, int:LO:HI, intlog:LO:HI \
         or choice:A,B,…"
    )]
    UnknownKind { name: String, kind: String },
    #[error("{name}={text} is malformed: {kind} takes exactly LO:HI, as in {name}={kind}:1:10")]
    NotARange {
        name: String,
        text: String,
        kind: &'static str,
    },
    #[error("{name}: {text:?} is not a finite number")]
    NotANumber { name: String, text: String },
    #[error("{name}: {text:?} is not a whole number")]
    NotAnInteger { name: String, text: String },
    #[error("{name}: the range's low end {lo} must be below its high end {hi}")]
    EmptyRange {
        name: String,
        lo: String,
        hi: String,
    },
    #[error("{name}: a log range needs bounds above 0, got a low end of {lo}")]
    LogBound { name: String, lo: String },
    #[error("{name}: choice needs at least one value, each non-empty, as in choice:A,B")]
    EmptyChoice { name: String },
    #[error("{name}: the choice {value:?} is given twice")]
    RepeatedChoice { name: String, value: String },
    #[error("{name}: {value:?} is not one of {}", allowed.join(", "))]
    InvalidChoice {
        name: String,
        value: String,
        allowed: &'static [&'static str],
    },
    #[error("{name}: cost, activation and weight-init take choice:A,B,…, not {kind}")]
    NeedsChoice { name: String, kind: &'static str },
    #[error("{name} is a whole number: use int:LO:HI, intlog:LO:HI or choice of whole numbers, not {kind}")]
    NeedsIntegers { name: String, kind: &'static str },
    #[error("{name} must be {rule}, got {value}")]
    OutOfBounds {
        name: String,
        rule: &'static str,
        value: f64,
    },
    #[error("{0} is given twice")]
    Duplicate(String),
    #[error("hidden sets every hidden layer, so it cannot be given with {0}")]
    HiddenTwice(String),
    #[error("the parameter {0} does not read back as written (a choice with a comma?)")]
    NotReadBack(String),
    #[error("the space file is not TOML of the form params = [\"eta=log:0.01:10\", …]: {0}")]
    Toml(String),
}

/// Whether `value` obeys `rule`, as [`SpaceError::OutOfBounds`] if not.
fn check_number(rule: Rule, name: &str, value: f64) -> Result<(), SpaceError> {
    match rule.admits(value) {
        (true, _) => Ok(()),
        (false, rule) => Err(SpaceError::OutOfBounds {
            name: name.to_string(),
            rule,
            value,
        }),
    }
}

/// True for a name that sets one hidden layer (`hidden2`).
fn is_hidden_layer(name: &str) -> bool {
    lookup(name).is_some_and(|(hyper, _)| hyper.name == Name::Plain("hiddenN"))
}

impl Kind {
    /// The kind's name as written on the command line (`float`, `log`, …).
    pub fn keyword(&self) -> &'static str {
        match self {
            Kind::Float { .. } => "float",
            Kind::Log { .. } => "log",
            Kind::Int { .. } => "int",
            Kind::IntLog { .. } => "intlog",
            Kind::Choice { .. } => "choice",
        }
    }

    /// True for the kinds spaced on a log scale (`log`, `intlog`).
    pub fn is_log(&self) -> bool {
        matches!(self, Kind::Log { .. } | Kind::IntLog { .. })
    }
}

impl std::fmt::Display for Kind {
    /// The kind as it is written after `NAME=`, e.g. `log:0.01:10` or `choice:5,10`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Float { lo, hi } | Kind::Log { lo, hi } => {
                write!(f, "{}:{lo}:{hi}", self.keyword())
            }
            Kind::Int { lo, hi } | Kind::IntLog { lo, hi } => {
                write!(f, "{}:{lo}:{hi}", self.keyword())
            }
            Kind::Choice { choices } => write!(f, "choice:{}", choices.join(",")),
        }
    }
}

impl std::fmt::Display for Param {
    /// The parameter as given to `--param`, e.g. `eta=log:0.01:10`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.name, self.kind)
    }
}

impl std::str::FromStr for Param {
    type Err = SpaceError;

    /// Parses one `--param NAME=KIND` and checks it against the rules of `NAME`.
    fn from_str(text: &str) -> Result<Param, SpaceError> {
        let (name, kind_text) = text
            .split_once('=')
            .ok_or_else(|| SpaceError::NoEquals(text.to_string()))?;
        let name = name.trim();
        let (hyper, _) = lookup(name).ok_or_else(|| SpaceError::UnknownName(name.to_string()))?;
        let rule = hyper.rule;
        let kind = parse_kind(name, kind_text.trim())?;
        check_kind(name, rule, &kind)?;
        Ok(Param {
            name: name.to_string(),
            kind,
        })
    }
}

/// Parses the text after `NAME=` into a [`Kind`], checking only its own form (numbers, LO < HI,
/// log bounds above 0, non-empty distinct choices).
fn parse_kind(name: &str, text: &str) -> Result<Kind, SpaceError> {
    let (keyword, rest) = text.split_once(':').unwrap_or((text, ""));
    let keyword = match keyword {
        "float" => "float",
        "log" => "log",
        "int" => "int",
        "intlog" => "intlog",
        "choice" => "choice",
        _ => {
            return Err(SpaceError::UnknownKind {
                name: name.to_string(),
                kind: keyword.to_string(),
            })
        }
    };
    if keyword == "choice" {
        let choices: Vec<String> = rest.split(',').map(|c| c.trim().to_string()).collect();
        if choices.iter().any(String::is_empty) {
            return Err(SpaceError::EmptyChoice {
                name: name.to_string(),
            });
        }
        for (i, choice) in choices.iter().enumerate() {
            if choices[..i].contains(choice) {
                return Err(SpaceError::RepeatedChoice {
                    name: name.to_string(),
                    value: choice.clone(),
                });
            }
        }
        return Ok(Kind::Choice { choices });
    }
    let bounds: Vec<&str> = rest.split(':').collect();
    let [lo, hi] = bounds[..] else {
        return Err(SpaceError::NotARange {
            name: name.to_string(),
            text: text.to_string(),
            kind: keyword,
        });
    };
    if keyword == "float" || keyword == "log" {
        let (lo, hi) = (parse_float(name, lo)?, parse_float(name, hi)?);
        check_range(name, keyword == "log", lo, hi, 0.0)?;
        return Ok(if keyword == "log" {
            Kind::Log { lo, hi }
        } else {
            Kind::Float { lo, hi }
        });
    }
    let (lo, hi) = (parse_int(name, lo)?, parse_int(name, hi)?);
    check_range(name, keyword == "intlog", lo, hi, 0)?;
    Ok(if keyword == "intlog" {
        Kind::IntLog { lo, hi }
    } else {
        Kind::Int { lo, hi }
    })
}

/// LO < HI, and both above 0 on a log scale; compared in their own type, so that whole numbers
/// near 2^63 are not rounded together as they would be as `f64`.
fn check_range<T: PartialOrd + std::fmt::Display>(
    name: &str,
    log: bool,
    lo: T,
    hi: T,
    zero: T,
) -> Result<(), SpaceError> {
    if lo >= hi {
        return Err(SpaceError::EmptyRange {
            name: name.to_string(),
            lo: lo.to_string(),
            hi: hi.to_string(),
        });
    }
    if log && lo <= zero {
        return Err(SpaceError::LogBound {
            name: name.to_string(),
            lo: lo.to_string(),
        });
    }
    Ok(())
}

fn parse_float(name: &str, text: &str) -> Result<f64, SpaceError> {
    match text.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(SpaceError::NotANumber {
            name: name.to_string(),
            text: text.to_string(),
        }),
    }
}

fn parse_int(name: &str, text: &str) -> Result<i64, SpaceError> {
    text.trim()
        .parse::<i64>()
        .map_err(|_| SpaceError::NotAnInteger {
            name: name.to_string(),
            text: text.to_string(),
        })
}

/// Checks a parsed kind against what the parameter `name` may be: whole numbers for sizes and
/// counts, names for `cost`, `activation` and `weight-init`, and the bounds of η, λ and
/// dropout. A range is checked at both ends, which covers every value between.
fn check_kind(name: &str, rule: Rule, kind: &Kind) -> Result<(), SpaceError> {
    match (rule, kind) {
        (Rule::Named(allowed), Kind::Choice { choices }) => {
            match choices.iter().find(|c| !allowed.contains(&c.as_str())) {
                Some(bad) => Err(SpaceError::InvalidChoice {
                    name: name.to_string(),
                    value: bad.clone(),
                    allowed,
                }),
                None => Ok(()),
            }
        }
        (Rule::Named(_), _) => Err(SpaceError::NeedsChoice {
            name: name.to_string(),
            kind: kind.keyword(),
        }),
        (Rule::Count, Kind::Float { .. } | Kind::Log { .. }) => Err(SpaceError::NeedsIntegers {
            name: name.to_string(),
            kind: kind.keyword(),
        }),
        (Rule::Count, Kind::Choice { choices }) => {
            for choice in choices {
                let value = parse_int(name, choice)?;
                check_number(rule, name, value as f64)?;
            }
            Ok(())
        }
        (_, Kind::Choice { choices }) => {
            for choice in choices {
                check_number(rule, name, parse_float(name, choice)?)?;
            }
            Ok(())
        }
        (_, Kind::Float { lo, hi } | Kind::Log { lo, hi }) => {
            check_number(rule, name, *lo)?;
            check_number(rule, name, *hi)
        }
        (_, Kind::Int { lo, hi } | Kind::IntLog { lo, hi }) => {
            check_number(rule, name, *lo as f64)?;
            check_number(rule, name, *hi as f64)
        }
    }
}

impl Space {
    /// The space of a list of `--param NAME=KIND` arguments, in their order; a name may be
    /// given once, and `hidden` (every hidden layer) not together with `hidden1`, `hidden2`, ….
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Space, SpaceError> {
        let mut params: Vec<Param> = Vec::with_capacity(args.len());
        for arg in args {
            let param: Param = arg.as_ref().parse()?;
            if params.iter().any(|p| p.name == param.name) {
                return Err(SpaceError::Duplicate(param.name));
            }
            let is_layer = is_hidden_layer;
            let clash = if param.name == "hidden" {
                params.iter().find(|p| is_layer(&p.name))
            } else if is_layer(&param.name) {
                params.iter().find(|p| p.name == "hidden")
            } else {
                None
            };
            if let Some(other) = clash {
                let layer = if param.name == "hidden" {
                    &other.name
                } else {
                    &param.name
                };
                return Err(SpaceError::HiddenTwice(layer.clone()));
            }
            params.push(param);
        }
        Ok(Space { params })
    }

    /// The space of a TOML file holding the same `NAME=KIND` texts as `--param`, in order:
    ///
    /// ```toml
    /// params = ["eta=log:0.01:10", "lambda=log:0.001:50", "mini-batch=choice:10,20"]
    /// ```
    pub fn from_toml(text: &str) -> Result<Space, SpaceError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            params: Vec<String>,
        }
        let file: File =
            toml::from_str(text).map_err(|e| SpaceError::Toml(e.message().to_string()))?;
        Space::parse(&file.params)
    }

    /// Checks a space that did not come from [`Space::parse`] (one read back from a store) by
    /// the same rules, so that samplers, which draw from any range they are given, only see
    /// non-empty ranges and lists.
    pub fn check(&self) -> Result<(), SpaceError> {
        let texts: Vec<String> = self.params.iter().map(Param::to_string).collect();
        let parsed = Space::parse(&texts)?;
        match parsed.params.iter().zip(&self.params).find(|(a, b)| a != b) {
            Some((_, differs)) => Err(SpaceError::NotReadBack(differs.to_string())),
            None => Ok(()),
        }
    }

    /// The parameter called `name`, if the space varies it.
    pub fn get(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }
}

impl Value {
    /// The value as a person reads it, floats to 4 significant digits (`0.3427`, `25.53`,
    /// `0.5`);
    /// [`Display`](std::fmt::Display) writes it exactly.
    pub fn short(&self) -> String {
        match self {
            Value::Float(v) => significant(*v, 4),
            other => other.to_string(),
        }
    }

    /// The value as a number: ints and floats as they are, a choice if it is written as one
    /// (`choice:5,10` gives 5.0 or 10.0).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(x) => Some(*x),
            Value::Choice(text) => text.parse().ok(),
        }
    }

    /// The value as a whole number: an int, or a choice written as one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Float(_) => None,
            Value::Choice(text) => text.parse().ok(),
        }
    }
}

/// `x` to `digits` significant digits without trailing zeros (`0.3427`, `25.53`, `0.5`), with
/// an exponent when it is under 1e-4 or from 1e6 on (`2.5e-5`, `4.327e201`).
pub fn significant(x: f64, digits: i32) -> String {
    let trim = |text: &str| text.trim_end_matches('0').trim_end_matches('.').to_string();
    if x == 0.0 || !x.is_finite() {
        format!("{x}")
    } else if !(1e-4..1e6).contains(&x.abs()) {
        let text = format!("{x:.*e}", (digits - 1).max(0) as usize);
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        format!("{}e{exponent}", trim(mantissa))
    } else {
        let decimals = (digits - 1 - x.abs().log10().floor() as i32).max(0) as usize;
        let text = format!("{x:.decimals$}");
        if text.contains('.') {
            trim(&text)
        } else {
            text
        }
    }
}

/// A float as a user would write it, read back exactly: `0.5`, `1e-7`, `4.3e201` (Rust's `{}`
/// writes every digit of a large float, 200 of them for 4.3e201).
pub fn number(x: f64) -> String {
    if x != 0.0 && x.is_finite() && !(1e-6..1e16).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

impl std::fmt::Display for Value {
    /// The value as a user would write it: `0.5`, `30`, `cross-entropy`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => f.write_str(&number(*x)),
            Value::Choice(text) => f.write_str(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(text: &str) -> Result<Param, SpaceError> {
        text.parse()
    }

    fn kind(text: &str) -> Kind {
        match param(text) {
            Ok(p) => p.kind,
            Err(e) => panic!("{text} should parse: {e}"),
        }
    }

    #[test]
    fn every_kind_parses() {
        assert_eq!(kind("eta=float:0.1:3"), Kind::Float { lo: 0.1, hi: 3.0 });
        assert_eq!(kind("eta=log:1e-2:10"), Kind::Log { lo: 0.01, hi: 10.0 });
        assert_eq!(kind("hidden=int:10:100"), Kind::Int { lo: 10, hi: 100 });
        assert_eq!(
            kind("hidden2=intlog:10:200"),
            Kind::IntLog { lo: 10, hi: 200 }
        );
        assert_eq!(
            kind("mini-batch=choice:5,10,20"),
            Kind::Choice {
                choices: vec!["5".into(), "10".into(), "20".into()]
            }
        );
        assert_eq!(
            kind("cost=choice:quadratic,log-likelihood"),
            Kind::Choice {
                choices: vec!["quadratic".into(), "log-likelihood".into()]
            }
        );
        assert_eq!(
            kind("activation=choice:tanh,relu,sigmoid"),
            Kind::Choice {
                choices: vec!["tanh".into(), "relu".into(), "sigmoid".into()]
            }
        );
        assert_eq!(kind("lambda=float:0:5"), Kind::Float { lo: 0.0, hi: 5.0 });
        assert_eq!(
            kind("dropout=float:0:0.5"),
            Kind::Float { lo: 0.0, hi: 0.5 }
        );
        assert_eq!(kind("epochs=int:1:30"), Kind::Int { lo: 1, hi: 30 });
        assert_eq!(
            kind("early-stop=choice:3,5"),
            Kind::Choice {
                choices: vec!["3".into(), "5".into()]
            }
        );
        assert_eq!(
            kind("eta=choice:0.1,0.5,3"),
            Kind::Choice {
                choices: vec!["0.1".into(), "0.5".into(), "3".into()]
            }
        );
    }

    #[test]
    fn a_param_prints_as_it_is_written() {
        for text in [
            "eta=log:0.01:10",
            "hidden=int:10:100",
            "mini-batch=choice:5,10",
        ] {
            assert_eq!(param(text).map(|p| p.to_string()), Ok(text.to_string()));
        }
    }

    #[test]
    fn malformed_text_is_refused() {
        assert!(matches!(param("eta"), Err(SpaceError::NoEquals(_))));
        assert!(matches!(
            param("eta=log:0.1"),
            Err(SpaceError::NotARange { .. })
        ));
        assert!(matches!(
            param("eta=log:0.1:1:2"),
            Err(SpaceError::NotARange { .. })
        ));
        assert!(matches!(
            param("eta=log"),
            Err(SpaceError::NotARange { .. })
        ));
        assert!(matches!(
            param("eta=float:a:1"),
            Err(SpaceError::NotANumber { .. })
        ));
        assert!(matches!(
            param("eta=float:0.1:inf"),
            Err(SpaceError::NotANumber { .. })
        ));
        assert!(matches!(
            param("eta=choice:"),
            Err(SpaceError::EmptyChoice { .. })
        ));
        assert!(matches!(
            param("eta=choice:0.1,,1"),
            Err(SpaceError::EmptyChoice { .. })
        ));
        assert!(matches!(
            param("eta=choice:0.1,0.1"),
            Err(SpaceError::RepeatedChoice { .. })
        ));
        assert!(matches!(
            param("eta=choice:0.1,fast"),
            Err(SpaceError::NotANumber { .. })
        ));
    }

    #[test]
    fn unknown_names_and_kinds_are_refused() {
        assert!(matches!(
            param("learning-rate=log:0.1:1"),
            Err(SpaceError::UnknownName(_))
        ));
        assert!(matches!(
            param("hidden0=int:1:2"),
            Err(SpaceError::UnknownName(_))
        ));
        assert!(matches!(
            param("hiddenx=int:1:2"),
            Err(SpaceError::UnknownName(_))
        ));
        assert!(matches!(
            param("eta=normal:0:1"),
            Err(SpaceError::UnknownKind { .. })
        ));
    }

    #[test]
    fn empty_ranges_and_log_bounds_are_refused() {
        assert!(matches!(
            param("eta=float:1:1"),
            Err(SpaceError::EmptyRange { .. })
        ));
        assert!(matches!(
            param("eta=log:10:0.1"),
            Err(SpaceError::EmptyRange { .. })
        ));
        assert!(matches!(
            param("hidden=int:30:30"),
            Err(SpaceError::EmptyRange { .. })
        ));
        assert!(matches!(
            param("lambda=log:0:5"),
            Err(SpaceError::LogBound { .. })
        ));
        // λ may be 0 on a linear scale, never on a log one.
        assert!(param("lambda=float:0:5").is_ok());
        // Whole numbers are compared as whole numbers: as f64 these two ends were one number.
        assert!(param("hidden=int:9223372036854775806:9223372036854775807").is_ok());
        assert_eq!(
            param("hidden=int:9223372036854775807:9223372036854775806").map_err(|e| e.to_string()),
            Err(
                "hidden: the range's low end 9223372036854775807 must be below its high end \
                 9223372036854775806"
                    .into()
            )
        );
    }

    #[test]
    fn integer_parameters_need_whole_numbers() {
        assert!(matches!(
            param("hidden=int:10.5:20"),
            Err(SpaceError::NotAnInteger { .. })
        ));
        assert!(matches!(
            param("epochs=intlog:1:3e1"),
            Err(SpaceError::NotAnInteger { .. })
        ));
        for name in ["mini-batch", "epochs", "hidden", "hidden3", "early-stop"] {
            let float = param(&format!("{name}=float:1:10"));
            assert!(
                matches!(float, Err(SpaceError::NeedsIntegers { .. })),
                "{name}"
            );
            let log = param(&format!("{name}=log:1:10"));
            assert!(
                matches!(log, Err(SpaceError::NeedsIntegers { .. })),
                "{name}"
            );
            let choice = param(&format!("{name}=choice:5,7.5"));
            assert!(
                matches!(choice, Err(SpaceError::NotAnInteger { .. })),
                "{name}"
            );
            let zero = param(&format!("{name}=int:0:10"));
            assert!(
                matches!(zero, Err(SpaceError::OutOfBounds { .. })),
                "{name}"
            );
        }
    }

    #[test]
    fn costs_activations_and_initialisers_must_be_known_choices() {
        assert!(matches!(
            param("cost=choice:quadratic,hinge"),
            Err(SpaceError::InvalidChoice { value, .. }) if value == "hinge"
        ));
        assert!(matches!(
            param("activation=choice:relu,gelu"),
            Err(SpaceError::InvalidChoice { .. })
        ));
        assert!(matches!(
            param("weight-init=choice:large,xavier"),
            Err(SpaceError::InvalidChoice { value, .. }) if value == "xavier"
        ));
        assert_eq!(
            kind("weight-init=choice:large,scaled"),
            Kind::Choice {
                choices: vec!["large".into(), "scaled".into()]
            }
        );
        assert!(matches!(
            param("weight-init=int:0:1"),
            Err(SpaceError::NeedsChoice { .. })
        ));
        assert!(matches!(
            param("cost=int:1:3"),
            Err(SpaceError::NeedsChoice { .. })
        ));
    }

    #[test]
    fn eta_lambda_and_dropout_keep_their_bounds() {
        assert!(matches!(
            param("eta=float:0:1"),
            Err(SpaceError::OutOfBounds { .. })
        ));
        assert!(matches!(
            param("eta=choice:0.5,-1"),
            Err(SpaceError::OutOfBounds { .. })
        ));
        assert!(matches!(
            param("lambda=float:-1:5"),
            Err(SpaceError::OutOfBounds { .. })
        ));
        assert!(matches!(
            param("dropout=float:0:1"),
            Err(SpaceError::OutOfBounds { .. })
        ));
        assert!(matches!(
            param("dropout=float:-0.1:0.5"),
            Err(SpaceError::OutOfBounds { .. })
        ));
        assert!(matches!(
            param("dropout=choice:0,0.5,1"),
            Err(SpaceError::OutOfBounds { .. })
        ));
    }

    #[test]
    fn a_space_keeps_order_and_refuses_duplicates() {
        let space = Space::parse(&["eta=log:0.01:10", "hidden1=int:10:50", "hidden2=int:10:50"]);
        let names: Vec<String> = space
            .map(|s| s.params.into_iter().map(|p| p.name).collect())
            .unwrap_or_default();
        assert_eq!(names, ["eta", "hidden1", "hidden2"]);
        assert_eq!(
            Space::parse(&["eta=log:0.01:10", "eta=float:0.1:1"]),
            Err(SpaceError::Duplicate("eta".into()))
        );
        assert_eq!(
            Space::parse(&["hidden=int:10:50", "hidden2=int:10:50"]),
            Err(SpaceError::HiddenTwice("hidden2".into()))
        );
        assert_eq!(
            Space::parse(&["hidden1=int:10:50", "hidden=int:10:50"]),
            Err(SpaceError::HiddenTwice("hidden1".into()))
        );
    }

    #[test]
    fn a_space_from_elsewhere_is_checked_by_the_same_rules() {
        let parsed = Space::parse(&["eta=log:0.01:10", "cost=choice:quadratic,cross-entropy"]);
        assert_eq!(parsed.as_ref().map(Space::check), Ok(Ok(())));
        let reversed = Space {
            params: vec![Param {
                name: "eta".into(),
                kind: Kind::Float { lo: 3.0, hi: 0.1 },
            }],
        };
        assert!(matches!(
            reversed.check(),
            Err(SpaceError::EmptyRange { .. })
        ));
        let empty = Space {
            params: vec![Param {
                name: "mini-batch".into(),
                kind: Kind::Choice { choices: vec![] },
            }],
        };
        assert!(matches!(empty.check(), Err(SpaceError::EmptyChoice { .. })));
        let comma = Space {
            params: vec![Param {
                name: "eta".into(),
                kind: Kind::Choice {
                    choices: vec!["0.1,0.2".into()],
                },
            }],
        };
        assert!(matches!(comma.check(), Err(SpaceError::NotReadBack(_))));
    }

    #[test]
    fn a_toml_file_gives_the_same_space() {
        let file =
            "# the space of chapter 3\nparams = [\"eta=log:0.01:10\", \"hidden=int:10:100\"]\n";
        assert_eq!(
            Space::from_toml(file),
            Space::parse(&["eta=log:0.01:10", "hidden=int:10:100"])
        );
        assert!(matches!(
            Space::from_toml("params = [\"eta=log:0:10\"]"),
            Err(SpaceError::LogBound { .. })
        ));
        for bad in [
            "params = \"eta=log:0.01:10\"",
            "param = []",
            "params = [1, 2]",
            "params = [",
        ] {
            assert!(
                matches!(Space::from_toml(bad), Err(SpaceError::Toml(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn messages_name_the_parameter_and_the_fix() {
        let message = |text: &str| param(text).map_err(|e| e.to_string()).err();
        assert_eq!(
            message("lambda=log:0:5").as_deref(),
            Some("lambda: a log range needs bounds above 0, got a low end of 0")
        );
        assert_eq!(
            message("eta=log:1:0.1").as_deref(),
            Some("eta: the range's low end 1 must be below its high end 0.1")
        );
        assert_eq!(
            message("cost=choice:hinge").as_deref(),
            Some("cost: \"hinge\" is not one of quadratic, cross-entropy, log-likelihood")
        );
    }

    #[test]
    fn values_read_as_numbers() {
        assert_eq!(Value::Choice("10".into()).as_i64(), Some(10));
        assert_eq!(Value::Choice("relu".into()).as_f64(), None);
        assert_eq!(Value::Float(0.5).as_i64(), None);
        assert_eq!(Value::Int(30).as_f64(), Some(30.0));
        assert_eq!(Value::Float(0.25).to_string(), "0.25");
    }

    /// Floats far from 1 print with an exponent (and read back exactly), not with every digit.
    #[test]
    fn large_and_tiny_floats_print_with_an_exponent() {
        let big = 4.326839152635232e201;
        assert_eq!(Value::Float(big).to_string(), "4.326839152635232e201");
        assert_eq!(Value::Float(big).short(), "4.327e201");
        assert_eq!(Value::Float(1e-7).to_string(), "1e-7");
        assert_eq!(Value::Float(2.5e-5).short(), "2.5e-5");
        assert_eq!(Value::Float(0.001).to_string(), "0.001");
        assert_eq!(Value::Float(123456.0).short(), "123456");
        for x in [big, 1e-7, f64::MAX, f64::MIN_POSITIVE, -3.5e300] {
            assert_eq!(number(x).parse::<f64>(), Ok(x));
        }
    }
}
