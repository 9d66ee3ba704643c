//! The phases of a chapter-6 training step (im2col, each product, pooling, …), timed layer by
//! layer when `nndl bench --phases` asks: the pass keeps the [`Clock`], and each layer marks
//! the end of its phases through a [`Timer`].

use std::time::Instant;

/// The parts of a training step, timed per layer when [`Pass::time_phases`] asks (`nndl
/// bench --phases`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Copying the mini-batch's images into the input buffer (counted at the first layer).
    Gather,
    /// Drawing a dense layer's dropout masks.
    Masks,
    /// A convolution's [`super::conv_pool::im2col`].
    Im2col,
    /// A convolution's forward product W·cols.
    ConvForward,
    /// Max-pooling, bias and activation ([`super::conv_pool::pool_forward`]).
    Pool,
    /// A dense layer's gather, forward product and activation (or softmax).
    DenseForward,
    /// Backprop through the activation and the pooling ([`super::conv_pool::pool_backward`]).
    PoolBackward,
    /// A convolution's ∇W = δ_Z·colsᵀ.
    ConvGradient,
    /// A convolution's ∂C/∂cols = Wᵀ·δ_Z.
    ConvInputError,
    /// A convolution's [`super::conv_pool::col2im`].
    Col2im,
    /// A dense layer's f′, ∇b, ∇W = δ·input and ∂C/∂input = δᵀ·W with its scatter (and in
    /// the training step its update, done in the same pass over W).
    DenseBackward,
    /// The update of the layer's weights and biases (a dense layer's in the training step:
    /// see [`Phase::DenseBackward`]).
    Update,
}

impl Phase {
    pub const ALL: [Phase; 12] = [
        Phase::Gather,
        Phase::Masks,
        Phase::Im2col,
        Phase::ConvForward,
        Phase::Pool,
        Phase::DenseForward,
        Phase::PoolBackward,
        Phase::ConvGradient,
        Phase::ConvInputError,
        Phase::Col2im,
        Phase::DenseBackward,
        Phase::Update,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Gather => "gather the mini-batch",
            Phase::Masks => "draw dropout masks",
            Phase::Im2col => "im2col",
            Phase::ConvForward => "product W·cols",
            Phase::Pool => "max-pool, bias, activation",
            Phase::DenseForward => "gather, product W·x, activation",
            Phase::PoolBackward => "f′ and unpool",
            Phase::ConvGradient => "product ∇W = δ·colsᵀ",
            Phase::ConvInputError => "product Wᵀ·δ",
            Phase::Col2im => "col2im",
            Phase::DenseBackward => "f′, products δᵀ·W and ∇W = δ·x, update",
            Phase::Update => "update",
        }
    }
}

/// Seconds spent in each [`Phase`] of each layer.
#[derive(Clone, Debug)]
pub(super) struct Clock {
    pub(super) last: Instant,
    /// `seconds[layer][phase]`.
    pub(super) seconds: Vec<[f64; Phase::ALL.len()]>,
}

/// Adds the time since the last mark to `phase` of `layer`, when timing.
pub(super) fn mark(clock: &mut Option<Clock>, layer: usize, phase: Phase) {
    if let Some(clock) = clock {
        let now = Instant::now();
        clock.seconds[layer][phase as usize] += (now - clock.last).as_secs_f64();
        clock.last = now;
    }
}

/// The clock as one layer sees it: [`Timer::mark`] ends one of its phases.
pub struct Timer<'a> {
    pub(super) clock: &'a mut Option<Clock>,
    pub(super) layer: usize,
}

impl Timer<'_> {
    /// Adds the time since the last mark to `phase` of this layer, when timing.
    pub fn mark(&mut self, phase: Phase) {
        mark(self.clock, self.layer, phase);
    }
}

/// Starts the time of the next phase now, when timing.
pub(super) fn restart(clock: &mut Option<Clock>) {
    if let Some(clock) = clock {
        clock.last = Instant::now();
    }
}
