//! The Fréchet distance between two Gaussians (Heusel et al., 2017), which FID evaluates on
//! Gaussians fitted to classifier features of real and generated images:
//!
//! ```text
//! d² = |μ1 − μ2|² + tr Σ1 + tr Σ2 − 2 tr (Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2}.
//! ```
//!
//! `Σ1^{1/2} Σ2 Σ1^{1/2}` is symmetric positive semi-definite and has the eigenvalues of
//! `Σ1 Σ2`, so both square roots come from symmetric eigendecompositions; no general
//! (non-symmetric) matrix square root is needed. Eigenvalues come from the cyclic Jacobi
//! method, slow-ish (O(n³) a sweep, ~10 sweeps) but accurate to machine precision and simple
//! enough to trust; at the feature sizes of FID (≤ 256) it takes well under a second.

use super::error::EvalError;
use super::features::{check_square, Gaussian};

/// Sweeps after which Jacobi stops even if roundoff keeps refilling tiny off-diagonals;
/// convergence is quadratic, so well-conditioned inputs need about 10.
const MAX_SWEEPS: usize = 100;

/// The eigendecomposition `A = V diag(λ) Vᵀ` of a symmetric matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct SymmetricEigen {
    /// The eigenvalues `λ`, ascending.
    pub values: Vec<f64>,
    /// Row-major `n × n`; column `j` is the unit eigenvector of `values[j]`.
    pub vectors: Vec<f64>,
    /// The order `n`.
    pub n: usize,
}

/// The eigendecomposition of the symmetric row-major `n × n` matrix `a` by cyclic Jacobi
/// rotations.
pub fn symmetric_eigen(a: &[f64], n: usize) -> Result<SymmetricEigen, EvalError> {
    check_square("symmetric matrix", a, n)?;
    let mut a = a.to_vec();
    // Rows of `vt` are the eigenvectors: rotations then touch two contiguous rows.
    let mut vt = vec![0.0; n * n];
    (0..n).for_each(|i| vt[i * n + i] = 1.0);
    // Off-diagonals below this floor move eigenvalues by less than roundoff already does.
    let norm = a.iter().map(|v| v * v).sum::<f64>().sqrt();
    let floor = f64::EPSILON * 1e-3 * norm;

    for _ in 0..MAX_SWEEPS {
        let mut rotated = false;
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                let (app, aqq) = (a[p * n + p], a[q * n + q]);
                if apq.abs() <= floor || apq.abs() <= f64::EPSILON * (app * aqq).abs().sqrt() {
                    continue;
                }
                rotated = true;
                // tan θ of the rotation that zeroes a_pq, the smaller root for stability.
                let theta = (aqq - app) / (2.0 * apq);
                let t = if theta.abs() > 1e150 {
                    // θ² would overflow; t → 1/(2θ) is the limit of the formula below.
                    0.5 / theta
                } else {
                    theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt())
                };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                rotate(&mut a, n, p, q, c, s);
                a[p * n + p] = app - t * apq;
                a[q * n + q] = aqq + t * apq;
                a[p * n + q] = 0.0;
                a[q * n + p] = 0.0;
                rotate_rows(&mut vt, n, p, q, c, s);
            }
        }
        if !rotated {
            break;
        }
    }

    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[i * n + i].total_cmp(&a[j * n + j]));
    let values = order.iter().map(|&i| a[i * n + i]).collect();
    let mut vectors = vec![0.0; n * n];
    for (col, &i) in order.iter().enumerate() {
        (0..n).for_each(|row| vectors[row * n + col] = vt[i * n + row]);
    }
    Ok(SymmetricEigen { values, vectors, n })
}

/// `A ← Jᵀ A J` off the (p, q) block: rows p and q mix, then the columns mirror them.
fn rotate(a: &mut [f64], n: usize, p: usize, q: usize, c: f64, s: f64) {
    rotate_rows(a, n, p, q, c, s);
    for r in 0..n {
        if r != p && r != q {
            a[r * n + p] = a[p * n + r];
            a[r * n + q] = a[q * n + r];
        }
    }
}

/// Rows p and q of `m` become `c·m_p − s·m_q` and `s·m_p + c·m_q`.
fn rotate_rows(m: &mut [f64], n: usize, p: usize, q: usize, c: f64, s: f64) {
    let (head, tail) = m.split_at_mut(q * n);
    let (row_p, row_q) = (&mut head[p * n..(p + 1) * n], &mut tail[..n]);
    row_p.iter_mut().zip(row_q.iter_mut()).for_each(|(x, y)| {
        let (xp, xq) = (*x, *y);
        *x = c * xp - s * xq;
        *y = s * xp + c * xq;
    });
}

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

/// Row-major `n × n` product, i-k-j order so the inner loop runs along rows.
fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        let out_row = &mut out[i * n..(i + 1) * n];
        for k in 0..n {
            let aik = a[i * n + k];
            out_row
                .iter_mut()
                .zip(&b[k * n..(k + 1) * n])
                .for_each(|(o, &x)| *o += aik * x);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::features::random_features;
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_distr::StandardNormal;

    fn normals(count: usize, seed: u64) -> Vec<f64> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..count).map(|_| rng.sample(StandardNormal)).collect()
    }

    /// `Q diag(d) Qᵀ`.
    fn from_eigen(q: &[f64], d: &[f64]) -> Vec<f64> {
        let n = d.len();
        let mut scaled = q.to_vec();
        (0..n * n).for_each(|i| scaled[i] *= d[i % n]);
        let qt: Vec<f64> = (0..n * n).map(|i| q[(i % n) * n + i / n]).collect();
        matmul(&scaled, &qt, n)
    }

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

    #[test]
    fn jacobi_reconstructs_a_random_symmetric_matrix() {
        let n = 50;
        let raw = normals(n * n, 14);
        let a: Vec<f64> = (0..n * n)
            .map(|i| raw[i] + raw[(i % n) * n + i / n])
            .collect();
        let eigen = symmetric_eigen(&a, n).unwrap();
        assert!(eigen.values.windows(2).all(|w| w[0] <= w[1]));
        let rebuilt = from_eigen(&eigen.vectors, &eigen.values);
        let worst = a
            .iter()
            .zip(&rebuilt)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(worst <= 1e-10, "reconstruction error {worst}");
        let v = &eigen.vectors;
        for i in 0..n {
            for j in 0..n {
                let dot: f64 = (0..n).map(|k| v[k * n + i] * v[k * n + j]).sum();
                assert!((dot - if i == j { 1.0 } else { 0.0 }).abs() <= 1e-12);
            }
        }
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
