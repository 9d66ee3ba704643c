//! Chapter 3's "How to choose a neural network's hyper-parameters?", automated: a *study*
//! searches a [`space`] of hyperparameters (η, λ, mini-batch size, hidden layers, …) for the
//! network with the best validation accuracy, one *trial* (one training run) at a time.
//!
//! As in Optuna, a study is data ([`study`]: its trials, their states and per-epoch values)
//! kept in a [`store`] (a SQLite file, or a PostgreSQL database shared by workers on many
//! machines), and the strategies are small types over that data: samplers propose the
//! next trial's parameters, pruners end unpromising trials early. The test set is never used
//! to choose.

pub mod objective;
pub mod pruner;
pub mod sampler;
pub mod space;
pub mod store;
pub mod study;
