//! A trained network as other tools read it (`nndl export`): each layer written as the
//! product it computes when `nndl eval` scores it — a fully-connected product, or chapter 6's
//! convolution with max-pooling — its parameters, and the function applied after, in one
//! neutral description ([`layer::Exported`]) that both formats are written from: [`onnx`] (a graph
//! onnxruntime runs and Netron draws) and [`safetensors`] (the weights, with the model file's
//! description of the network, for PyTorch and the like).
//!
//! The description is the evaluation pass, not the training one: a chapter-6 layer with
//! dropout p scales its weighted input by 1 − p as `network3.py` evaluates it; the
//! fully-connected programs' dropout is inverted ([`crate::model::dropout`]) and needs nothing.
//!
//! [`layer`] is the description, which each kind of layer writes of itself
//! ([`crate::model::layers::kind::Kind::export`]); [`saved`] makes it of a saved network of
//! either layout.

pub mod layer;
pub mod onnx;
pub mod onnx_proto;
pub mod safetensors;
pub mod saved;
