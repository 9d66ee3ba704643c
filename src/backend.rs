//! The matrix-product backend chosen at build time (see `build.rs`), and its threads.
//!
//! At the book's mini-batch of 10 the products are too small to share between cores: a second
//! thread costs more in hand-over than it saves, so nndl runs the BLAS on one thread unless
//! told otherwise. The pure-Rust backend (`matrixmultiply`, without its `threading` feature)
//! is always single-threaded. With OpenBLAS, the description names the kernel family
//! (`corename`) it chose for this CPU, e.g. `SkylakeX` (AVX-512) or `Haswell` (AVX2).

/// The backend's name, as chosen by Cargo features.
pub const NAME: &str = env!("NNDL_BACKEND");

#[cfg(feature = "openblas")]
mod openblas {
    use std::ffi::{c_char, c_int, CStr};

    extern "C" {
        fn openblas_set_num_threads(n: c_int);
        fn openblas_get_num_threads() -> c_int;
        fn openblas_get_corename() -> *const c_char;
        fn openblas_get_config() -> *const c_char;
    }

    fn text(p: *const c_char) -> String {
        if p.is_null() {
            return "?".into();
        }
        // Safety: OpenBLAS returns pointers to static NUL-terminated strings.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    pub fn set_threads(n: usize) {
        let n = c_int::try_from(n).unwrap_or(c_int::MAX);
        // Safety: plain calls into the linked OpenBLAS.
        unsafe { openblas_set_num_threads(n) }
    }

    pub fn describe() -> String {
        // Safety: plain calls into the linked OpenBLAS, which return static strings.
        let (core, config, threads) = unsafe {
            (
                text(openblas_get_corename()),
                text(openblas_get_config()),
                openblas_get_num_threads(),
            )
        };
        format!("core {core}, {threads} thread(s); {config}")
    }
}

/// Sets how many threads the BLAS may use (no effect on the single-threaded backends).
pub fn set_threads(n: usize) {
    #[cfg(feature = "openblas")]
    openblas::set_threads(n);
    #[cfg(not(feature = "openblas"))]
    let _ = n;
}

/// The backend's name and, where the library can say, the kernels and threads it uses.
pub fn describe() -> String {
    #[cfg(feature = "openblas")]
    return format!("{NAME}: {}", openblas::describe());
    #[cfg(not(feature = "openblas"))]
    return format!("{NAME}, 1 thread");
}
