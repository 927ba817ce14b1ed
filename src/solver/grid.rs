//! Time grids from noise (`t = 0`) to data (`t = 1`).

use serde::{Deserialize, Serialize};

/// How the `steps + 1` times of a fixed-step solve are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeGrid {
    /// `tᵢ = i / n`.
    Uniform,
    /// `tᵢ = 1 − (1 − i/n)²`: steps shrink linearly towards `t = 1`, where the digits'
    /// fine detail is decided.
    DenseEnd,
}

impl TimeGrid {
    /// The grid of `steps` intervals, starting at 0 and ending exactly at 1.
    ///
    /// # Panics
    /// If `steps` is zero (validated at the command line).
    pub fn times(self, steps: usize) -> Vec<f64> {
        assert!(steps > 0, "a time grid needs at least one step");
        (0..=steps)
            .map(|i| {
                let s = i as f64 / steps as f64;
                match self {
                    TimeGrid::Uniform => s,
                    TimeGrid::DenseEnd => 1.0 - (1.0 - s) * (1.0 - s),
                }
            })
            .collect()
    }

    /// Parses `uniform` or `dense-end`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "uniform" => Some(TimeGrid::Uniform),
            "dense-end" => Some(TimeGrid::DenseEnd),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_run_from_zero_to_one_increasing() {
        for grid in [TimeGrid::Uniform, TimeGrid::DenseEnd] {
            let t = grid.times(8);
            assert_eq!((t[0], t[8]), (0.0, 1.0));
            assert!(t.windows(2).all(|w| w[1] > w[0]));
        }
    }

    #[test]
    fn dense_end_takes_its_smallest_step_last() {
        let t = TimeGrid::DenseEnd.times(10);
        let steps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(steps.windows(2).all(|w| w[1] < w[0]));
    }
}
