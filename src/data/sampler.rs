//! Shuffled epochs over a dataset, reproducible from a seed and resumable from a position.
//!
//! Epoch `e` visits the indices in the order of a Fisher–Yates shuffle seeded by
//! `(seed, e)`, so the sampler's whole state is three integers and a resumed run draws the
//! same batches as an uninterrupted one.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

/// Where a sampler stands: enough to rebuild it exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamplerState {
    /// Seed of the shuffles.
    pub seed: u64,
    /// Current epoch, from 0.
    pub epoch: u64,
    /// Next position within the epoch's order.
    pub position: usize,
}

/// Draws batches of indices from shuffled epochs.
#[derive(Debug, Clone)]
pub struct EpochSampler {
    len: usize,
    state: SamplerState,
    order: Vec<usize>,
}

impl EpochSampler {
    /// A sampler over `len` items, at the start of epoch 0.
    ///
    /// # Panics
    /// If `len` is zero: a dataset without items cannot be sampled.
    pub fn new(len: usize, seed: u64) -> Self {
        Self::resume(
            len,
            SamplerState {
                seed,
                epoch: 0,
                position: 0,
            },
        )
    }

    /// A sampler over `len` items at a saved state.
    pub fn resume(len: usize, state: SamplerState) -> Self {
        assert!(len > 0, "a sampler needs at least one item");
        let order = shuffled(len, state.seed, state.epoch);
        Self { len, state, order }
    }

    /// The state to save.
    pub fn state(&self) -> SamplerState {
        self.state
    }

    /// The next `batch` indices. A batch that would cross an epoch's end is completed from the
    /// next epoch, so every batch has the requested size.
    pub fn next_batch(&mut self, batch: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(batch);
        while out.len() < batch {
            if self.state.position == self.len {
                self.state.epoch += 1;
                self.state.position = 0;
                self.order = shuffled(self.len, self.state.seed, self.state.epoch);
            }
            let take = (batch - out.len()).min(self.len - self.state.position);
            let at = self.state.position;
            out.extend_from_slice(&self.order[at..at + take]);
            self.state.position += take;
        }
        out
    }
}

fn shuffled(len: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mixed = seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(mixed));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_visits_every_index_once() {
        let mut sampler = EpochSampler::new(10, 7);
        let mut seen = sampler.next_batch(4);
        seen.extend(sampler.next_batch(6));
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn resuming_draws_the_same_batches() {
        let mut a = EpochSampler::new(13, 3);
        a.next_batch(5);
        a.next_batch(5);
        let mut b = EpochSampler::resume(13, a.state());
        for _ in 0..4 {
            assert_eq!(a.next_batch(5), b.next_batch(5));
        }
    }

    #[test]
    fn epochs_differ() {
        let mut sampler = EpochSampler::new(50, 1);
        assert_ne!(sampler.next_batch(50), sampler.next_batch(50));
    }
}
