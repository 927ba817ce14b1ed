//! Solvers on fields with closed-form solutions, in `f64` so that rounding does not hide
//! their order of convergence.

use super::*;

/// `dx/dt = a·x`, solved by `x(t) = x(0)·e^(a t)`.
struct Exponential(f64);

impl VelocityField<f64> for Exponential {
    fn velocity(&mut self, x: &f64, _t: f64) -> f64 {
        self.0 * x
    }
}

/// `dx/dt = 5 t⁴`, solved by `x(t) = x(0) + t⁵`. RK4 integrates cubics exactly, so its
/// fourth-order error shows here where `3t²` would hide it.
struct Quartic;

impl VelocityField<f64> for Quartic {
    fn velocity(&mut self, _x: &f64, t: f64) -> f64 {
        5.0 * t.powi(4)
    }
}

/// `dx/dt = ω·cos(ω t)`, solved by `x(t) = x(0) + sin(ω t)`: harder for larger `ω`.
struct Oscillation(f64);

impl VelocityField<f64> for Oscillation {
    fn velocity(&mut self, _x: &f64, t: f64) -> f64 {
        self.0 * (self.0 * t).cos()
    }
}

fn error(solver: Solver, field: &mut dyn VelocityField<f64>, exact: f64, steps: usize) -> f64 {
    let (end, _) = integrate(solver, field, 1.0, &uniform_grid(steps), |_, _| {}).unwrap();
    (end - exact).abs()
}

/// `log2(err(h) / err(h/2))`, the observed order of convergence.
fn observed_order(solver: Solver, field: &mut dyn VelocityField<f64>, exact: f64) -> f64 {
    let coarse = error(solver, field, exact, 32);
    let fine = error(solver, field, exact, 64);
    (coarse / fine).log2()
}

#[test]
fn fixed_step_solvers_converge_at_their_orders() {
    let e = 1f64.exp();
    for (solver, order) in [
        (Solver::Euler, 1.0),
        (Solver::Midpoint, 2.0),
        (Solver::Heun, 2.0),
        (Solver::Rk4, 4.0),
    ] {
        let observed = observed_order(solver, &mut Exponential(1.0), e);
        assert!(
            (observed - order).abs() < 0.1,
            "{}: order {observed:.3}",
            solver.name()
        );
    }
    let rk4 = observed_order(Solver::Rk4, &mut Quartic, 2.0);
    assert!((rk4 - 4.0).abs() < 0.1, "rk4 on 5t^4: order {rk4:.3}");
}

#[test]
fn fixed_step_solvers_land_within_their_error_bounds() {
    // For x' = x on [0, 1] with h = 1/64, the global errors are about e·h/2 for Euler,
    // e·h²/6 for the second-order methods and e·h⁴/120 for RK4; allow a factor of two.
    let (e, h) = (1f64.exp(), 1.0 / 64.0);
    let bounds = [
        (Solver::Euler, e * h),
        (Solver::Midpoint, e * h * h / 3.0),
        (Solver::Heun, e * h * h / 3.0),
        (Solver::Rk4, e * h.powi(4) / 60.0),
    ];
    for (solver, bound) in bounds {
        let err = error(solver, &mut Exponential(1.0), e, 64);
        assert!(
            err < bound,
            "{}: error {err:e} above {bound:e}",
            solver.name()
        );
    }
}

#[test]
fn evaluations_are_counted_per_method() {
    for solver in [Solver::Euler, Solver::Midpoint, Solver::Heun, Solver::Rk4] {
        let (_, stats) = integrate(
            solver,
            &mut Exponential(1.0),
            1.0,
            &uniform_grid(5),
            |_, _| {},
        )
        .unwrap();
        assert_eq!(stats.nfe, 5 * solver.evaluations_per_step().unwrap());
        assert_eq!(stats.steps, 5);
    }
}

#[test]
fn dopri5_meets_its_tolerance_and_spends_less_on_easier_fields() {
    let dopri = |rtol: f64| Solver::Dopri5 {
        rtol,
        atol: rtol,
        max_nfe: 100_000,
    };
    for rtol in [1e-4, 1e-7] {
        let e2 = 2f64.exp();
        let err = error(dopri(rtol), &mut Exponential(2.0), e2, 1);
        assert!(
            err < 10.0 * rtol * e2,
            "x' = 2x at rtol {rtol}: error {err:e}"
        );
        let err = error(dopri(rtol), &mut Quartic, 2.0, 1);
        assert!(
            err < 10.0 * rtol * 2.0,
            "x' = 5t^4 at rtol {rtol}: error {err:e}"
        );
    }
    let nfe = |omega: f64| {
        let mut field = Oscillation(omega);
        let (end, stats) = integrate(dopri(1e-6), &mut field, 0.0, &[0.0, 1.0], |_, _| {}).unwrap();
        assert!(
            (end - omega.sin()).abs() < 1e-4,
            "ω = {omega}: {end} vs {}",
            omega.sin()
        );
        stats.nfe
    };
    let (easy, hard) = (nfe(1.0), nfe(30.0));
    assert!(easy < hard, "easy field took {easy} NFE, hard one {hard}");
}

#[test]
fn dopri5_stops_at_its_evaluation_cap() {
    let capped = Solver::Dopri5 {
        rtol: 1e-10,
        atol: 1e-10,
        max_nfe: 20,
    };
    let err = integrate(capped, &mut Oscillation(50.0), 0.0, &[0.0, 1.0], |_, _| {}).unwrap_err();
    assert!(
        matches!(err, SolveError::NfeCap { max_nfe: 20, .. }),
        "{err}"
    );
}

#[test]
fn a_decreasing_grid_is_refused() {
    let err = integrate(
        Solver::Euler,
        &mut Quartic,
        0.0,
        &[0.0, 0.5, 0.4],
        |_, _| {},
    );
    assert_eq!(err.unwrap_err(), SolveError::BadGrid);
}

#[test]
fn euler_follows_straight_conditional_paths_exactly() {
    use burn::tensor::{Device, Distribution, Tensor};

    /// The conditional CondOT velocity towards a fixed point: `(x1 − x) / (1 − t)`.
    struct TowardsPoint(Tensor<4>);
    impl VelocityField<Tensor<4>> for TowardsPoint {
        fn velocity(&mut self, x: &Tensor<4>, t: f64) -> Tensor<4> {
            (self.0.clone() - x.clone()) / (1.0 - t)
        }
    }

    let device = Device::default();
    let x0 = Tensor::<4>::random([3, 1, 4, 4], Distribution::Normal(0.0, 1.0), &device);
    let x1 = Tensor::<4>::random([3, 1, 4, 4], Distribution::Normal(0.0, 1.0), &device);
    let grid = TimeGrid::DenseEnd.times(7);
    let (end, stats) = integrate(
        Solver::Euler,
        &mut TowardsPoint(x1.clone()),
        x0,
        &grid,
        |_, _| {},
    )
    .unwrap();
    let err: f32 = (end - x1).abs().max().into_scalar();
    assert!(err < 1e-5, "end point off by {err}");
    assert_eq!(stats.nfe, 7);
}
