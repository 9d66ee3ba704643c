//! Model files in network2.py's JSON layout: an exact round trip, the layout the book's
//! `load()` expects, the optional fields (activation, output layer, training configuration),
//! and clear errors for files that do not describe a network.

mod common;

use common::*;
use nndl::config::{TrainConfig, Variant};
use nndl::model::activation::Activation;
use nndl::model::cost::Cost;
use nndl::model::file::{load, load_with_config, save, ModelError};
use nndl::model::init::Init;
use nndl::model::network::Network;

#[test]
fn save_then_load_is_exact() {
    let dir = temp_dir("ckpt-roundtrip");
    for activation in [Activation::Sigmoid, Activation::Tanh, Activation::Relu] {
        for cost in [Cost::Quadratic, Cost::CrossEntropy, Cost::LogLikelihood] {
            let net: Network =
                Network::new(&[784, 30, 20, 10], Init::ScaledNormal, cost, &mut rng(3))
                    .with_activation(activation);
            let path = dir.join("model.json");
            save(&net, None, &path).unwrap();
            assert_eq!(load(&path).unwrap(), net);
            assert!(!dir.join("model.json.tmp").exists());
        }
    }
}

#[test]
fn the_training_configuration_is_saved_with_the_network() {
    let dir = temp_dir("ckpt-config");
    let mut config = TrainConfig::book_run(Variant::Network3);
    config.network.fully_connected_mut().unwrap().activation = Activation::Relu;
    config.network.fully_connected_mut().unwrap().cost = Cost::LogLikelihood;
    config.sgd.dropout = 0.25;
    config.seed = 42;
    let net: Network = Network::new(
        &[4, 3, 2],
        Init::ScaledNormal,
        Cost::LogLikelihood,
        &mut rng(1),
    )
    .with_activation(Activation::Relu);
    let path = dir.join("m.json");
    save(&net, Some(&config), &path).unwrap();
    let (loaded, saved) = load_with_config::<f64>(&path).unwrap();
    assert_eq!(loaded, net);
    assert_eq!(saved, Some(config));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(v["activation"], "relu");
    assert_eq!(v["output"], "softmax");
    assert_eq!(v["cost"], "LogLikelihoodCost");
    assert_eq!(v["config"]["sgd"]["dropout"], 0.25);
    assert_eq!(v["config"]["network"]["cost"], "log-likelihood");
}

#[test]
fn a_network2_py_file_without_the_extra_fields_is_a_sigmoid_network() {
    let dir = temp_dir("ckpt-plain");
    let text =
        r#"{"sizes":[2,1],"weights":[[[0.5,-1.0]]],"biases":[[[0.1]]],"cost":"CrossEntropyCost"}"#;
    let (net, config) =
        load_with_config::<f64>(&write_file(&dir, "m.json", text.as_bytes())).unwrap();
    assert_eq!(net.activation, Activation::Sigmoid);
    assert_eq!(net.cost, Cost::CrossEntropy);
    assert_eq!(config, None);
}

#[test]
fn the_file_has_network2_py_layout() {
    let dir = temp_dir("ckpt-layout");
    let net: Network = Network::new(
        &[3, 2, 1],
        Init::StandardNormal,
        Cost::CrossEntropy,
        &mut rng(1),
    );
    let path = dir.join("m.json");
    save(&net, None, &path).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(v["sizes"], serde_json::json!([3, 2, 1]));
    assert_eq!(v["cost"], "CrossEntropyCost");
    assert_eq!(v["weights"][0].as_array().unwrap().len(), 2);
    assert_eq!(v["weights"][0][1].as_array().unwrap().len(), 3);
    assert_eq!(
        v["weights"][0][1][2].as_f64().unwrap(),
        net.weights[0][[1, 2]]
    );
    // Biases are (n, 1) columns, as NumPy's tolist() writes them.
    assert_eq!(v["biases"][0][1], serde_json::json!([net.biases[0][1]]));
}

#[test]
fn files_that_are_not_networks_are_refused() {
    let dir = temp_dir("ckpt-bad");
    let good =
        r#"{"sizes":[2,1],"weights":[[[0.5,-1.0]]],"biases":[[[0.1]]],"cost":"QuadraticCost"}"#;
    assert!(load::<f64>(&write_file(&dir, "good.json", good.as_bytes())).is_ok());
    for (name, text, want) in [
        (
            "shape.json",
            good.replace("[[[0.5,-1.0]]]", "[[[0.5]]]"),
            "weights[0] is not 1×2",
        ),
        (
            "bias.json",
            good.replace("[[[0.1]]]", "[[0.1]]"),
            "not a network2.py model file",
        ),
        (
            "cost.json",
            good.replace("QuadraticCost", "HingeCost"),
            "unknown cost \"HingeCost\"",
        ),
        (
            "sizes.json",
            good.replace("[2,1]", "[2,1,1]"),
            "need 2 weight matrices",
        ),
        (
            "nan.json",
            good.replace("0.5", "1e999"),
            "not a network2.py model file",
        ),
        ("empty.json", String::new(), "not a network2.py model file"),
        (
            "output.json",
            good.replace(r#""cost""#, r#""output":"softmax","cost""#),
            "a softmax output layer does not go with the QuadraticCost cost",
        ),
        (
            "activation.json",
            good.replace(r#""cost""#, r#""activation":"swish","cost""#),
            "not a network2.py model file",
        ),
        (
            "config.json",
            good.replace(r#""cost""#, r#""config":{"seed":1},"cost""#),
            "not a network2.py model file",
        ),
    ] {
        let path = write_file(&dir, name, text.as_bytes());
        let err = chain(&load::<f64>(&path).unwrap_err());
        assert!(err.contains(name) && err.contains(want), "{name}: {err}");
    }
    let missing = load::<f64>(&dir.join("missing.json")).unwrap_err();
    assert!(matches!(missing, ModelError::Read { .. }));
}
