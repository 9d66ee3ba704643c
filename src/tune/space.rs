//! The search space: which hyperparameters a study varies, and over what values.
//!
//! A parameter is a name nndl knows (see [`Space`]'s rules) and a [`Kind`]: a float range
//! (`float:LO:HI`), the same on a log scale (`log:LO:HI`), an integer range (`int:LO:HI`,
//! `intlog:LO:HI`) or a list of choices (`choice:A,B,…`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
