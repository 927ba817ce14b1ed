//! The conditional optimal-transport (CondOT) probability path of flow matching
//! (Lipman et al., 2023, "Flow Matching for Generative Modeling").
//!
//! Noise `x0 ~ N(0, I)` sits at `t = 0` and data `x1` at `t = 1`. With the linear schedule
//! `alpha_t = t`, `sigma_t = 1 - t` a point on the path is
//!
//! ```text
//! x_t = t · x1 + (1 − t) · x0,
//! ```
//!
//! and the conditional velocity that carries it, the regression target of training, is
//! `d x_t / dt = x1 − x0`, the same at every `t`.

use burn::tensor::Tensor;

/// A sample of the path for a batch: the point `x_t` and the velocity to regress onto.
#[derive(Debug, Clone)]
pub struct PathSample {
    /// `x_t`, shape `[batch, channels, height, width]`.
    pub x_t: Tensor<4>,
    /// `x1 − x0`, same shape.
    pub velocity: Tensor<4>,
}

/// The linear (CondOT) Gaussian path.
#[derive(Debug, Clone, Copy, Default)]
pub struct CondOtPath;

impl CondOtPath {
    /// `alpha_t`, the weight of the data at time `t`.
    pub fn alpha(t: f64) -> f64 {
        t
    }

    /// `sigma_t`, the weight of the noise at time `t`.
    pub fn sigma(t: f64) -> f64 {
        1.0 - t
    }

    /// The path at times `t` (shape `[batch]`) between noise `x0` and data `x1`.
    ///
    /// # Shapes
    /// - `x0`, `x1`: `[batch, c, h, w]`
    /// - `t`: `[batch]`
    pub fn sample(&self, x0: Tensor<4>, x1: Tensor<4>, t: Tensor<1>) -> PathSample {
        let [batch, ..] = x0.dims();
        let t = t.reshape([batch, 1, 1, 1]);
        let velocity = x1.clone() - x0.clone();
        let x_t = x0 + velocity.clone() * t;
        PathSample { x_t, velocity }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution};

    fn max_abs(t: Tensor<4>) -> f32 {
        t.abs().max().into_scalar()
    }

    #[test]
    fn noise_at_zero_data_at_one_and_a_constant_target() {
        let device = Device::default();
        let x0 = Tensor::<4>::random([3, 1, 5, 5], Distribution::Normal(0.0, 1.0), &device);
        let x1 = Tensor::<4>::random([3, 1, 5, 5], Distribution::Uniform(-1.0, 1.0), &device);

        let at0 = CondOtPath.sample(x0.clone(), x1.clone(), Tensor::zeros([3], &device));
        assert!(max_abs(at0.x_t - x0.clone()) < 1e-6);

        let at1 = CondOtPath.sample(x0.clone(), x1.clone(), Tensor::ones([3], &device));
        assert!(max_abs(at1.x_t - x1.clone()) < 1e-6);

        let t = Tensor::<1>::from_floats([0.25, 0.5, 0.9], &device);
        let mid = CondOtPath.sample(x0.clone(), x1.clone(), t);
        assert!(max_abs(mid.velocity - (x1.clone() - x0.clone())) < 1e-6);
        let expected = x1.clone().narrow(0, 1, 1) * 0.5 + x0.clone().narrow(0, 1, 1) * 0.5;
        assert!(max_abs(mid.x_t.narrow(0, 1, 1) - expected) < 1e-6);
    }

    #[test]
    fn schedule_weights_sum_to_one() {
        for t in [0.0, 0.3, 1.0] {
            assert_eq!(CondOtPath::alpha(t) + CondOtPath::sigma(t), 1.0);
        }
    }
}
