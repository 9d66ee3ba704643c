//! A network as an ONNX model (`nndl export --format onnx`): opset 13 of the default
//! `ai.onnx` domain, IR version 7 (ONNX 1.8 on), every tensor `float` (f32).
//!
//! The graph reads `image`, `[N, 784]` (the pixels of N images, as nndl's data holds them, row
//! by row), and writes `probabilities`, `[N, 10]`: the output layer's activations as `nndl
//! eval` computes them (softmax, or sigmoid neurons for a fully-connected program with the
//! sigmoid output). A network of convolutions first reshapes the rows to `[N, 1, 28, 28]`
//! (`input.reshape`). Each layer is a few nodes named after it (`conv1.conv`, `conv1.pool`,
//! `conv1.add_bias`, `conv1.relu`; `fc1.gemm`, `fc1.sigmoid`; `softmax1.gemm`,
//! `softmax1.softmax`), its parameters initializers `conv1.weight`, `conv1.bias`, … in
//! PyTorch's layouts, so Netron shows the network as the layer list reads.
//!
//! - A convolution with pooling is `Conv` (no bias), `MaxPool` (P×P blocks, stride P), `Add`
//!   of the bias (shaped `[F, 1, 1]`), then the activation — `network3.py`'s order. ONNX's
//!   `Conv` is the same cross-correlation nndl computes (no flipped filters).
//! - A dense layer is `Gemm` with `transB = 1` (the weights stay `(n_out, n_in)`) and `alpha`
//!   the scale 1 − p of a chapter-6 layer trained with dropout p, so the stored weights are the
//!   trained ones; a dense layer after a convolution first flattens the maps (`Flatten`, the
//!   (channel, y, x) order nndl reads them in).
//!
//! Why f32 for every model: onnxruntime's CPU provider has no double-precision `Conv` (a
//! one-node `Conv` model in `double` fails to load: "Could not find an implementation for
//! Conv(11)"), and f32 is what ONNX's consumers expect; a model trained in f64 has each weight
//! rounded to the nearest f32. The f64 values are in the safetensors export.

use prost::Message;

use crate::model::activation::{Activation, Output};
use crate::real::Real;

use super::layer::{ExportedNetwork, Function, Product};
use super::onnx_proto::{
    attribute_type, data_type, AttributeProto, Dimension, DimensionValue, GraphProto, ModelProto,
    NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto,
    TensorTypeProto, TypeProto, ValueInfoProto,
};

/// The operator-set version of the default domain the graph is written against.
pub const OPSET: i64 = 13;
/// The IR version that goes with [`OPSET`] (ONNX 1.8).
pub const IR_VERSION: i64 = 7;
/// The graph's input: `[N, C·H·W]`.
pub const INPUT: &str = "image";
/// The graph's output: `[N, classes]`.
pub const OUTPUT: &str = "probabilities";
/// The key of the metadata entry holding the model file's description of the network.
pub const DESCRIPTION_KEY: &str = "nndl.model";

/// The graph's nodes and initializers as they are added, the name of the latest output.
struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    last: String,
}

impl Graph {
    /// Adds node `name` of `op` reading the latest output and then `inputs`; its output, named
    /// `output`, becomes the latest.
    fn node(
        &mut self,
        name: &str,
        op: &str,
        inputs: &[&str],
        attributes: Vec<AttributeProto>,
        output: &str,
    ) {
        let mut input = vec![self.last.clone()];
        input.extend(inputs.iter().map(|s| s.to_string()));
        self.nodes.push(NodeProto {
            input,
            output: vec![output.to_string()],
            name: name.to_string(),
            op_type: op.to_string(),
            attribute: attributes,
            ..Default::default()
        });
        self.last = output.to_string();
    }

    /// Adds an initializer of `f32`s.
    fn floats(&mut self, name: &str, dims: &[usize], values: impl Iterator<Item = f64>) {
        let raw_data = values.flat_map(|v| (v as f32).to_le_bytes()).collect();
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: data_type::FLOAT,
            name: name.to_string(),
            raw_data,
            ..Default::default()
        });
    }

    /// Adds an initializer of `i64`s.
    fn int64s(&mut self, name: &str, values: &[i64]) {
        self.initializers.push(TensorProto {
            dims: vec![values.len() as i64],
            data_type: data_type::INT64,
            name: name.to_string(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
    }
}

fn ints(name: &str, values: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        ints: values.iter().map(|&v| v as i64).collect(),
        r#type: attribute_type::INTS,
        ..Default::default()
    }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        i: value,
        r#type: attribute_type::INT,
        ..Default::default()
    }
}

fn float(name: &str, value: f64) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        f: value as f32,
        r#type: attribute_type::FLOAT,
        ..Default::default()
    }
}

/// A `float` tensor of shape `[N, size]`, N named `N`.
fn batch_of(name: &str, size: usize, doc: &str) -> ValueInfoProto {
    let dim = |value| Dimension { value: Some(value) };
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto {
                    dim: vec![
                        dim(DimensionValue::DimParam("N".to_string())),
                        dim(DimensionValue::DimValue(size as i64)),
                    ],
                }),
            }),
        }),
        doc_string: doc.to_string(),
    }
}

/// The ONNX model of `net`, its bytes; `description` (the model file's description of the
/// network) goes in the model's metadata under [`DESCRIPTION_KEY`].
pub fn to_onnx<F: Real>(net: &ExportedNetwork<'_, F>, description: &str) -> Vec<u8> {
    let mut graph = Graph {
        nodes: Vec::new(),
        initializers: Vec::new(),
        last: INPUT.to_string(),
    };
    let [c, h, w] = net.input;
    // Whether the latest output holds feature maps [N, C, H, W] rather than rows [N, n].
    let mut maps = false;
    for (layer, name) in net.layers.iter().zip(net.names()) {
        let weight = format!("{name}.weight");
        let bias = format!("{name}.bias");
        let values = |v: &F| v.as_f64();
        graph.floats(
            &weight,
            &layer.weight_shape,
            layer.weights.iter().map(values),
        );
        let out = |step: &str| format!("{name}.{step}");
        match layer.product {
            Product::ConvPool { filter, pool } => {
                if !maps {
                    graph.int64s("input.shape", &[-1, c as i64, h as i64, w as i64]);
                    graph.node(
                        "input.reshape",
                        "Reshape",
                        &["input.shape"],
                        vec![],
                        "input.maps",
                    );
                    maps = true;
                }
                let filters = layer.biases.len();
                graph.floats(&bias, &[filters, 1, 1], layer.biases.iter().map(values));
                let conv = vec![
                    ints("kernel_shape", &[filter, filter]),
                    ints("strides", &[1, 1]),
                ];
                graph.node(&out("conv"), "Conv", &[&weight], conv, &out("conv"));
                let pool = vec![
                    ints("kernel_shape", &[pool, pool]),
                    ints("strides", &[pool, pool]),
                ];
                graph.node(&out("pool"), "MaxPool", &[], pool, &out("pool"));
                graph.node(&out("add_bias"), "Add", &[&bias], vec![], &out("z"));
            }
            Product::Dense { scale } => {
                if maps {
                    graph.node(
                        &out("flatten"),
                        "Flatten",
                        &[],
                        vec![int("axis", 1)],
                        &out("flat"),
                    );
                    maps = false;
                }
                graph.floats(
                    &bias,
                    &[layer.biases.len()],
                    layer.biases.iter().map(values),
                );
                let gemm = vec![int("transB", 1), float("alpha", scale)];
                graph.node(&out("gemm"), "Gemm", &[&weight, &bias], gemm, &out("z"));
            }
        }
        let (op, attributes) = match layer.function {
            Function::Hidden(Activation::Sigmoid) | Function::Output(Output::Sigmoid) => {
                ("Sigmoid", vec![])
            }
            Function::Hidden(Activation::Tanh) => ("Tanh", vec![]),
            Function::Hidden(Activation::Relu) => ("Relu", vec![]),
            Function::Output(Output::Softmax) => ("Softmax", vec![int("axis", 1)]),
        };
        graph.node(
            &out(&op.to_lowercase()),
            op,
            &[],
            attributes,
            &out("output"),
        );
    }
    if let Some(last) = graph.nodes.last_mut() {
        last.output = vec![OUTPUT.to_string()];
    }
    let model = ModelProto {
        ir_version: IR_VERSION,
        producer_name: "nndl".to_string(),
        producer_version: env!("CARGO_PKG_VERSION").to_string(),
        model_version: 1,
        doc_string: "A network of Michael Nielsen's Neural Networks and Deep Learning, \
                     trained and exported by nndl"
            .to_string(),
        graph: Some(GraphProto {
            node: graph.nodes,
            name: "nndl".to_string(),
            initializer: graph.initializers,
            input: vec![batch_of(
                INPUT,
                net.inputs(),
                "N images of 28×28 pixels, row by row, each from 0 (background) to 1 (ink), as in mnist.pkl.gz",
            )],
            output: vec![batch_of(
                OUTPUT,
                net.classes(),
                "each image's output activations, one per digit",
            )],
            ..Default::default()
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        metadata_props: vec![StringStringEntryProto {
            key: DESCRIPTION_KEY.to_string(),
            value: description.to_string(),
        }],
        ..Default::default()
    };
    model.encode_to_vec()
}
