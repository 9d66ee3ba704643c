//! The sigmoid σ(z + b) = 1 / (1 + e^(−(z + b))) over a whole slice, in loops the compiler
//! turns into SIMD code. Not in the book's programs, where NumPy's and Theano's e^x already
//! work on whole arrays.
//!
//! Rust's `exp` is a call into the C library per value, which no loop around it can
//! vectorise; in a convolutional layer that sigmoid takes as long as the layer's products at
//! chapter 6's sizes. Here e^x is computed in the textbook way, with operations that
//! vectorise:
//!
//! - write x = k·ln 2 + r with k = round(x / ln 2), so that |r| ≤ ln 2 / 2; r is x − k·C₁ − k·C₂
//!   with C₁ + C₂ = ln 2 and C₁ short enough that k·C₁ is exact (Cody and Waite's reduction);
//! - e^r from its Taylor series, to degree 7 in `f32` and 13 in `f64`, where the first term
//!   left out is below half an ulp for |r| ≤ ln 2 / 2;
//! - e^x = 2^k · e^r, 2^k built from its bits: k is read from the low bits of x / ln 2 +
//!   1.5·2^23 (1.5·2^52 in `f64`), which the addition rounds to the nearest integer, so no
//!   float-to-int conversion is needed.
//!
//! x is clamped first to where 2^k is a normal number and e^x is finite. For the sigmoid that
//! changes nothing that matters: σ is then exactly 1 (−(z + b) < −87 in `f32`) or below
//! 10^−38 (−(z + b) > 88), where the exact value is smaller still. A NaN stays NaN, so a
//! diverging run is still caught. Plain multiplications and additions, no fused ones: the
//! results are the same on every CPU, with or without FMA.
//!
//! Left out: a general-purpose e^x (this one is only as good as the sigmoid needs: within
//! 1.25 ε of the exact value, tested over the whole clamped range).

use multiversion::multiversion;

/// Sets every element of `z` to σ(z + b), in `f32`.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "x86_64+sse4.1"))]
pub fn sigmoid_biased_f32(z: &mut [f32], b: f32) {
    for z in z {
        *z = 1.0 / (1.0 + exp_f32(-(*z + b)));
    }
}

/// Sets every element of `z` to σ(z + b), in `f64`.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "x86_64+sse4.1"))]
pub fn sigmoid_biased_f64(z: &mut [f64], b: f64) {
    for z in z {
        *z = 1.0 / (1.0 + exp_f64(-(*z + b)));
    }
}

/// e^x in `f32`, for the sigmoid (see the module's notes).
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    // 1.5·2^23: adding it rounds to an integer, held in the low bits of the sum.
    const SHIFT: f32 = 12_582_912.0;
    const C1: f32 = 355.0 / 512.0; // k·C1 is exact for |k| < 2^15
    const C2: f32 = -2.121_944_4e-4; // ln 2 − C1
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + SHIFT;
    let k = t - SHIFT;
    let r = (x - k * C1) - k * C2;
    // Taylor series of e^r to r⁷/7!, by Horner's rule.
    let mut p = 1.0 / 5040.0;
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    // 2^k: t's bits are those of 1.5·2^23 plus k, and only the low bits survive the shift.
    let two_k = f32::from_bits(t.to_bits().wrapping_add(127) << 23);
    p * two_k
}

/// e^x in `f64`, for the sigmoid (see the module's notes).
#[inline(always)]
fn exp_f64(x: f64) -> f64 {
    const SHIFT: f64 = 6_755_399_441_055_744.0; // 1.5·2^52
    const C1: f64 = 0.693_145_751_953_125; // 45426/65536: k·C1 is exact for |k| < 2^37
    const C2: f64 = 1.428_606_820_309_417_3e-6; // ln 2 − C1
    let x = x.clamp(-708.0, 709.0);
    let t = x * std::f64::consts::LOG2_E + SHIFT;
    let k = t - SHIFT;
    let r = (x - k * C1) - k * C2;
    // Taylor series of e^r to r¹³/13!, by Horner's rule: 1/13!, 1/12!, …, 1/1!, 1/0!.
    const INV_FACTORIAL: [f64; 14] = {
        let mut c = [1.0; 14];
        let mut n = 1;
        while n < 14 {
            c[n] = c[n - 1] / n as f64;
            n += 1;
        }
        c
    };
    let mut p = INV_FACTORIAL[13];
    for n in (0..13).rev() {
        p = p * r + INV_FACTORIAL[n];
    }
    let two_k = f64::from_bits(t.to_bits().wrapping_add(1023) << 52);
    p * two_k
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative error of the fast e^x, in units of the type's epsilon, over the range the clamp
    /// keeps: against the exact value in `f32` (`f64`'s e^x of the same input), against the C
    /// library's in `f64`. Measured at about 0.8 ε and 1.0 ε; the bound of 1.25 ε fails on a
    /// Taylor series one term short or a constant off in its last digits.
    #[test]
    fn exp_matches_the_c_library() {
        let n = 200_000;
        let mut worst = (0.0f64, 0.0f64);
        for i in 0..=n {
            let x = -87.0 + 175.0 * i as f64 / n as f64;
            let x32 = x as f32;
            let exact = f64::from(x32).exp();
            worst.0 = worst.0.max((f64::from(exp_f32(x32)) - exact).abs() / exact);
            let x = -708.0 + 1417.0 * i as f64 / n as f64;
            let exact = x.exp();
            worst.1 = worst.1.max((exp_f64(x) - exact).abs() / exact);
        }
        let (f32_ulps, f64_ulps) = (worst.0 / f64::from(f32::EPSILON), worst.1 / f64::EPSILON);
        assert!(f32_ulps < 1.25, "f32 e^x off by {f32_ulps} ε");
        assert!(f64_ulps < 1.25, "f64 e^x off by {f64_ulps} ε");
    }

    #[test]
    fn sigmoid_matches_the_obvious_formula_everywhere() {
        let zs: Vec<f64> = (-4000..=4000).map(|i| i as f64 * 0.25).collect();
        let mut z64 = zs.clone();
        sigmoid_biased_f64(&mut z64, 0.5);
        let mut z32: Vec<f32> = zs.iter().map(|&z| z as f32).collect();
        sigmoid_biased_f32(&mut z32, 0.5);
        for (i, &z) in zs.iter().enumerate() {
            let exact = 1.0 / (1.0 + (-(z + 0.5)).exp());
            let tol = |eps: f64| 4.0 * eps * exact + 1e-300;
            assert!(
                (z64[i] - exact).abs() <= tol(f64::EPSILON),
                "f64 σ({z} + 0.5)"
            );
            let exact32 = 1.0 / (1.0 + (-(f64::from(z as f32 + 0.5))).exp());
            let err = (f64::from(z32[i]) - exact32).abs();
            assert!(
                err <= 4.0 * f64::from(f32::EPSILON) * exact32 || err < 1e-38,
                "f32 σ({z} + 0.5): {} against {exact32}",
                z32[i]
            );
        }
        assert_eq!(z64[zs.len() - 1], 1.0);
        assert!(z64[0] >= 0.0 && z64[0] < 1e-300);
    }

    /// NaN, ±∞ and values past the clamp, in the middle of slices long enough that the
    /// vectorised loop body (not only its scalar remainder) meets them.
    #[test]
    fn nan_stays_nan_and_extremes_saturate() {
        let specials = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            100.0,
            -100.0,
            1e4,
            -1e4,
        ];
        let at = 37;
        let mut z32 = vec![0.25f32; 96];
        let mut z64 = vec![0.25f64; 96];
        for (i, &v) in specials.iter().enumerate() {
            z32[at + i] = v as f32;
            z64[at + i] = v;
        }
        sigmoid_biased_f32(&mut z32, 0.0);
        sigmoid_biased_f64(&mut z64, 0.0);
        // Beyond the clamp, σ is 1 or a value below `tiny` where the exact one is smaller.
        let expect = |got: f64, v: f64, tiny: f64| {
            let exact = 1.0 / (1.0 + (-v).exp());
            if v.is_nan() {
                assert!(got.is_nan(), "σ(NaN) = {got}");
            } else {
                assert!(
                    got >= 0.0 && (got - exact).abs() <= 1e-6 * exact + tiny,
                    "σ({v}) = {got}"
                );
            }
        };
        for (i, &v) in specials.iter().enumerate() {
            expect(f64::from(z32[at + i]), v, 1e-37);
            expect(z64[at + i], v, 1e-300);
        }
        let rest = |i: usize| !(at..at + specials.len()).contains(&i);
        let s = 1.0 / (1.0 + (-0.25f64).exp());
        assert!(z32
            .iter()
            .enumerate()
            .filter(|&(i, _)| rest(i))
            .all(|(_, &a)| (f64::from(a) - s).abs() < 1e-7));
        assert!(z64
            .iter()
            .enumerate()
            .filter(|&(i, _)| rest(i))
            .all(|(_, &a)| (a - s).abs() < 1e-15));
    }
}
