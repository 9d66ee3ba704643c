//! Optuna's conventions for what the store writes in Optuna's tables: trial states as Optuna
//! names them, and a parameter's value in Optuna's internal representation (a float) with its
//! distribution as `distribution_json` — the form `optuna.distributions.json_to_distribution`
//! reads and `distribution.to_external_repr` turns back into the value:
//!
//! | nndl           | Optuna distribution                       | internal value          |
//! |----------------|-------------------------------------------|-------------------------|
//! | `float:LO:HI`  | `FloatDistribution(LO, HI, log=False)`    | the value               |
//! | `log:LO:HI`    | `FloatDistribution(LO, HI, log=True)`     | the value               |
//! | `int:LO:HI`    | `IntDistribution(LO, HI, log=False)`      | the value, as a float   |
//! | `intlog:LO:HI` | `IntDistribution(LO, HI, log=True)`       | the value, as a float   |
//! | `choice:A,B`   | `CategoricalDistribution(["A", "B"])`     | the choice's index      |
//!
//! A parameter the study's space does not name (a trial enqueued by hand) is written with the
//! one-point distribution of its value, so Optuna still reads it.

use serde_json::json;

use super::super::space::{Kind, Value};
use super::super::study::TrialState;

/// The state's name in Optuna's `trials.state` column.
pub fn state_name(state: TrialState) -> &'static str {
    match state {
        TrialState::Waiting => "WAITING",
        TrialState::Running => "RUNNING",
        TrialState::Complete => "COMPLETE",
        TrialState::Pruned => "PRUNED",
        TrialState::Failed => "FAIL",
    }
}

/// The state Optuna's name stands for.
pub fn parse_state(name: &str) -> Option<TrialState> {
    Some(match name {
        "WAITING" => TrialState::Waiting,
        "RUNNING" => TrialState::Running,
        "COMPLETE" => TrialState::Complete,
        "PRUNED" => TrialState::Pruned,
        "FAIL" => TrialState::Failed,
        _ => return None,
    })
}

/// `value` in Optuna's internal representation, with its distribution's JSON: from `kind` when
/// the value belongs to it, else the one-point distribution of the value.
pub fn encode(kind: Option<&Kind>, value: &Value) -> (f64, String) {
    let float = |lo: f64, hi: f64, log: bool| {
        json!({"name": "FloatDistribution",
               "attributes": {"step": null, "low": lo, "high": hi, "log": log}})
    };
    let int = |lo: i64, hi: i64, log: bool| {
        json!({"name": "IntDistribution",
               "attributes": {"log": log, "step": 1, "low": lo, "high": hi}})
    };
    let (internal, distribution) = match (kind, value) {
        (Some(Kind::Float { lo, hi }), Value::Float(v)) => (*v, float(*lo, *hi, false)),
        (Some(Kind::Log { lo, hi }), Value::Float(v)) => (*v, float(*lo, *hi, true)),
        (Some(Kind::Int { lo, hi }), Value::Int(v)) => (*v as f64, int(*lo, *hi, false)),
        (Some(Kind::IntLog { lo, hi }), Value::Int(v)) => (*v as f64, int(*lo, *hi, true)),
        (Some(Kind::Choice { choices }), Value::Choice(c)) if choices.contains(c) => {
            let index = choices.iter().position(|x| x == c).unwrap_or(0);
            (
                index as f64,
                json!({"name": "CategoricalDistribution", "attributes": {"choices": choices}}),
            )
        }
        (_, Value::Float(v)) => (*v, float(*v, *v, false)),
        (_, Value::Int(v)) => (*v as f64, int(*v, *v, false)),
        (_, Value::Choice(c)) => (
            0.0,
            json!({"name": "CategoricalDistribution", "attributes": {"choices": [c]}}),
        ),
    };
    (internal, distribution.to_string())
}

/// The value that `internal` under the distribution `json` stands for, or `None` if the
/// distribution is not one nndl writes or the value is not in it.
pub fn decode(internal: f64, json: &str) -> Option<Value> {
    let d: serde_json::Value = serde_json::from_str(json).ok()?;
    let attributes = d.get("attributes")?;
    match d.get("name")?.as_str()? {
        "FloatDistribution" | "UniformDistribution" | "LogUniformDistribution" => {
            Some(Value::Float(internal))
        }
        "IntDistribution" | "IntUniformDistribution" | "IntLogUniformDistribution" => {
            (internal.fract() == 0.0 && internal.abs() < 9.0e15)
                .then_some(Value::Int(internal as i64))
        }
        "CategoricalDistribution" => {
            let choices = attributes.get("choices")?.as_array()?;
            if internal.fract() != 0.0 || internal < 0.0 {
                return None;
            }
            match choices.get(internal as usize)? {
                serde_json::Value::String(s) => Some(Value::Choice(s.clone())),
                other => Some(Value::Choice(other.to_string())),
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_optunas_form() {
        let cases = [
            (Kind::Float { lo: 0.0, hi: 5.0 }, Value::Float(2.5)),
            (Kind::Log { lo: 0.01, hi: 10.0 }, Value::Float(0.3)),
            (Kind::Int { lo: 1, hi: 5 }, Value::Int(3)),
            (Kind::IntLog { lo: 10, hi: 200 }, Value::Int(87)),
            (
                Kind::Choice {
                    choices: vec!["10".into(), "20".into()],
                },
                Value::Choice("20".into()),
            ),
        ];
        for (kind, value) in &cases {
            let (internal, json) = encode(Some(kind), value);
            assert_eq!(decode(internal, &json).as_ref(), Some(value), "{json}");
        }
        // As Optuna 5.0 itself writes them (`sqlite3 study.db 'SELECT * FROM trial_params'`).
        assert_eq!(
            encode(Some(&cases[1].0), &cases[1].1).1,
            r#"{"attributes":{"high":10.0,"log":true,"low":0.01,"step":null},"name":"FloatDistribution"}"#
        );
        assert_eq!(encode(Some(&cases[4].0), &cases[4].1).0, 1.0);
        // A value outside the space keeps its value in a one-point distribution.
        let (internal, json) = encode(None, &Value::Int(7));
        assert_eq!(decode(internal, &json), Some(Value::Int(7)));
    }

    #[test]
    fn states_use_optunas_names() {
        for s in [
            TrialState::Waiting,
            TrialState::Running,
            TrialState::Complete,
            TrialState::Pruned,
            TrialState::Failed,
        ] {
            assert_eq!(parse_state(state_name(s)), Some(s));
        }
        assert_eq!(state_name(TrialState::Failed), "FAIL");
    }
}
