//! Eigendecomposition of symmetric `f64` matrices by the cyclic Jacobi method, for the matrix
//! square roots of [`super::frechet`].
//!
//! A rotation `A ← Jᵀ A J` in the plane `(p, q)` zeroes `a_pq`; sweeping over all planes
//! again and again drives the off-diagonal mass to zero (quadratically once it is small):
//!
//! ```text
//! A = V diag(λ) Vᵀ,    V = J_1 J_2 ⋯ J_m (orthogonal).
//! ```
//!
//! It costs O(n³) a sweep and about 10 sweeps, slower than tridiagonal QR, but every step is
//! an exact plane rotation, so eigenvalues come out accurate to machine precision, and the
//! method is short enough to check by eye.

use super::error::EvalError;
use super::features::check_square;

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

/// Row-major `n × n` product, i-k-j order so the inner loop runs along rows.
pub(crate) fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
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

/// `Q diag(d) Qᵀ`, shared by the tests of the matrix code.
#[cfg(test)]
pub(crate) fn from_eigen(q: &[f64], d: &[f64]) -> Vec<f64> {
    let n = d.len();
    let mut scaled = q.to_vec();
    (0..n * n).for_each(|i| scaled[i] *= d[i % n]);
    let qt: Vec<f64> = (0..n * n).map(|i| q[(i % n) * n + i / n]).collect();
    matmul(&scaled, &qt, n)
}

#[cfg(test)]
mod tests {
    use super::super::features::random_normals;
    use super::*;

    #[test]
    fn jacobi_reconstructs_a_random_symmetric_matrix() {
        let n = 50;
        let raw = random_normals(n * n, 14);
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
    fn a_two_by_two_matrix_has_its_known_eigenpairs() {
        // [[2, 1], [1, 2]] has λ = 1 along (1, −1)/√2 and λ = 3 along (1, 1)/√2.
        let eigen = symmetric_eigen(&[2.0, 1.0, 1.0, 2.0], 2).unwrap();
        assert!((eigen.values[0] - 1.0).abs() < 1e-15 && (eigen.values[1] - 3.0).abs() < 1e-15);
        let (v0, v1) = (
            [eigen.vectors[0], eigen.vectors[2]],
            [eigen.vectors[1], eigen.vectors[3]],
        );
        let h = std::f64::consts::FRAC_1_SQRT_2;
        assert!((v0[0] * v0[1] + 0.5).abs() < 1e-15 && (v0[0].abs() - h).abs() < 1e-15);
        assert!((v1[0] * v1[1] - 0.5).abs() < 1e-15 && (v1[0].abs() - h).abs() < 1e-15);
    }

    #[test]
    fn asymmetric_or_misshapen_input_is_an_error() {
        let err = symmetric_eigen(&[1.0, 2.0, 3.0, 1.0], 2).unwrap_err();
        assert!(matches!(
            err,
            EvalError::NotSymmetric { row: 0, col: 1, .. }
        ));
        let err = symmetric_eigen(&[1.0; 5], 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "symmetric matrix of 2 × 2: expected 4 values, found 5"
        );
    }
}
