//! # nndl
//!
//! The networks of Michael Nielsen's *Neural Networks and Deep Learning*, in Rust.
//!
//! The modules read as the book's programs are built:
//! - [`data`] loads `mnist.pkl.gz` (through the small, safe [`pickle`] reader);
//! - [`activation`], [`cost`] and [`init`] are the pieces a network is made of: sigmoid, tanh
//!   or ReLU hidden layers, a sigmoid or softmax output layer, the quadratic, cross-entropy or
//!   log-likelihood cost;
//! - [`network`] is `network.py`'s `Network` with per-example backprop (BP1–BP4), and
//!   [`dropout`] thins its hidden layers while it trains;
//! - [`per_example`] and [`batch`] are the fast mini-batch steps: backprop one example at a
//!   time, or the whole mini-batch as matrix products;
//! - [`checkpoint`] saves and loads networks as `network2.py` does, and [`predict`] reads
//!   a digit from an image file for one;
//! - [`metrics`] writes a run's epochs to CSV or JSON Lines, [`plot`] draws them, and
//!   [`console`] prints them as the book's programs do while a run trains;
//! - [`train`] is the one SGD loop that drives either, and [`config`] configures it, with
//!   the three programs of chapters 1–3 as [`config::Variant`] presets.
//!
//! Matrices are `ndarray` arrays of `f64`, or `f32` (see [`real`]). Their products go through `ndarray`'s
//! `general_mat_mul`, which the `openblas` or `accelerate` feature routes to BLAS `dgemm`;
//! without either it is the pure-Rust `matrixmultiply`. [`backend`] names the one built in.

// The BLAS library is linked by naming its crate; ndarray only declares the cblas functions.
#[cfg(all(feature = "accelerate", target_os = "macos"))]
extern crate accelerate_src as _;
#[cfg(feature = "openblas")]
extern crate blas_src as _;

pub mod activation;
pub mod backend;
pub mod batch;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod console;
pub mod cost;
pub mod data;
pub mod dropout;
pub mod init;
pub mod metrics;
pub mod network;
pub mod per_example;
pub mod pickle;
pub mod plot;
pub mod predict;
pub mod real;
pub mod train;
