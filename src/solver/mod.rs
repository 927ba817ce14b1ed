//! ODE solvers for `dx/dt = v(x, t)` from noise at `t = 0` to data at `t = 1`.
//!
//! A solver integrates any [`VelocityField`] over a [`TimeGrid`] and knows nothing of labels
//! or networks. Fixed-step methods: Euler (order 1), the explicit midpoint rule and Heun's
//! method (order 2), the classic Runge–Kutta method (order 4). Adaptive: Dormand–Prince
//! 5(4) with relative and absolute tolerances and a cap on evaluations (Dormand & Prince,
//! 1980). NFE counts evaluations of the field.

mod adaptive;
pub mod grid;
pub mod state;

pub use grid::TimeGrid;
pub use state::State;

use serde::{Deserialize, Serialize};

/// A time-dependent vector field.
pub trait VelocityField<S> {
    /// `v(x, t)`.
    fn velocity(&mut self, x: &S, t: f64) -> S;
}

/// An integration method.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Solver {
    /// `x ← x + h·v(x, t)`; 1 evaluation a step.
    Euler,
    /// `x ← x + h·v(x + h/2·v(x, t), t + h/2)`; 2 evaluations a step.
    Midpoint,
    /// Euler predictor, trapezoidal corrector; 2 evaluations a step.
    Heun,
    /// The classic fourth-order Runge–Kutta method; 4 evaluations a step.
    Rk4,
    /// Dormand–Prince 5(4) with step-size control; the grid only gives its end points.
    Dopri5 {
        /// Relative tolerance.
        rtol: f64,
        /// Absolute tolerance.
        atol: f64,
        /// Evaluations allowed before giving up.
        max_nfe: u64,
    },
}

impl Solver {
    /// Evaluations per step of a fixed-step method (`None` for the adaptive one).
    pub fn evaluations_per_step(&self) -> Option<u64> {
        match self {
            Solver::Euler => Some(1),
            Solver::Midpoint | Solver::Heun => Some(2),
            Solver::Rk4 => Some(4),
            Solver::Dopri5 { .. } => None,
        }
    }

    /// The fixed-step method called `name` (`euler`, `midpoint`, `heun`, `rk4`).
    pub fn fixed_step(name: &str) -> Option<Self> {
        match name {
            "euler" => Some(Solver::Euler),
            "midpoint" => Some(Solver::Midpoint),
            "heun" => Some(Solver::Heun),
            "rk4" => Some(Solver::Rk4),
            _ => None,
        }
    }

    /// The method's short name.
    pub fn name(&self) -> &'static str {
        match self {
            Solver::Euler => "euler",
            Solver::Midpoint => "midpoint",
            Solver::Heun => "heun",
            Solver::Rk4 => "rk4",
            Solver::Dopri5 { .. } => "dopri5",
        }
    }
}

/// What an integration spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SolveStats {
    /// Evaluations of the field.
    pub nfe: u64,
    /// Accepted steps.
    pub steps: u64,
    /// Rejected steps (adaptive only).
    pub rejected: u64,
}

/// Why an integration failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SolveError {
    /// The adaptive solver spent its evaluation budget before reaching the end.
    #[error("dopri5 reached its cap of {max_nfe} evaluations at t = {t:.4} before t = 1")]
    NfeCap {
        /// The cap.
        max_nfe: u64,
        /// Where it stopped.
        t: f64,
    },
    /// The grid is not increasing or has fewer than two times.
    #[error("the time grid must increase and hold at least two times")]
    BadGrid,
}

/// Integrates `field` from `x` at `grid[0]` to `grid[last]`, calling `on_step` after every
/// accepted step with the state and its time.
pub fn integrate<S: State>(
    solver: Solver,
    field: &mut dyn VelocityField<S>,
    mut x: S,
    grid: &[f64],
    mut on_step: impl FnMut(&S, f64),
) -> Result<(S, SolveStats), SolveError> {
    if grid.len() < 2 || grid.windows(2).any(|w| w[1] <= w[0]) {
        return Err(SolveError::BadGrid);
    }
    if let Solver::Dopri5 {
        rtol,
        atol,
        max_nfe,
    } = solver
    {
        let (t0, t1) = (grid[0], grid[grid.len() - 1]);
        return adaptive::dopri5(field, x, t0, t1, rtol, atol, max_nfe, &mut on_step);
    }
    let mut stats = SolveStats::default();
    for w in grid.windows(2) {
        let (t, h) = (w[0], w[1] - w[0]);
        x = fixed_step(solver, field, &x, t, h);
        stats.nfe += solver.evaluations_per_step().expect("fixed-step method");
        stats.steps += 1;
        on_step(&x, w[1]);
    }
    Ok((x, stats))
}

fn fixed_step<S: State>(
    solver: Solver,
    field: &mut dyn VelocityField<S>,
    x: &S,
    t: f64,
    h: f64,
) -> S {
    match solver {
        Solver::Euler => {
            let k1 = field.velocity(x, t);
            x.add_scaled(&[(h, &k1)])
        }
        Solver::Midpoint => {
            let k1 = field.velocity(x, t);
            let k2 = field.velocity(&x.add_scaled(&[(h / 2.0, &k1)]), t + h / 2.0);
            x.add_scaled(&[(h, &k2)])
        }
        Solver::Heun => {
            let k1 = field.velocity(x, t);
            let k2 = field.velocity(&x.add_scaled(&[(h, &k1)]), t + h);
            x.add_scaled(&[(h / 2.0, &k1), (h / 2.0, &k2)])
        }
        Solver::Rk4 => {
            let k1 = field.velocity(x, t);
            let k2 = field.velocity(&x.add_scaled(&[(h / 2.0, &k1)]), t + h / 2.0);
            let k3 = field.velocity(&x.add_scaled(&[(h / 2.0, &k2)]), t + h / 2.0);
            let k4 = field.velocity(&x.add_scaled(&[(h, &k3)]), t + h);
            let sixth = h / 6.0;
            x.add_scaled(&[
                (sixth, &k1),
                (2.0 * sixth, &k2),
                (2.0 * sixth, &k3),
                (sixth, &k4),
            ])
        }
        Solver::Dopri5 { .. } => unreachable!("the adaptive solver does not take fixed steps"),
    }
}

/// A grid of `steps + 1` uniformly spaced times from 0 to 1.
pub fn uniform_grid(steps: usize) -> Vec<f64> {
    TimeGrid::Uniform.times(steps)
}

#[cfg(test)]
mod tests;
