//! Feature matrices and the Gaussians fitted to them.
//!
//! [`Features`] is a row-major `rows × dim` matrix of `f32`, one sample per row, checked
//! once on construction so every metric can trust its shape and finiteness. [`Gaussian`]
//! holds the sample mean and the unbiased covariance, accumulated in `f64` because FID
//! subtracts traces of similar size and `f32` sums over 10⁴ rows lose the digits that matter:
//!
//! ```text
//! μ = (1/n) Σ_i x_i,    Σ = (1/(n − 1)) Σ_i (x_i − μ)(x_i − μ)ᵀ.
//! ```

use super::error::EvalError;

/// A row-major matrix of features: `rows` samples of `dim` values each.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    rows: usize,
    dim: usize,
    values: Vec<f32>,
}

impl Features {
    /// Wraps `values` as a `rows × dim` matrix, checking that the size matches, that neither
    /// side is zero and that every value is finite.
    pub fn new(rows: usize, dim: usize, values: Vec<f32>) -> Result<Self, EvalError> {
        if rows == 0 {
            return Err(EvalError::Empty {
                what: "feature matrix",
                unit: "row",
            });
        }
        if dim == 0 {
            return Err(EvalError::Empty {
                what: "feature matrix",
                unit: "dimension",
            });
        }
        let expected = rows.checked_mul(dim).ok_or_else(|| EvalError::Shape {
            what: format!("feature matrix of {rows} × {dim}"),
            expected: usize::MAX,
            found: values.len(),
        })?;
        if values.len() != expected {
            return Err(EvalError::Shape {
                what: format!("feature matrix of {rows} × {dim}"),
                expected,
                found: values.len(),
            });
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(EvalError::NonFinite {
                what: "feature matrix",
                row: i / dim,
                col: i % dim,
                value: values[i] as f64,
            });
        }
        Ok(Self { rows, dim, values })
    }

    /// Number of samples.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Values per sample.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// All values, row-major.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Sample `i`.
    ///
    /// # Panics
    /// If `i >= rows`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    /// Rows `start..end` as one row-major slice.
    pub(crate) fn row_range(&self, start: usize, end: usize) -> &[f32] {
        &self.values[start * self.dim..end * self.dim]
    }

    /// `‖x_i‖²` of every row, summed in `f64` so long rows keep their precision.
    pub(crate) fn squared_norms(&self) -> Vec<f32> {
        self.values
            .chunks_exact(self.dim)
            .map(|row| row.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() as f32)
            .collect()
    }

    /// The sample mean and unbiased covariance. Needs at least two rows.
    pub fn gaussian(&self) -> Result<Gaussian, EvalError> {
        if self.rows < 2 {
            return Err(EvalError::TooFewRows {
                what: "covariance of features",
                expected: 2,
                found: self.rows,
            });
        }
        let d = self.dim;
        let mut mean = vec![0.0f64; d];
        for row in self.values.chunks_exact(d) {
            mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
        }
        mean.iter_mut().for_each(|m| *m /= self.rows as f64);

        // Only the upper triangle is accumulated; the lower one is its mirror.
        let mut cov = vec![0.0f64; d * d];
        let mut centred = vec![0.0f64; d];
        for row in self.values.chunks_exact(d) {
            centred
                .iter_mut()
                .zip(row.iter().zip(&mean))
                .for_each(|(c, (&v, m))| {
                    *c = v as f64 - m;
                });
            for i in 0..d {
                let ci = centred[i];
                let out = &mut cov[i * d + i..(i + 1) * d];
                out.iter_mut()
                    .zip(&centred[i..])
                    .for_each(|(o, &cj)| *o += ci * cj);
            }
        }
        let norm = 1.0 / (self.rows - 1) as f64;
        for i in 0..d {
            for j in i..d {
                let v = cov[i * d + j] * norm;
                cov[i * d + j] = v;
                cov[j * d + i] = v;
            }
        }
        Ok(Gaussian { mean, cov, dim: d })
    }
}

/// A Gaussian in `dim` dimensions: mean and row-major `dim × dim` covariance.
#[derive(Debug, Clone, PartialEq)]
pub struct Gaussian {
    mean: Vec<f64>,
    cov: Vec<f64>,
    dim: usize,
}

impl Gaussian {
    /// A Gaussian from its parameters, checking shapes, finiteness and symmetry of `cov`
    /// (to a relative `1e-9`; positive semi-definiteness is not checked).
    pub fn new(mean: Vec<f64>, cov: Vec<f64>) -> Result<Self, EvalError> {
        let dim = mean.len();
        if dim == 0 {
            return Err(EvalError::Empty {
                what: "mean",
                unit: "dimension",
            });
        }
        check_square("covariance", &cov, dim)?;
        if let Some(i) = mean.iter().position(|v| !v.is_finite()) {
            return Err(EvalError::NonFinite {
                what: "mean",
                row: 0,
                col: i,
                value: mean[i],
            });
        }
        Ok(Self { mean, cov, dim })
    }

    /// The mean, `dim` values.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The covariance, row-major `dim × dim`.
    pub fn cov(&self) -> &[f64] {
        &self.cov
    }

    /// The dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }
}

/// Checks that `a` is a finite, symmetric `n × n` matrix.
pub(crate) fn check_square(what: &'static str, a: &[f64], n: usize) -> Result<(), EvalError> {
    if a.len() != n * n {
        return Err(EvalError::Shape {
            what: format!("{what} of {n} × {n}"),
            expected: n * n,
            found: a.len(),
        });
    }
    if let Some(i) = a.iter().position(|v| !v.is_finite()) {
        return Err(EvalError::NonFinite {
            what,
            row: i / n,
            col: i % n,
            value: a[i],
        });
    }
    for i in 0..n {
        for j in i + 1..n {
            let (upper, lower) = (a[i * n + j], a[j * n + i]);
            if (upper - lower).abs() > 1e-9 * (upper.abs() + lower.abs()) {
                return Err(EvalError::NotSymmetric {
                    what,
                    row: i,
                    col: j,
                    upper,
                    lower,
                });
            }
        }
    }
    Ok(())
}

/// Seeded standard-normal features, shared by the tests of the whole module.
#[cfg(test)]
pub(crate) fn random_features(rows: usize, dim: usize, seed: u64) -> Features {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let values = (0..rows * dim)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    Features::new(rows, dim, values).expect("a consistent shape")
}

/// Seeded standard-normal `f64` values, for tests of the matrix code.
#[cfg(test)]
pub(crate) fn random_normals(count: usize, seed: u64) -> Vec<f64> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| rng.sample(rand_distr::StandardNormal))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructor_rejects_wrong_sizes_empty_shapes_and_non_finite_values() {
        let err = Features::new(2, 3, vec![0.0; 5]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "feature matrix of 2 × 3: expected 6 values, found 5"
        );
        assert!(matches!(
            Features::new(0, 3, vec![]),
            Err(EvalError::Empty { .. })
        ));
        assert!(matches!(
            Features::new(3, 0, vec![]),
            Err(EvalError::Empty { .. })
        ));
        let err = Features::new(2, 2, vec![0.0, 1.0, f32::NAN, 2.0]).unwrap_err();
        assert!(matches!(err, EvalError::NonFinite { row: 1, col: 0, .. }));
    }

    #[test]
    fn gaussian_has_the_sample_mean_and_unbiased_covariance() {
        // Rows (0, 0), (2, 2), (4, -2): mean (2, 0); deviations (-2, 0), (0, 2), (2, -2).
        let f = Features::new(3, 2, vec![0.0, 0.0, 2.0, 2.0, 4.0, -2.0]).unwrap();
        let g = f.gaussian().unwrap();
        assert_eq!(g.mean(), &[2.0, 0.0]);
        // Σ = [[8, -4], [-4, 8]] / (3 − 1).
        assert_eq!(g.cov(), &[4.0, -2.0, -2.0, 4.0]);
        assert!(matches!(
            Features::new(1, 2, vec![1.0, 2.0]).unwrap().gaussian(),
            Err(EvalError::TooFewRows {
                expected: 2,
                found: 1,
                ..
            })
        ));
    }

    #[test]
    fn gaussian_constructor_rejects_asymmetric_or_misshapen_covariances() {
        let err = Gaussian::new(vec![0.0; 2], vec![1.0, 0.5, 0.4, 1.0]).unwrap_err();
        assert!(matches!(
            err,
            EvalError::NotSymmetric { row: 0, col: 1, .. }
        ));
        let err = Gaussian::new(vec![0.0; 2], vec![1.0; 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "covariance of 2 × 2: expected 4 values, found 3"
        );
    }
}
