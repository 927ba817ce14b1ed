//! Classifier-free guidance (Ho & Salimans, 2022) as a velocity field.
//!
//! The guided velocity at scale `w` is
//!
//! ```text
//! ũ(x, t, y) = u(x, t, ∅) + w · (u(x, t, y) − u(x, t, ∅)),
//! ```
//!
//! so `w = 1` is the purely conditional velocity, `w = 0` the unconditional one, and `w > 1`
//! pushes samples further towards their class. The conditional and unconditional halves
//! are evaluated in one batched network pass; at `w = 0` or `w = 1` only the half that
//! matters is evaluated. With a guidance interval `[a, b]` (Kynkäänniemi et al., 2024) the
//! scale applies only for `t` in `[a, b]`; elsewhere the velocity is the conditional one.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::model::{UNet, NO_LABEL};
use crate::solver::VelocityField;

/// The guided velocity of a network for fixed labels.
pub struct Guided<'a> {
    model: &'a UNet,
    labels: Tensor<1, Int>,
    unlabelled: Tensor<1, Int>,
    scale: f64,
    interval: (f64, f64),
    device: Device,
    passes: u64,
    evaluations: u64,
}

impl<'a> Guided<'a> {
    /// Guidance of `model` towards `labels` (one per sample) at scale `scale`.
    pub fn new(model: &'a UNet, labels: &[u8], scale: f64, device: &Device) -> Self {
        let n = labels.len();
        let ys: Vec<i64> = labels.iter().map(|&y| y as i64).collect();
        Self {
            model,
            labels: Tensor::from_data(TensorData::new(ys, [n]), device),
            unlabelled: Tensor::from_data(TensorData::new(vec![NO_LABEL; n], [n]), device),
            scale,
            interval: (0.0, 1.0),
            device: device.clone(),
            passes: 0,
            evaluations: 0,
        }
    }

    /// Applies the scale only for `t` in `[from, to]`; the conditional velocity elsewhere.
    pub fn with_interval(mut self, from: f64, to: f64) -> Self {
        self.interval = (from, to);
        self
    }

    /// The scale in force at time `t`.
    pub fn scale_at(&self, t: f64) -> f64 {
        if (self.interval.0..=self.interval.1).contains(&t) {
            self.scale
        } else {
            1.0
        }
    }

    /// Guided-velocity evaluations so far (NFE).
    pub fn evaluations(&self) -> u64 {
        self.evaluations
    }

    /// Network passes spent, counted in units of one unguided batch: a guided evaluation
    /// costs 2, a purely conditional or unconditional one 1.
    pub fn network_passes(&self) -> u64 {
        self.passes
    }
}

/// Combines the two velocities with the guidance formula of this module.
pub fn combine(conditional: Tensor<4>, unconditional: Tensor<4>, scale: f64) -> Tensor<4> {
    unconditional.clone() + (conditional - unconditional) * scale
}

impl VelocityField<Tensor<4>> for Guided<'_> {
    fn velocity(&mut self, x: &Tensor<4>, t: f64) -> Tensor<4> {
        self.evaluations += 1;
        let scale = self.scale_at(t);
        let [n, ..] = x.dims();
        let time = |count: usize| Tensor::<1>::full([count], t as f32, &self.device);
        if scale == 1.0 || scale == 0.0 {
            self.passes += 1;
            let y = if scale == 1.0 {
                &self.labels
            } else {
                &self.unlabelled
            };
            return self.model.forward(x.clone(), time(n), y.clone());
        }
        self.passes += 2;
        let both = Tensor::cat(vec![x.clone(), x.clone()], 0);
        let ys = Tensor::cat(vec![self.labels.clone(), self.unlabelled.clone()], 0);
        let out = self.model.forward(both, time(2 * n), ys);
        let conditional = out.clone().narrow(0, 0, n);
        let unconditional = out.narrow(0, n, n);
        combine(conditional, unconditional, scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn scale_one_is_the_conditional_and_zero_the_unconditional_velocity() {
        let device = Device::default();
        let c = Tensor::<4>::from_floats([[[[1.0, -2.0]]]], &device);
        let u = Tensor::<4>::from_floats([[[[0.5, 4.0]]]], &device);
        assert_eq!(values(combine(c.clone(), u.clone(), 1.0)), vec![1.0, -2.0]);
        assert_eq!(values(combine(c.clone(), u.clone(), 0.0)), vec![0.5, 4.0]);
        assert_eq!(
            values(combine(c, u, 3.0)),
            vec![0.5 + 3.0 * 0.5, 4.0 + 3.0 * -6.0]
        );
    }

    #[test]
    fn the_batched_pass_equals_separate_passes() {
        let device = Device::default();
        let model = crate::model::UNetConfig::small().init(&device);
        let x = Tensor::<4>::random([2, 1, 28, 28], burn::tensor::Distribution::Default, &device);
        let labels = [4u8, 7];
        let guided = Guided::new(&model, &labels, 2.5, &device).velocity(&x, 0.3);
        let cond = Guided::new(&model, &labels, 1.0, &device).velocity(&x, 0.3);
        let uncond = Guided::new(&model, &labels, 0.0, &device).velocity(&x, 0.3);
        let expected = values(combine(cond, uncond, 2.5));
        for (a, b) in values(guided).iter().zip(&expected) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn outside_the_interval_the_velocity_is_exactly_the_conditional_one() {
        let device = Device::default();
        let model = crate::model::UNetConfig::small().init(&device);
        let x = Tensor::<4>::random([2, 1, 28, 28], burn::tensor::Distribution::Default, &device);
        let labels = [1u8, 8];
        let mut interval = Guided::new(&model, &labels, 4.0, &device).with_interval(0.2, 0.6);
        let mut conditional = Guided::new(&model, &labels, 1.0, &device);
        for t in [0.1, 0.7, 0.95] {
            let a = values(interval.velocity(&x, t));
            assert_eq!(a, values(conditional.velocity(&x, t)), "t = {t}");
        }
        assert_eq!(
            interval.network_passes(),
            3,
            "conditional-only steps cost one pass each"
        );
        let inside = values(interval.velocity(&x, 0.4));
        assert_ne!(inside, values(conditional.velocity(&x, 0.4)));
        assert_eq!(interval.network_passes(), 5);
    }
}
