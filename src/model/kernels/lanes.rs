//! Helpers for element-wise kernels that the compiler turns into vector code: sums kept in
//! 16 lanes, a branch-free `exp`, and [`run`], which compiles a kernel for the widest
//! instruction set the CPU has (AVX-512, else AVX2 with FMA, else the baseline) and picks one
//! at run time.
//!
//! The lane count is fixed, not the vector width, so every instruction set adds in the same
//! order and gives bit-identical results.

/// Accumulators per sum.
pub const LANES: usize = 16;

/// A kernel body, compiled once per instruction set. Implementations mark `run`
/// `#[inline(always)]` so that it is compiled inside [`run`]'s target-specific wrappers.
pub trait Kernel {
    /// What the kernel returns.
    type Output;
    /// The work.
    fn run(self) -> Self::Output;
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn run_avx512<K: Kernel>(k: K) -> K::Output {
    k.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<K: Kernel>(k: K) -> K::Output {
    k.run()
}

/// Runs `k` compiled for the best instruction set available.
pub fn run<K: Kernel>(k: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            // SAFETY: the features were detected on this CPU.
            return unsafe { run_avx512(k) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: as above.
            return unsafe { run_avx2(k) };
        }
    }
    k.run()
}

/// `Σ v`, in [`LANES`] interleaved partial sums.
#[inline(always)]
pub fn sum(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = v.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] += c[i];
        }
    }
    for (a, r) in acc.iter_mut().zip(rest) {
        *a += r;
    }
    fold(acc)
}

/// `Σ (v − m)²`, in [`LANES`] interleaved partial sums.
#[inline(always)]
pub fn sum_squared_deviations(v: &[f32], m: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = v.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            let d = c[i] - m;
            acc[i] += d * d;
        }
    }
    for (a, r) in acc.iter_mut().zip(rest) {
        *a += (r - m) * (r - m);
    }
    fold(acc)
}

/// Adds the lanes pairwise.
#[inline(always)]
pub fn fold(mut acc: [f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    while width > 0 {
        for i in 0..width {
            acc[i] += acc[i + width];
        }
        width /= 2;
    }
    acc[0]
}

/// `eˣ` to about 2e-7 relative: a round-to-nearest by adding and subtracting 1.5·2²³, a
/// degree-6 polynomial on the remainder, and the power of two built in the exponent bits.
/// Inputs are clamped to `[−87, 88]`, where `f32` holds the result.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const SHIFT: f32 = 12_582_912.0;
    let x = if x < -87.0 { -87.0 } else { x };
    let x = if x > 88.0 { 88.0 } else { x };
    let n = (x * std::f32::consts::LOG2_E + SHIFT) - SHIFT;
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    p * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

/// `1 / (1 + e⁻ᶻ)`.
#[inline(always)]
pub fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + exp(-z))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_over_the_range_silu_meets() {
        let mut worst = 0.0f64;
        for i in -8000..=8000 {
            let x = i as f32 / 100.0;
            let rel = ((exp(x) as f64) / (x as f64).exp() - 1.0).abs();
            worst = worst.max(rel);
        }
        assert!(worst < 1e-6, "{worst}");
        assert!(sigmoid(-200.0) >= 0.0 && sigmoid(-200.0) < 1e-37);
        assert_eq!(sigmoid(200.0), 1.0);
    }

    #[test]
    fn lane_sums_match_plain_sums() {
        for n in [0, 1, 15, 16, 17, 49, 196, 1000] {
            let v: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) / 8.0).collect();
            let plain: f64 = v.iter().map(|&x| x as f64).sum();
            assert!((sum(&v) as f64 - plain).abs() < 1e-4, "{n}");
            let m = 0.3f32;
            let sq: f64 = v.iter().map(|&x| ((x - m) as f64).powi(2)).sum();
            assert!(
                (sum_squared_deviations(&v, m) as f64 - sq).abs() < 1e-4,
                "{n}"
            );
        }
    }
}
