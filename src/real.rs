//! The floating-point type a network computes in: `f64` (the default, as NumPy) or `f32`
//! (half the memory traffic, twice the SIMD width). Everything numeric in the crate is generic
//! over [`Real`]; hyperparameters stay `f64` and are converted where they meet the weights.

use std::fmt::{Debug, Display};
use std::ops::{AddAssign, MulAssign, SubAssign};

use ndarray::{LinalgScalar, ScalarOperand};

pub mod vmath;

/// Asks the CPU to start bringing the cache line holding `p` into its caches (x86-64;
/// elsewhere it does nothing). Any address will do: a prefetch is only a hint.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // Safety: a prefetch cannot fault and reads nothing the program sees, whatever the
    // address.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// `f32` or `f64`: what `ndarray`'s products (and BLAS `sgemm`/`dgemm`) work on.
pub trait Real:
    num_traits::Float
    + LinalgScalar
    + ScalarOperand
    + AddAssign
    + SubAssign
    + MulAssign
    + Debug
    + Display
    + Send
    + Sync
    + serde::Serialize
    + serde::de::DeserializeOwned
    + 'static
{
    /// `"f32"` or `"f64"`.
    const NAME: &'static str;

    /// The nearest value of this type (exact for `f64`).
    fn of(x: f64) -> Self;

    /// The value as `f64` (always exact).
    fn as_f64(self) -> f64;

    /// A byte's value (exact).
    fn from_u8(b: u8) -> Self;

    /// Sets every element of `z` to σ(z + b) (eq. 3), in a vectorised loop ([`vmath`]).
    fn sigmoid_biased(z: &mut [Self], b: Self);
}

impl Real for f32 {
    const NAME: &'static str = "f32";

    #[inline]
    fn of(x: f64) -> Self {
        x as f32
    }

    #[inline]
    fn as_f64(self) -> f64 {
        f64::from(self)
    }

    #[inline]
    fn from_u8(b: u8) -> Self {
        f32::from(b)
    }

    #[inline]
    fn sigmoid_biased(z: &mut [Self], b: Self) {
        vmath::sigmoid_biased_f32(z, b)
    }
}

impl Real for f64 {
    const NAME: &'static str = "f64";

    #[inline]
    fn of(x: f64) -> Self {
        x
    }

    #[inline]
    fn as_f64(self) -> f64 {
        self
    }

    #[inline]
    fn from_u8(b: u8) -> Self {
        f64::from(b)
    }

    #[inline]
    fn sigmoid_biased(z: &mut [Self], b: Self) {
        vmath::sigmoid_biased_f64(z, b)
    }
}
