//! Scoring a set of labelled samples against the real data, in the classifier's feature
//! space: class accuracy, Fréchet distance, precision and recall, memorisation.
//!
//! What does not depend on the samples is a [`Reference`]: the test set's features, their
//! Gaussian and k-NN radii, and the memorisation threshold (the 1st percentile of the pixel
//! distances from each test image to its nearest training image). It is built once and can
//! be written to and read from a cache file.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::classifier::{embed, predict, Classifier};
use super::manifold::{precision_recall, Manifold, DEFAULT_K};
use super::nearest::{memorised_fraction, nearest_neighbours, percentile};
use super::{frechet_distance, EvalError, Features, Gaussian};
use crate::data::dataset::to_unit_range;
use crate::data::Dataset;

/// The percentile of test-to-train distances below which a sample counts as memorised.
pub const MEMORISATION_PERCENTILE: f64 = 1.0;

/// Everything about the real data that scoring needs.
pub struct Reference {
    /// Classifier features of the test set.
    pub test: Manifold,
    /// Their Gaussian.
    pub gaussian: Gaussian,
    /// Pixel distance below which a sample is called memorised.
    pub threshold: f64,
    /// Training pixels in `[0, 1]`, one row per image.
    pub train_pixels: Features,
}

/// The scores of one set of samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Samples scored.
    pub n: usize,
    /// Fraction classified as the label asked for.
    pub accuracy: f64,
    /// Accuracy per class (NaN where a class has no sample).
    pub per_class: Vec<f64>,
    /// Fréchet distance to the test set in feature space.
    pub fid: f64,
    /// Fraction of samples inside the test set's k-NN manifold.
    pub precision: f64,
    /// Fraction of test images inside the samples' k-NN manifold.
    pub recall: f64,
    /// Fraction of samples closer to a training image than the memorisation threshold.
    pub memorised: f64,
}

impl Reference {
    /// Computes the reference of `train` and `test` under `net`.
    pub fn build(
        net: &Classifier,
        train: &Dataset,
        test: &Dataset,
        device: &Device,
    ) -> Result<Self, EvalError> {
        let features = features_of(net, &test.images, test.rows, device)?;
        let gaussian = features.gaussian()?;
        let test_manifold = Manifold::new(features, DEFAULT_K)?;
        let train_pixels = unit_pixels(&train.images, train.pixels())?;
        let test_pixels = unit_pixels(&test.images, test.pixels())?;
        let nearest = nearest_neighbours(&test_pixels, &train_pixels)?;
        let distances: Vec<f32> = nearest.iter().map(|n| n.distance).collect();
        let threshold = percentile(&distances, MEMORISATION_PERCENTILE)?;
        Ok(Self {
            test: test_manifold,
            gaussian,
            threshold,
            train_pixels,
        })
    }

    /// Scores byte images (`labels.len() × side × side`) that were asked to show `labels`.
    pub fn score(
        &self,
        net: &Classifier,
        images: &[u8],
        labels: &[u8],
        side: usize,
        device: &Device,
    ) -> Result<Scores, EvalError> {
        let predicted = predict(net, images, side, device);
        let mut right = [0usize; 10];
        let mut total = [0usize; 10];
        for (&p, &y) in predicted.iter().zip(labels) {
            total[y as usize] += 1;
            right[y as usize] += usize::from(p == y);
        }
        let per_class = (0..10).map(|c| right[c] as f64 / total[c] as f64).collect();
        let accuracy = right.iter().sum::<usize>() as f64 / labels.len().max(1) as f64;

        let features = features_of(net, images, side, device)?;
        let fid = frechet_distance(&self.gaussian, &features.gaussian()?)?;
        let pr = precision_recall(&self.test, &features)?;

        let memorised = self.memorised(images, side)?;
        Ok(Scores {
            n: labels.len(),
            accuracy,
            per_class,
            fid,
            precision: pr.precision,
            recall: pr.recall,
            memorised,
        })
    }
}

impl Reference {
    /// The fraction of byte images closer to some training image than the threshold.
    pub fn memorised(&self, images: &[u8], side: usize) -> Result<f64, EvalError> {
        let pixels = unit_pixels(images, side * side)?;
        let nearest = nearest_neighbours(&pixels, &self.train_pixels)?;
        let distances: Vec<f32> = nearest.iter().map(|n| n.distance).collect();
        memorised_fraction(&distances, self.threshold as f32)
    }
}

fn features_of(
    net: &Classifier,
    images: &[u8],
    side: usize,
    device: &Device,
) -> Result<Features, EvalError> {
    let values = embed(net, images, side, device);
    let dim = net.config().features;
    Features::new(values.len() / dim, dim, values)
}

/// Pixels in `[0, 1]` (the memorisation distances are measured on this scale).
fn unit_pixels(images: &[u8], pixels: usize) -> Result<Features, EvalError> {
    let values: Vec<f32> = images
        .iter()
        .map(|&p| (to_unit_range(p) + 1.0) / 2.0)
        .collect();
    Features::new(images.len() / pixels.max(1), pixels, values)
}

/// The cached part of a [`Reference`]: the test features, their radii and the threshold.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CacheFile {
    key: String,
    threshold: f64,
    rows: usize,
    dim: usize,
    features: Vec<f32>,
    squared_radii: Vec<f32>,
}

/// Where the reference for `key` is cached inside `dir`.
pub fn cache_path(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("reference-{}.json", &key[..key.len().min(16)]))
}

impl Reference {
    /// Reads a cached reference for `key`, if one is there and was written for that key.
    pub fn load_cached(path: &Path, key: &str, train: &Dataset) -> Option<Self> {
        let bytes = std::fs::read(path).ok()?;
        let cache: CacheFile = serde_json::from_slice(&bytes).ok()?;
        if cache.key != key {
            return None;
        }
        let features = Features::new(cache.rows, cache.dim, cache.features).ok()?;
        let gaussian = features.gaussian().ok()?;
        let test = Manifold::from_squared_radii(features, DEFAULT_K, cache.squared_radii).ok()?;
        let train_pixels = unit_pixels(&train.images, train.pixels()).ok()?;
        Some(Self {
            test,
            gaussian,
            threshold: cache.threshold,
            train_pixels,
        })
    }

    /// Writes the cacheable part for `key`, atomically.
    pub fn save_cache(&self, path: &Path, key: &str) -> Result<(), crate::atomic::WriteError> {
        let points = self.test.points();
        let cache = CacheFile {
            key: key.to_string(),
            threshold: self.threshold,
            rows: points.rows(),
            dim: points.dim(),
            features: points.values().to_vec(),
            squared_radii: self.test.squared_radii().to_vec(),
        };
        let json = serde_json::to_vec(&cache).expect("the cache serialises");
        crate::atomic::write(path, &json)
    }
}
