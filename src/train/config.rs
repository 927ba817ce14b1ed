//! The settings of a training run, saved next to its weights so that every later command can
//! rebuild the model from the run alone.

use serde::{Deserialize, Serialize};

use crate::model::UNetConfig;

/// When a run stops.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// After this many optimiser steps in all.
    Steps(u64),
    /// After this many minutes of training in this invocation.
    Minutes(f64),
}

/// Optimiser steps of a run when no budget is given: about 10 minutes for the default
/// preset on a 2-core CPU, and a fixed count so that the run is the same on every machine.
pub const DEFAULT_STEPS: u64 = 7000;

/// How the learning rate moves after the warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// The peak rate until the end.
    #[default]
    Constant,
    /// Half a cosine from the peak down to a tenth of it at the last step of a step budget
    /// (a minutes budget has no known last step, so it stays constant there).
    Cosine,
}

/// How the training times `t` are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSampling {
    /// Uniform on `[0, 1)`.
    #[default]
    Uniform,
    /// `t = σ(n)` with `n ~ N(0, 1)` (Esser et al., 2024): more draws in the middle of the
    /// path, where the velocity is hardest to predict, fewer at its ends.
    LogitNormal,
}

impl TimeSampling {
    /// One draw.
    pub fn draw(self, rng: &mut impl rand::Rng) -> f32 {
        match self {
            Self::Uniform => rng.random::<f32>(),
            Self::LogitNormal => {
                let n: f32 = rng.sample(rand_distr::StandardNormal);
                1.0 / (1.0 + (-n).exp())
            }
        }
    }
}

/// Everything that determines a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Name of the model preset this came from (or `custom`).
    pub preset: String,
    /// The network.
    pub model: UNetConfig,
    /// Images per optimiser step.
    pub batch_size: usize,
    /// Peak learning rate of AdamW.
    pub learning_rate: f64,
    /// Linear warm-up of the learning rate over this many steps.
    pub warmup_steps: u64,
    /// The learning rate after the warm-up.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// How the times of the training batches are drawn.
    #[serde(default)]
    pub time_sampling: TimeSampling,
    /// Decoupled weight decay of AdamW.
    pub weight_decay: f64,
    /// Probability of replacing a label by "no label".
    pub label_dropout: f64,
    /// Target decay of the weight EMA.
    pub ema_decay: f64,
    /// When to stop.
    pub budget: Budget,
    /// Seed of weights, data order and every random draw.
    pub seed: u64,
    /// Held-out loss every this many steps.
    pub eval_every: u64,
    /// Test images in the fixed held-out subset.
    pub eval_images: usize,
    /// Checkpoint every this many steps (and always at the end).
    pub checkpoint_every: u64,
}

impl TrainConfig {
    /// The defaults for a model preset.
    pub fn for_preset(preset: &str, model: UNetConfig) -> Self {
        Self {
            preset: preset.to_string(),
            model,
            batch_size: 64,
            learning_rate: 2e-3,
            warmup_steps: 50,
            lr_schedule: LrSchedule::Constant,
            time_sampling: TimeSampling::Uniform,
            weight_decay: 1e-4,
            label_dropout: 0.1,
            ema_decay: 0.999,
            budget: Budget::Steps(DEFAULT_STEPS),
            seed: 0,
            eval_every: 100,
            eval_images: 1000,
            checkpoint_every: 200,
        }
    }

    /// The learning rate at `step`: linear warm-up, then the schedule.
    pub fn learning_rate_at(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.learning_rate * (step + 1) as f64 / self.warmup_steps as f64;
        }
        match (self.lr_schedule, self.budget) {
            (LrSchedule::Cosine, Budget::Steps(total)) if total > self.warmup_steps + 1 => {
                let span = (total - 1 - self.warmup_steps) as f64;
                let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
                let floor = 0.1 * self.learning_rate;
                floor
                    + (self.learning_rate - floor)
                        * 0.5
                        * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            _ => self.learning_rate,
        }
    }

    /// Checks ranges that the command line cannot express.
    pub fn validate(&self) -> Result<(), String> {
        self.model.validate()?;
        if self.batch_size == 0 {
            return Err("batch size must be at least 1".into());
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(format!(
                "learning rate must be positive, found {}",
                self.learning_rate
            ));
        }
        if !(0.0..1.0).contains(&self.label_dropout) {
            return Err(format!(
                "label dropout must be in [0, 1), found {}",
                self.label_dropout
            ));
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return Err(format!(
                "EMA decay must be in [0, 1), found {}",
                self.ema_decay
            ));
        }
        if self.eval_every == 0 || self.checkpoint_every == 0 {
            return Err("eval and checkpoint intervals must be at least 1 step".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_falls_from_the_peak_to_a_tenth_at_the_last_step() {
        let mut config = TrainConfig::for_preset("small", UNetConfig::small());
        config.budget = Budget::Steps(1050);
        config.lr_schedule = LrSchedule::Cosine;
        let peak = config.learning_rate;
        assert!(config.learning_rate_at(0) < peak / 10.0);
        assert!((config.learning_rate_at(50) - peak).abs() < 1e-12);
        assert!((config.learning_rate_at(1049) - 0.1 * peak).abs() < 1e-12);
        let (a, b) = (config.learning_rate_at(400), config.learning_rate_at(800));
        assert!(peak > a && a > b && b > 0.1 * peak);

        config.budget = Budget::Minutes(5.0);
        assert_eq!(config.learning_rate_at(1049), peak);
    }

    #[test]
    fn time_draws_follow_their_distribution() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        // σ(−1) and σ(1): the standard normal puts 15.87 % below −1 and as much above 1,
        // the uniform 26.89 % below σ(−1).
        let (low, high) = (1.0 / (1.0 + 1f32.exp()), 1.0 / (1.0 + (-1f32).exp()));
        let n = 200_000;
        let share = |sampling: TimeSampling, rng: &mut rand::rngs::StdRng| {
            let draws: Vec<f32> = (0..n).map(|_| sampling.draw(rng)).collect();
            assert!(draws.iter().all(|t| (0.0..1.0).contains(t)));
            let below = draws.iter().filter(|&&t| t < low).count() as f64 / n as f64;
            let above = draws.iter().filter(|&&t| t > high).count() as f64 / n as f64;
            (below, above)
        };
        let (below, above) = share(TimeSampling::LogitNormal, &mut rng);
        assert!((below - 0.1587).abs() < 0.004, "{below}");
        assert!((above - 0.1587).abs() < 0.004, "{above}");
        let (below, above) = share(TimeSampling::Uniform, &mut rng);
        assert!((below - 0.2689).abs() < 0.004, "{below}");
        assert!((above - 0.2689).abs() < 0.004, "{above}");
    }
}
