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
