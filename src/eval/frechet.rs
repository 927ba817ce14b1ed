//! The Fréchet distance between two Gaussians (Heusel et al., 2017), which FID evaluates on
//! Gaussians fitted to classifier features of real and generated images:
//!
//! ```text
//! d² = |μ1 − μ2|² + tr Σ1 + tr Σ2 − 2 tr (Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2}.
//! ```
//!
//! `Σ1^{1/2} Σ2 Σ1^{1/2}` is symmetric positive semi-definite and has the eigenvalues of
//! `Σ1 Σ2`, so both square roots come from symmetric eigendecompositions ([`super::jacobi`]);
//! no general (non-symmetric) matrix square root is needed. In 256 dimensions one distance
//! took 0.38 s (release, two shared cores).

use super::error::EvalError;
use super::features::Gaussian;
use super::jacobi::{matmul, symmetric_eigen};

/// `d²` between two Gaussians, the number FID reports (the squared Fréchet distance).
///
/// Eigenvalues that roundoff pushes slightly below zero are clamped to zero, and so is the
/// final value, which can come out at `−1e−12` for equal inputs.
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> Result<f64, EvalError> {
    if a.dim() != b.dim() {
        return Err(EvalError::DimensionMismatch {
            what: "the two Gaussians",
            expected: a.dim(),
            found: b.dim(),
        });
    }
    let n = a.dim();
    let mean_term: f64 = a
        .mean()
        .iter()
        .zip(b.mean())
        .map(|(x, y)| (x - y).powi(2))
        .sum();
    let trace = |m: &[f64]| (0..n).map(|i| m[i * n + i]).sum::<f64>();

    let root = sqrt_psd(a.cov(), n)?;
    let mut inner = matmul(&matmul(&root, b.cov(), n), &root, n);
    // Roundoff leaves the product a hair asymmetric; Jacobi wants it exactly symmetric.
    for i in 0..n {
        for j in i + 1..n {
            let v = 0.5 * (inner[i * n + j] + inner[j * n + i]);
            inner[i * n + j] = v;
            inner[j * n + i] = v;
        }
    }
    let cross: f64 = symmetric_eigen(&inner, n)?
        .values
        .iter()
        .map(|&l| l.max(0.0).sqrt())
        .sum();
    Ok((mean_term + trace(a.cov()) + trace(b.cov()) - 2.0 * cross).max(0.0))
}

/// The symmetric square root `V diag(√λ) Vᵀ` of a positive semi-definite matrix.
fn sqrt_psd(m: &[f64], n: usize) -> Result<Vec<f64>, EvalError> {
    let eigen = symmetric_eigen(m, n)?;
    let roots: Vec<f64> = eigen.values.iter().map(|&l| l.max(0.0).sqrt()).collect();
    let v = &eigen.vectors;
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for j in i..n {
            let s: f64 = (0..n).map(|k| v[i * n + k] * roots[k] * v[j * n + k]).sum();
            out[i * n + j] = s;
            out[j * n + i] = s;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::features::{random_features, random_normals as normals};
    use super::super::jacobi::from_eigen;
    use super::*;

    /// A random orthogonal matrix: Gram–Schmidt on the columns of a Gaussian one.
    fn orthogonal(n: usize, seed: u64) -> Vec<f64> {
        let mut q = normals(n * n, seed);
        for j in 0..n {
            for k in 0..j {
                let dot: f64 = (0..n).map(|i| q[i * n + j] * q[i * n + k]).sum();
                (0..n).for_each(|i| q[i * n + j] -= dot * q[i * n + k]);
            }
            let norm = (0..n).map(|i| q[i * n + j].powi(2)).sum::<f64>().sqrt();
            (0..n).for_each(|i| q[i * n + j] /= norm);
        }
        q
    }

    /// `|Δμ|² + Σ (√a_i − √b_i)²`, the distance of Gaussians whose covariances commute.
    fn commuting_closed_form(m1: &[f64], m2: &[f64], a: &[f64], b: &[f64]) -> f64 {
        let mean: f64 = m1.iter().zip(m2).map(|(x, y)| (x - y).powi(2)).sum();
        mean + a
            .iter()
            .zip(b)
            .map(|(x, y)| (x.sqrt() - y.sqrt()).powi(2))
            .sum::<f64>()
    }

    fn positive(count: usize, seed: u64) -> Vec<f64> {
        normals(count, seed).iter().map(|x| 0.1 + x * x).collect()
    }

    #[test]
    fn diagonal_covariances_match_the_closed_form() {
        let n = 24;
        let (m1, m2) = (normals(n, 1), normals(n, 2));
        let (a, b) = (positive(n, 3), positive(n, 4));
        let eye: Vec<f64> = (0..n * n)
            .map(|i| if i % (n + 1) == 0 { 1.0 } else { 0.0 })
            .collect();
        let g1 = Gaussian::new(m1.clone(), from_eigen(&eye, &a)).unwrap();
        let g2 = Gaussian::new(m2.clone(), from_eigen(&eye, &b)).unwrap();
        let expected = commuting_closed_form(&m1, &m2, &a, &b);
        let d = frechet_distance(&g1, &g2).unwrap();
        assert!((d - expected).abs() <= 1e-6 * expected, "{d} vs {expected}");
    }

    #[test]
    fn rotated_commuting_covariances_match_the_closed_form() {
        // Σ1 = Q diag(a) Qᵀ and Σ2 = Q diag(b) Qᵀ are dense but share eigenvectors, so the
        // distance is still |Δμ|² + Σ(√a − √b)².
        let n = 32;
        let q = orthogonal(n, 5);
        let (m1, m2) = (normals(n, 6), normals(n, 7));
        let (a, b) = (positive(n, 8), positive(n, 9));
        let g1 = Gaussian::new(m1.clone(), from_eigen(&q, &a)).unwrap();
        let g2 = Gaussian::new(m2.clone(), from_eigen(&q, &b)).unwrap();
        let expected = commuting_closed_form(&m1, &m2, &a, &b);
        let d = frechet_distance(&g1, &g2).unwrap();
        assert!((d - expected).abs() <= 1e-9 * expected, "{d} vs {expected}");
    }

    #[test]
    fn equal_full_covariances_leave_only_the_mean_term() {
        let n = 48;
        let g = random_features(500, n, 10).gaussian().unwrap();
        let shifted: Vec<f64> = normals(n, 11);
        let other = Gaussian::new(shifted.clone(), g.cov().to_vec()).unwrap();
        let mean_term: f64 = g
            .mean()
            .iter()
            .zip(&shifted)
            .map(|(x, y)| (x - y).powi(2))
            .sum();
        let d = frechet_distance(&g, &other).unwrap();
        assert!(
            (d - mean_term).abs() <= 1e-9,
            "trace part {}",
            d - mean_term
        );
        assert!(frechet_distance(&g, &g).unwrap() <= 1e-9);
    }

    #[test]
    fn distance_is_symmetric() {
        let a = random_features(400, 16, 12).gaussian().unwrap();
        let scaled: Vec<f32> = random_features(300, 16, 13)
            .values()
            .iter()
            .enumerate()
            .map(|(i, &v)| v * (1.0 + (i % 16) as f32 * 0.2) + 0.3)
            .collect();
        let b = super::super::Features::new(300, 16, scaled)
            .unwrap()
            .gaussian()
            .unwrap();
        let (ab, ba) = (
            frechet_distance(&a, &b).unwrap(),
            frechet_distance(&b, &a).unwrap(),
        );
        assert!(ab > 1.0);
        assert!((ab - ba).abs() <= 1e-9 * ab, "{ab} vs {ba}");
    }

    /// `cargo test --release --lib eval::frechet -- --ignored --nocapture`
    #[test]
    #[ignore = "timing, run by hand"]
    fn timing_in_256_dimensions() {
        let a = random_features(2_000, 256, 17).gaussian().unwrap();
        let b = random_features(2_000, 256, 18).gaussian().unwrap();
        let start = std::time::Instant::now();
        let d = frechet_distance(&a, &b).unwrap();
        println!(
            "Fréchet distance in 256 dimensions: {:.2?} (d² = {d:.4})",
            start.elapsed()
        );
    }

    #[test]
    fn mismatched_dimensions_are_an_error() {
        let a = random_features(10, 3, 15).gaussian().unwrap();
        let b = random_features(10, 4, 16).gaussian().unwrap();
        let err = frechet_distance(&a, &b).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dimension mismatch between the two Gaussians: expected 3, found 4"
        );
    }
}
