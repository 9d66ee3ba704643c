//! What a network is made of (chapters 1–3): the fully-connected [`network::Network`] of
//! `network.py` and `network2.py`, its [`activation`]s (sigmoid, tanh, ReLU hidden layers; a
//! sigmoid or softmax output layer), [`cost`]s (quadratic, cross-entropy, log-likelihood),
//! weight initialisers ([`init`]), [`dropout`] masks, and its model [`file`]s in
//! `network2.py`'s JSON layout.
//!
//! Chapter 6's networks of convolutional, fully-connected and softmax layers are in
//! [`layers`].
//!
//! A new cost or activation goes beside the others here, with its derivative; the training
//! loop sees a model only through [`crate::train::Model`].

pub mod activation;
pub mod cost;
pub mod darkness;
pub mod dropout;
pub mod export;
pub mod file;
pub mod init;
pub mod layers;
pub mod network;
pub mod view;
pub mod write;

/// The hyperparameters of one gradient-descent step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// Learning rate η.
    pub eta: f64,
    /// L2 regularisation strength λ (0 for none).
    pub lambda: f64,
    /// Size n of the whole training set, which scales the weight decay ηλ/n.
    pub n: usize,
    /// Probability p of dropping each hidden neuron for an example (0 for no dropout).
    pub dropout: f64,
}

impl Step {
    /// The weight-decay factor 1 − ηλ/n of eq. (93).
    pub fn decay(&self) -> f64 {
        1.0 - self.eta * self.lambda / self.n as f64
    }
}
