//! What a solver needs of the quantity it integrates: linear combinations and an error
//! norm. Implemented for image batches (`Tensor<4>`) and, for exact tests in double
//! precision, for `f64` and `Vec<f64>`.

use burn::tensor::Tensor;

/// A point of the ODE's state space.
pub trait State: Clone {
    /// `self + Σ cᵢ · vᵢ`.
    fn add_scaled(&self, terms: &[(f64, &Self)]) -> Self;

    /// The root-mean-square of `err / (atol + rtol · max(|self|, |other|))`, the usual scaled
    /// error norm of adaptive step-size control (Hairer, Nørsett & Wanner, II.4).
    fn error_norm(&self, other: &Self, err: &Self, atol: f64, rtol: f64) -> f64;
}

impl State for f64 {
    fn add_scaled(&self, terms: &[(f64, &Self)]) -> Self {
        terms.iter().fold(*self, |acc, (c, v)| acc + c * **v)
    }

    fn error_norm(&self, other: &Self, err: &Self, atol: f64, rtol: f64) -> f64 {
        (err / (atol + rtol * self.abs().max(other.abs()))).abs()
    }
}

impl State for Vec<f64> {
    fn add_scaled(&self, terms: &[(f64, &Self)]) -> Self {
        let mut out = self.clone();
        for (c, v) in terms {
            for (o, x) in out.iter_mut().zip(v.iter()) {
                *o += c * x;
            }
        }
        out
    }

    fn error_norm(&self, other: &Self, err: &Self, atol: f64, rtol: f64) -> f64 {
        let sum: f64 = (0..self.len())
            .map(|i| (err[i] / (atol + rtol * self[i].abs().max(other[i].abs()))).powi(2))
            .sum();
        (sum / self.len().max(1) as f64).sqrt()
    }
}

impl State for Tensor<4> {
    fn add_scaled(&self, terms: &[(f64, &Self)]) -> Self {
        terms
            .iter()
            .fold(self.clone(), |acc, (c, v)| acc + (*v).clone() * *c)
    }

    fn error_norm(&self, other: &Self, err: &Self, atol: f64, rtol: f64) -> f64 {
        let scale = self.clone().abs().max_pair(other.clone().abs()) * rtol + atol;
        let ratio = err.clone() / scale;
        let mean: f32 = ratio.powf_scalar(2.0).mean().into_scalar();
        (mean as f64).sqrt()
    }
}
