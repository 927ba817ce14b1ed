//! Training: the flow-matching loss with label dropout, AdamW, the weight EMA, checkpoints.

pub mod checkpoint;
pub mod config;
pub mod ema;
pub mod loss;
pub mod trainer;

pub use checkpoint::{Checkpoint, CheckpointError};
pub use config::{Budget, LrSchedule, TimeSampling, TrainConfig};
pub use trainer::{Outcome, TrainError, Trainer};
