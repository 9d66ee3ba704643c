//! # nndl
//!
//! The networks of Michael Nielsen's *Neural Networks and Deep Learning*, in Rust.
//!
//! The folders read as a training run is built, each building on those above it (a model
//! file in [`model`] also records the [`config`] it was trained with):
//! - [`data`]: `mnist.pkl.gz` as `mnist_loader.py` loads it (through a small, safe pickle
//!   reader), MNIST's IDX files, and digits from image files;
//! - [`model`]: the fully-connected network of `network.py`/`network2.py` and its parts —
//!   activations, costs, initialisers, dropout — and its model files;
//! - [`config`]: everything a run is configured by, checked once into a [`config::CheckedConfig`];
//! - [`train`]: the one SGD loop, generic over a small [`train::Model`] trait, with the
//!   per-example (`network.py`) and whole-mini-batch (`network2.py`) steps, early stopping and
//!   the η schedule;
//! - [`tune`]: chapter 3's hyperparameter search, automated: a study of trials in a store,
//!   samplers and pruners over it;
//! - [`report`]: the epoch lines, metrics files, plots and the FLOP accounting of `nndl bench`,
//!   and a study's table and figures;
//! - [`run`]: what each command does (`nndl train` first), as one function over a checked
//!   request.
//!
//! [`rng`] is the run's one seeded generator; [`real`] and [`backend`] the number type and
//! the matrix-product backend.
//!
//! Matrices are `ndarray` arrays of `f64`, or `f32` (see [`real`]). Their products go through
//! `ndarray`'s `general_mat_mul`, which the `openblas` or `accelerate` feature routes to BLAS
//! `dgemm` (`sgemm` in `f32`); without either it is the pure-Rust `matrixmultiply`. [`backend`]
//! names the one built in.

// The BLAS library is linked by naming its crate; ndarray only declares the cblas functions.
#[cfg(all(feature = "accelerate", target_os = "macos"))]
extern crate accelerate_src as _;
#[cfg(feature = "openblas")]
extern crate blas_src as _;

pub mod backend;
pub mod config;
pub mod data;
pub mod model;
pub mod output;
pub mod real;
pub mod report;
pub mod rng;
pub mod run;
pub mod train;
pub mod tune;
