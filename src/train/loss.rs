//! The conditional flow-matching loss with label dropout for classifier-free guidance
//! (Lipman et al., 2023; Ho & Salimans, 2022).
//!
//! For data `x1` with labels `y`, noise `x0 ~ N(0, I)` and `t ~ U[0, 1)` (or logit-normal):
//!
//! ```text
//! L = mean ‖u(x_t, t, ỹ) − (x1 − x0)‖²,   ỹ = NO_LABEL with probability p, else y,
//! ```
//!
//! so one network learns both the conditional and the unconditional velocity.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::Rng;
use rand_distr::StandardNormal;

use crate::model::{UNet, NO_LABEL};
use crate::path::CondOtPath;

use super::config::TimeSampling;

/// The random draws of one training batch, made on the host so that a seed fixes them.
#[derive(Debug, Clone)]
pub struct Draws {
    /// Noise, `batch × pixels`.
    pub noise: Vec<f32>,
    /// Times in `[0, 1)`.
    pub t: Vec<f32>,
    /// Labels after dropout.
    pub labels: Vec<i64>,
}

/// Replaces each label by `NO_LABEL` with probability `p`.
pub fn drop_labels(labels: &[u8], p: f64, rng: &mut impl Rng) -> Vec<i64> {
    labels
        .iter()
        .map(|&y| {
            if rng.random::<f64>() < p {
                NO_LABEL
            } else {
                y as i64
            }
        })
        .collect()
}

/// Draws noise, times and dropped labels for a batch.
pub fn draw(
    labels: &[u8],
    pixels: usize,
    dropout: f64,
    times: TimeSampling,
    rng: &mut impl Rng,
) -> Draws {
    let noise = (0..labels.len() * pixels)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect();
    let t = (0..labels.len()).map(|_| times.draw(rng)).collect();
    let labels = drop_labels(labels, dropout, rng);
    Draws { noise, t, labels }
}

/// The flow-matching loss of `model` on data `x1` (`[batch, 1, h, w]`, in `[-1, 1]`).
pub fn flow_matching_loss(
    model: &UNet,
    x1: Tensor<4>,
    draws: &Draws,
    device: &Device,
) -> Tensor<1> {
    let shape = x1.dims();
    let batch = shape[0];
    let x0 = Tensor::<4>::from_data(TensorData::new(draws.noise.clone(), shape), device);
    let t = Tensor::<1>::from_data(TensorData::new(draws.t.clone(), [batch]), device);
    let y = Tensor::<1, Int>::from_data(TensorData::new(draws.labels.clone(), [batch]), device);

    let sample = CondOtPath.sample(x0, x1, t.clone());
    let predicted = model.forward(sample.x_t, t, y);
    (predicted - sample.velocity).powf_scalar(2.0).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn label_dropout_rate_matches_its_probability() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let labels = vec![3u8; 100_000];
        let dropped = drop_labels(&labels, 0.1, &mut rng);
        let rate = dropped.iter().filter(|&&y| y == NO_LABEL).count() as f64 / 1e5;
        // Binomial standard deviation is about 0.00095; allow five of them.
        assert!((rate - 0.1).abs() < 0.005, "dropout rate {rate}");
        assert!(dropped.iter().all(|&y| y == 3 || y == NO_LABEL));
    }

    #[test]
    fn no_dropout_keeps_every_label() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let labels: Vec<u8> = (0..10).collect();
        let kept = drop_labels(&labels, 0.0, &mut rng);
        assert_eq!(kept, (0..10).collect::<Vec<i64>>());
    }
}
