//! `nndl export`: what it refuses (a missing, unreadable or corrupt model, an output it cannot
//! write, an unknown format) exits 2 before anything is written; what it writes decodes to
//! the network — the ONNX graph's nodes and initializers, the safetensors tensors, and the
//! model file rebuilt from a safetensors export alone. onnxruntime, onnx's checker and the
//! safetensors package read the same files in `scripts/check_export.py`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::temp_dir;
use nndl::model::activation::Activation;
use nndl::model::export::onnx::{self, OPSET};
use nndl::model::export::onnx_proto::{data_type, ModelProto};
use nndl::model::export::safetensors::{model_file, to_safetensors};
use nndl::model::export::saved::description;
use nndl::model::file::{self, parse_model, SaveModel, SavedModel};
use nndl::model::layers::{spec, LayerNetwork};
use nndl::model::network::Network;
use prost::Message;

fn nndl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nndl"))
        .args(args)
        .output()
        .unwrap()
}

fn text(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small chapter-6 network, every kind and a dropout, saved to `dir/conv.json`.
fn conv_model(dir: &Path) -> (LayerNetwork, PathBuf) {
    let specs = spec::parse(
        "conv:2:3,pool:2,fc:5:dropout=0.5,softmax",
        Activation::Relu,
        0.0,
    )
    .unwrap();
    let net = LayerNetwork::new(&specs, [1, 28, 28], 10, &mut nndl::rng::seeded(3)).unwrap();
    let path = dir.join("conv.json");
    net.save(None, &path).unwrap();
    (net, path)
}

/// A fully-connected program's network, saved to `dir/fc.json`.
fn fc_model(dir: &Path) -> (Network, PathBuf) {
    let net = Network::new(
        &[784, 7, 10],
        nndl::model::init::Init::ScaledNormal,
        nndl::model::cost::Cost::LogLikelihood,
        &mut nndl::rng::seeded(4),
    )
    .with_activation(Activation::Tanh);
    let path = dir.join("fc.json");
    net.save(None, &path).unwrap();
    (net, path)
}

#[test]
fn bad_input_exits_2_and_writes_nothing() {
    let dir = temp_dir("export-bad");
    let (_, model) = conv_model(&dir);
    let corrupt = dir.join("corrupt.json");
    std::fs::write(&corrupt, "{\"layers\": [").unwrap();
    let binary = dir.join("binary.json");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x01]).unwrap();
    let out = dir.join("out.onnx");
    let missing = dir.join("missing.json");
    let nowhere = dir.join("no/such/dir/x.onnx");
    let subdir = dir.join("a-directory");
    std::fs::create_dir_all(&subdir).unwrap();
    let cases: [(&[&str], &str); 7] = [
        (
            &["--model", text(&missing), "--format", "onnx", text(&out)],
            "cannot read",
        ),
        (
            &["--model", text(&corrupt), "--format", "onnx", text(&out)],
            "corrupt.json",
        ),
        (
            &[
                "--model",
                text(&binary),
                "--format",
                "safetensors",
                text(&out),
            ],
            "neither a model file",
        ),
        (
            &["--model", text(&model), "--format", "tflite", text(&out)],
            "invalid value 'tflite'",
        ),
        (
            &["--model", text(&model), "--format", "onnx", text(&subdir)],
            "it is a directory",
        ),
        (
            &["--model", text(&model), "--format", "onnx", text(&nowhere)],
            "does not exist",
        ),
        (
            &["--model", text(&model), "--format", "onnx", text(&model)],
            "it is the model",
        ),
    ];
    let before = std::fs::read(&model).unwrap();
    for (args, says) in cases {
        let mut all = vec!["export"];
        all.extend_from_slice(args);
        let run = nndl(&all);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{all:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{all:?} should say {says:?}: {stderr}"
        );
        assert!(!out.exists(), "{all:?} wrote {}", out.display());
    }
    assert_eq!(
        std::fs::read(&model).unwrap(),
        before,
        "the model is untouched"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp") || n.ends_with(".probe"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_failed_write_exits_1_and_a_good_export_replaces_the_file() {
    let dir = temp_dir("export-readonly");
    let (_, model) = fc_model(&dir);
    let out = dir.join("old.safetensors");
    std::fs::write(&out, b"old").unwrap();
    // /dev/full takes no bytes: the write fails after the checks, exiting 1, not 2.
    let full = nndl(&[
        "export",
        "--model",
        text(&model),
        "--format",
        "onnx",
        "/dev/full",
    ]);
    assert_eq!(
        full.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&full.stderr)
    );
    let run = nndl(&[
        "export",
        "--model",
        text(&model),
        "--format",
        "safetensors",
        text(&out),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_ne!(
        std::fs::read(&out).unwrap(),
        b"old",
        "a good export replaces the file"
    );
    assert!(!dir.join("old.safetensors.tmp").exists());
}

#[test]
fn the_onnx_graph_names_each_layer_and_holds_its_parameters() {
    let dir = temp_dir("export-onnx");
    let (net, path) = conv_model(&dir);
    let out = dir.join("conv.onnx");
    let run = nndl(&[
        "export",
        "--model",
        text(&path),
        "--format",
        "onnx",
        text(&out),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let model = ModelProto::decode(&std::fs::read(&out).unwrap()[..]).unwrap();
    assert_eq!(model.ir_version, onnx::IR_VERSION);
    assert_eq!(model.opset_import[0].version, OPSET);
    let graph = model.graph.unwrap();
    let nodes: Vec<(&str, &str)> = graph
        .node
        .iter()
        .map(|n| (n.name.as_str(), n.op_type.as_str()))
        .collect();
    assert_eq!(
        nodes,
        [
            ("input.reshape", "Reshape"),
            ("conv1.conv", "Conv"),
            ("conv1.pool", "MaxPool"),
            ("conv1.add_bias", "Add"),
            ("conv1.relu", "Relu"),
            ("fc1.flatten", "Flatten"),
            ("fc1.gemm", "Gemm"),
            ("fc1.relu", "Relu"),
            ("softmax1.gemm", "Gemm"),
            ("softmax1.softmax", "Softmax"),
        ]
    );
    // fc1 is evaluated with its weighted input scaled by 1 − p = 0.5 (network3.py).
    let alpha = graph.node[6]
        .attribute
        .iter()
        .find(|a| a.name == "alpha")
        .unwrap();
    assert_eq!(alpha.f, 0.5);
    let conv = &graph
        .initializer
        .iter()
        .find(|t| t.name == "conv1.weight")
        .unwrap();
    assert_eq!(conv.dims, [2, 1, 3, 3]);
    assert_eq!(conv.data_type, data_type::FLOAT);
    let first = f32::from_le_bytes(conv.raw_data[..4].try_into().unwrap());
    let nndl::model::layers::Layer::ConvPool(layer) = &net.layers[0] else {
        panic!("the first layer is a convolution")
    };
    assert_eq!(first, layer.weights[[0, 0]] as f32);
    assert_eq!(graph.output[0].name, onnx::OUTPUT);
}

/// A safetensors export alone rebuilds the model file: the same network, bit for bit, for
/// both layouts and both precisions' values.
#[test]
fn a_safetensors_export_rebuilds_the_model_file() {
    let dir = temp_dir("export-safetensors");
    let (conv, conv_path) = conv_model(&dir);
    let (fc, fc_path) = fc_model(&dir);
    for path in [&conv_path, &fc_path] {
        let text = std::fs::read_to_string(path).unwrap();
        let (model, _) = parse_model::<f64>(path, &text).unwrap();
        let value = serde_json::from_str(&text).unwrap();
        let bytes = to_safetensors(&model.export(), &description(value)).unwrap();
        let rebuilt = model_file(&bytes).unwrap();
        let (back, _) = parse_model::<f64>(path, &rebuilt).unwrap();
        match (&model, &back) {
            (SavedModel::Layers(a), SavedModel::Layers(b)) => assert_eq!(a, b),
            (SavedModel::FullyConnected(a), SavedModel::FullyConnected(b)) => assert_eq!(a, b),
            _ => panic!("{}: rebuilt as the other layout", path.display()),
        }
        // And `load_model` reads the file as it reads the JSON.
        let st = path.with_extension("safetensors");
        std::fs::write(&st, &bytes).unwrap();
        assert!(file::load_model::<f64>(&st).is_ok());
    }
    let tensors = safetensors::SafeTensors::deserialize(
        &std::fs::read(dir.join("conv.safetensors")).unwrap(),
    )
    .unwrap()
    .names()
    .len();
    assert_eq!(tensors, 2 * conv.layers.len());
    assert_eq!(fc.weights.len(), 2);
    let corrupt = dir.join("cut.safetensors");
    std::fs::write(
        &corrupt,
        &std::fs::read(fc_path.with_extension("safetensors")).unwrap()[..200],
    )
    .unwrap();
    let err = file::load_model::<f64>(&corrupt).unwrap_err().to_string();
    assert!(err.contains("cut.safetensors"), "{err}");
}
