//! Checks the BLAS backend chosen by Cargo features and names it for the binary.

fn main() {
    let openblas = std::env::var_os("CARGO_FEATURE_OPENBLAS").is_some();
    let accelerate = std::env::var_os("CARGO_FEATURE_ACCELERATE").is_some();
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();

    if openblas && accelerate {
        fail("the features `openblas` and `accelerate` are both on; choose one BLAS backend");
    }
    if accelerate && target_os != "macos" {
        fail(&format!(
            "the `accelerate` feature needs macOS (Apple's Accelerate framework), but the target \
             OS is `{target_os}`; use `--features openblas` (after installing the system OpenBLAS, \
             e.g. `apt-get install libopenblas-dev`) or no feature for the pure-Rust backend"
        ));
    }
    let backend = if openblas {
        "OpenBLAS (system library)"
    } else if accelerate {
        "Apple Accelerate"
    } else {
        "pure Rust (matrixmultiply)"
    };
    println!("cargo:rustc-env=NNDL_BACKEND={backend}");
    println!("cargo:rerun-if-changed=build.rs");
}

/// Stops the build with `message` shown as Cargo's error.
fn fail(message: &str) -> ! {
    println!("cargo::error={message}");
    std::process::exit(0);
}
