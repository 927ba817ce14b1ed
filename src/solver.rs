//! ODE solvers for `dx/dt = v(x, t)` from noise at `t = 0` to data at `t = 1`. A solver
//! integrates any [`VelocityField`] over a time grid and knows nothing of labels or
//! networks.

use burn::tensor::Tensor;

/// A time-dependent vector field over image batches.
pub trait VelocityField {
    /// `v(x, t)`; `x` is `[batch, c, h, w]`.
    fn velocity(&mut self, x: Tensor<4>, t: f64) -> Tensor<4>;

    /// Number of evaluations so far (NFE).
    fn evaluations(&self) -> u64;
}

/// A grid of `steps + 1` uniformly spaced times from 0 to 1.
pub fn uniform_grid(steps: usize) -> Vec<f64> {
    (0..=steps).map(|i| i as f64 / steps as f64).collect()
}

/// The explicit Euler method: `x ← x + h · v(x, t)` at each grid interval.
///
/// `on_step` sees the state after each step with its time (for trajectory pictures).
pub fn euler(
    field: &mut dyn VelocityField,
    mut x: Tensor<4>,
    grid: &[f64],
    mut on_step: impl FnMut(&Tensor<4>, f64),
) -> Tensor<4> {
    for pair in grid.windows(2) {
        let (t, next) = (pair[0], pair[1]);
        x = x.clone() + field.velocity(x, t) * (next - t);
        on_step(&x, next);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution};

    /// The conditional CondOT velocity towards a fixed point `x1`: `(x1 − x) / (1 − t)`.
    /// Its trajectories are straight lines, which Euler follows exactly.
    struct TowardsPoint {
        x1: Tensor<4>,
        calls: u64,
    }

    impl VelocityField for TowardsPoint {
        fn velocity(&mut self, x: Tensor<4>, t: f64) -> Tensor<4> {
            self.calls += 1;
            (self.x1.clone() - x) / (1.0 - t)
        }

        fn evaluations(&self) -> u64 {
            self.calls
        }
    }

    #[test]
    fn euler_follows_straight_conditional_paths_exactly() {
        let device = Device::default();
        let x0 = Tensor::<4>::random([3, 1, 4, 4], Distribution::Normal(0.0, 1.0), &device);
        let x1 = Tensor::<4>::random([3, 1, 4, 4], Distribution::Normal(0.0, 1.0), &device);
        let mut field = TowardsPoint {
            x1: x1.clone(),
            calls: 0,
        };
        let end = euler(&mut field, x0, &uniform_grid(7), |_, _| {});
        let err: f32 = (end - x1).abs().max().into_scalar();
        assert!(err < 1e-5, "end point off by {err}");
        assert_eq!(field.evaluations(), 7);
    }

    #[test]
    fn uniform_grid_spans_zero_to_one() {
        let grid = uniform_grid(4);
        assert_eq!(grid, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    }
}
