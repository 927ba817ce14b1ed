//! Training the evaluator's classifier: cross-entropy with AdamW, a warm-up then cosine
//! learning rate, and light augmentation (each image shifted by up to two pixels in each
//! direction), on shuffled epochs. Every random draw comes from the seed.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::classifier::{predict, Classifier, ClassifierConfig};
use crate::data::dataset::to_unit_range;
use crate::data::{Dataset, EpochSampler};

/// How the classifier is trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitSettings {
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Largest shift of the augmentation, in pixels (0 for none).
    pub max_shift: usize,
    /// Seed of weights, order and augmentation.
    pub seed: u64,
}

impl Default for FitSettings {
    fn default() -> Self {
        Self {
            epochs: 4,
            batch_size: 128,
            learning_rate: 2e-3,
            max_shift: 2,
            seed: 0,
        }
    }
}

/// What one epoch ended with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochReport {
    /// Epochs done.
    pub epoch: usize,
    /// Mean training loss over the epoch.
    pub loss: f64,
    /// Accuracy on the test set after the epoch.
    pub test_accuracy: f64,
}

const WARMUP: usize = 100;

/// Trains a classifier of shape `config` on `train`, reporting test accuracy after each
/// epoch. Returns the network ready for inference.
pub fn fit(
    config: &ClassifierConfig,
    settings: &FitSettings,
    train: &Dataset,
    test: &Dataset,
    device: &Device,
    mut report: impl FnMut(&EpochReport),
) -> Classifier {
    let autodiff = device.clone().autodiff();
    let mut net = config.init_seeded(settings.seed, &autodiff);
    let mut optim = AdamWConfig::new().with_weight_decay(1e-4).init();
    let loss_fn = CrossEntropyLossConfig::new().init(&autodiff);
    let mut sampler = EpochSampler::new(train.len(), settings.seed);
    let mut rng = rand::rngs::StdRng::seed_from_u64(settings.seed ^ 0x4155_474d);
    let steps_per_epoch = train.len().div_ceil(settings.batch_size);
    let total = steps_per_epoch * settings.epochs;
    let side = train.rows;

    for epoch in 1..=settings.epochs {
        let mut sum = 0.0;
        for i in 0..steps_per_epoch {
            let step = (epoch - 1) * steps_per_epoch + i;
            let batch = sampler.next_batch(settings.batch_size);
            let pixels = shifted_batch(train, &batch, settings.max_shift, &mut rng);
            let x = Tensor::<4>::from_data(
                TensorData::new(pixels, [batch.len(), 1, side, side]),
                &autodiff,
            );
            let labels: Vec<i64> = batch.iter().map(|&i| train.labels[i] as i64).collect();
            let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [batch.len()]), &autodiff);

            let loss = loss_fn.forward(net.forward(x), y);
            sum += loss.clone().into_scalar::<f32>() as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            let lr = learning_rate(settings.learning_rate, step, total);
            net = optim.step(lr, net, grads);
        }
        let test_accuracy = accuracy(&net.valid(), test, device);
        report(&EpochReport {
            epoch,
            loss: sum / steps_per_epoch as f64,
            test_accuracy,
        });
    }
    net.valid()
}

/// Linear warm-up over the first steps, then a cosine decay to zero at `total`.
fn learning_rate(peak: f64, step: usize, total: usize) -> f64 {
    if step < WARMUP {
        return peak * (step + 1) as f64 / WARMUP as f64;
    }
    let progress = (step - WARMUP) as f64 / (total.saturating_sub(WARMUP)).max(1) as f64;
    peak * 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
}

/// The images of `batch` in `[-1, 1]`, each moved by a random whole-pixel shift of at most
/// `max_shift` in each direction; uncovered pixels are background (−1).
fn shifted_batch(
    data: &Dataset,
    batch: &[usize],
    max_shift: usize,
    rng: &mut impl Rng,
) -> Vec<f32> {
    let (h, w) = (data.rows, data.cols);
    let m = max_shift as i64;
    let mut out = vec![-1.0f32; batch.len() * h * w];
    for (slot, &i) in out.chunks_mut(h * w).zip(batch) {
        let (dy, dx) = (rng.random_range(-m..=m), rng.random_range(-m..=m));
        let image = data.image(i);
        for y in 0..h as i64 {
            let sy = y - dy;
            if !(0..h as i64).contains(&sy) {
                continue;
            }
            for x in 0..w as i64 {
                let sx = x - dx;
                if (0..w as i64).contains(&sx) {
                    slot[(y * w as i64 + x) as usize] =
                        to_unit_range(image[(sy * w as i64 + sx) as usize]);
                }
            }
        }
    }
    out
}

/// The fraction of `data` the classifier labels correctly.
pub fn accuracy(net: &Classifier, data: &Dataset, device: &Device) -> f64 {
    let predicted = predict(net, &data.images, data.rows, device);
    let right = predicted
        .iter()
        .zip(&data.labels)
        .filter(|(p, y)| p == y)
        .count();
    right as f64 / data.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_warms_up_then_decays_to_zero() {
        assert!(learning_rate(1.0, 0, 1000) < 0.02);
        assert!((learning_rate(1.0, WARMUP, 1000) - 1.0).abs() < 1e-12);
        assert!(learning_rate(1.0, 999, 1000) < 1e-4);
    }

    #[test]
    fn a_zero_shift_keeps_the_image_and_a_shift_moves_it() {
        let mut images = vec![0u8; 16];
        images[5] = 255; // (1, 1) of a 4×4 image
        let data = Dataset {
            images,
            labels: vec![3],
            rows: 4,
            cols: 4,
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let same = shifted_batch(&data, &[0], 0, &mut rng);
        assert_eq!(same[5], 1.0);
        assert_eq!(same.iter().filter(|&&v| v == 1.0).count(), 1);
        let moved = shifted_batch(&data, &[0], 1, &mut rng);
        assert_eq!(moved.iter().filter(|&&v| v == 1.0).count(), 1);
    }
}
