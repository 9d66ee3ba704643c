//! Under a BLAS feature, ndarray's products must really reach the BLAS library's `?gemm`, not
//! fall back to `matrixmultiply`. This test binary defines `cblas_dgemm` and `cblas_sgemm`
//! itself, so the linker binds ndarray's calls to them; they count each call and forward it to
//! the library's own function (found with `dlsym(RTLD_NEXT)`). Linux with OpenBLAS only.
#![cfg(all(feature = "openblas", target_os = "linux"))]

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::linalg::general_mat_mul;
use ndarray::Array2;

static DGEMM_CALLS: AtomicUsize = AtomicUsize::new(0);
static SGEMM_CALLS: AtomicUsize = AtomicUsize::new(0);

macro_rules! interpose_gemm {
    ($name:ident, $symbol:literal, $t:ty, $calls:ident) => {
        /// Counts the call and forwards it to the BLAS library's function.
        ///
        /// # Safety
        /// The CBLAS contract: the pointers and leading dimensions describe valid matrices.
        #[no_mangle]
        #[allow(clippy::too_many_arguments)]
        pub unsafe extern "C" fn $name(
            layout: c_int,
            trans_a: c_int,
            trans_b: c_int,
            m: c_int,
            n: c_int,
            k: c_int,
            alpha: $t,
            a: *const $t,
            lda: c_int,
            b: *const $t,
            ldb: c_int,
            beta: $t,
            c: *mut $t,
            ldc: c_int,
        ) {
            type Gemm = unsafe extern "C" fn(
                c_int,
                c_int,
                c_int,
                c_int,
                c_int,
                c_int,
                $t,
                *const $t,
                c_int,
                *const $t,
                c_int,
                $t,
                *mut $t,
                c_int,
            );
            $calls.fetch_add(1, Ordering::SeqCst);
            let real = libc::dlsym(libc::RTLD_NEXT, $symbol.as_ptr().cast());
            assert!(!real.is_null(), "the BLAS library has no {:?}", $symbol);
            let real: Gemm = std::mem::transmute::<*mut c_void, Gemm>(real);
            real(
                layout, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
            );
        }
    };
}

interpose_gemm!(cblas_dgemm, c"cblas_dgemm", f64, DGEMM_CALLS);
interpose_gemm!(cblas_sgemm, c"cblas_sgemm", f32, SGEMM_CALLS);

#[test]
fn ndarray_products_reach_the_blas_gemm() {
    // Naming OpenBLAS's own functions keeps the library linked (every gemm reference now binds
    // to the definitions above), so that RTLD_NEXT finds its gemm.
    assert!(nndl::backend::describe().contains("OpenBLAS"));
    let a = Array2::from_shape_fn((30, 784), |(i, j)| (i * 784 + j) as f64 / 1e4);
    let b = Array2::from_shape_fn((784, 10), |(i, j)| (i + j) as f64 / 1e3);
    let mut c = Array2::zeros((30, 10));
    let before = DGEMM_CALLS.load(Ordering::SeqCst);
    general_mat_mul(1.0, &a, &b, 0.0, &mut c);
    assert_eq!(
        DGEMM_CALLS.load(Ordering::SeqCst),
        before + 1,
        "dgemm was not called"
    );
    // And the forwarded call computed the product.
    let expected: f64 = (0..784).map(|k| a[[3, k]] * b[[k, 4]]).sum();
    assert!((c[[3, 4]] - expected).abs() <= 1e-9 * expected.abs());

    let a32 = a.mapv(|v| v as f32);
    let b32 = b.mapv(|v| v as f32);
    let mut c32 = Array2::<f32>::zeros((30, 10));
    let before = SGEMM_CALLS.load(Ordering::SeqCst);
    general_mat_mul(1.0, &a32, &b32, 0.0, &mut c32);
    assert_eq!(
        SGEMM_CALLS.load(Ordering::SeqCst),
        before + 1,
        "sgemm was not called"
    );
}
