//! Data: IDX files, MNIST-format datasets and their shuffled epochs.

pub mod dataset;
pub mod idx;
pub mod sampler;

pub use dataset::{Dataset, DatasetError, Split};
pub use sampler::{EpochSampler, SamplerState};
