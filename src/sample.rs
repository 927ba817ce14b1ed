//! Sampling: seeded noise → Euler over the guided velocity → images as bytes.

use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use crate::data::dataset::to_byte;
use crate::guidance::Guided;
use crate::model::UNet;
use crate::solver::{euler, uniform_grid};

/// How to draw samples.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleSettings {
    /// Guidance scale `w`.
    pub guidance: f64,
    /// Euler steps.
    pub steps: usize,
    /// Seed of the starting noise.
    pub seed: u64,
    /// Samples per network batch.
    pub batch_size: usize,
}

impl Default for SampleSettings {
    fn default() -> Self {
        Self {
            guidance: 3.0,
            steps: 100,
            seed: 0,
            batch_size: 256,
        }
    }
}

/// What a sampling run produced and spent.
#[derive(Debug, Clone)]
pub struct Samples {
    /// One `side × side` image per label, as bytes.
    pub images: Vec<Vec<u8>>,
    /// The labels asked for.
    pub labels: Vec<u8>,
    /// Guided-velocity evaluations per batch (NFE).
    pub nfe: u64,
    /// Network passes in units of one unguided batch, summed over batches.
    pub network_passes: u64,
}

/// Starting noise for `count` images, fixed by `seed` whatever the batch size.
pub fn noise(count: usize, pixels: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..count * pixels)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect()
}

/// Draws one image per label with the model's EMA or raw weights.
pub fn sample(model: &UNet, labels: &[u8], settings: &SampleSettings, device: &Device) -> Samples {
    let side = model.config().image_size;
    let pixels = side * side;
    let start = noise(labels.len(), pixels, settings.seed);
    let grid = uniform_grid(settings.steps);
    let mut images = Vec::with_capacity(labels.len());
    let (mut nfe, mut passes) = (0, 0);

    for (chunk, ys) in labels.chunks(settings.batch_size.max(1)).enumerate() {
        let at = chunk * settings.batch_size.max(1) * pixels;
        let x0 = start[at..at + ys.len() * pixels].to_vec();
        let x0 = Tensor::<4>::from_data(TensorData::new(x0, [ys.len(), 1, side, side]), device);
        let mut field = Guided::new(model, ys, settings.guidance, device);
        let x1 = euler(&mut field, x0, &grid, |_, _| {});
        nfe = crate::solver::VelocityField::evaluations(&field);
        passes += field.network_passes();
        let values = x1
            .try_into_vec_as::<f32>()
            .expect("samples are float tensors");
        images.extend(
            values
                .chunks(pixels)
                .map(|img| img.iter().map(|&v| to_byte(v)).collect()),
        );
    }
    Samples {
        images,
        labels: labels.to_vec(),
        nfe,
        network_passes: passes,
    }
}
