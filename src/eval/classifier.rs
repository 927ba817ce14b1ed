//! The evaluator's classifier: a small convolutional network for 28×28 digits. Its logits
//! score whether a sample shows the digit it was asked for; its penultimate layer (128
//! numbers after ReLU) is the feature space of the Fréchet distance and of precision and
//! recall, in the way FID uses an Inception network's pool features.
//!
//! Three 3×3 convolutions, each followed by BatchNorm and ReLU (the first two by 2×2 max
//! pooling): 28×28×1 → 14×14×32 → 7×7×64 → 7×7×64, then a linear layer to the features and
//! one to the ten classes.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::PaddingConfig2d;
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::data::dataset::to_unit_range;

/// The shape of the classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    /// Channels of the three convolutions.
    pub channels: [usize; 3],
    /// Width of the feature layer.
    pub features: usize,
    /// Dropout before the class layer, in training only.
    pub dropout: f64,
    /// Side of the square images.
    pub image_size: usize,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        Self {
            channels: [32, 64, 64],
            features: 128,
            dropout: 0.3,
            image_size: 28,
        }
    }
}

/// A convolution with BatchNorm and ReLU.
#[derive(Module, Debug)]
pub struct ConvUnit {
    conv: Conv2d,
    norm: BatchNorm,
}

impl ConvUnit {
    fn new(from: usize, to: usize, device: &Device) -> Self {
        Self {
            conv: Conv2dConfig::new([from, to], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
            norm: BatchNormConfig::new(to).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.norm.forward(self.conv.forward(x)))
    }
}

/// The classifier network.
#[derive(Module, Debug)]
pub struct Classifier {
    units: Vec<ConvUnit>,
    pool: MaxPool2d,
    features: Linear,
    dropout: Dropout,
    classes: Linear,
    #[module(skip)]
    config: ClassifierConfig,
}

impl ClassifierConfig {
    /// Checks that the image halves twice evenly and that widths are positive.
    pub fn validate(&self) -> Result<(), String> {
        if self.channels.contains(&0) || self.features == 0 {
            return Err(format!(
                "classifier widths must be positive, found channels {:?} and {} features",
                self.channels, self.features
            ));
        }
        if self.image_size == 0 || self.image_size % 4 != 0 {
            return Err(format!(
                "the classifier halves its input twice: image side must be a multiple of 4, \
                 found {}",
                self.image_size
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout must be in [0, 1), found {}", self.dropout));
        }
        Ok(())
    }

    /// Builds the network with fresh weights.
    ///
    /// # Panics
    /// If the configuration does not [`validate`](Self::validate).
    pub fn init(&self, device: &Device) -> Classifier {
        crate::seed::exclusive(|| self.build(device))
    }

    /// Like [`init`](Self::init), with the device's generator seeded with `seed` first.
    pub fn init_seeded(&self, seed: u64, device: &Device) -> Classifier {
        crate::seed::seeded(device, seed, || self.build(device))
    }

    fn build(&self, device: &Device) -> Classifier {
        self.validate()
            .expect("classifier configurations are validated before init");
        let [a, b, c] = self.channels;
        let side = self.image_size / 4;
        Classifier {
            units: vec![
                ConvUnit::new(1, a, device),
                ConvUnit::new(a, b, device),
                ConvUnit::new(b, c, device),
            ],
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            features: LinearConfig::new(c * side * side, self.features).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            classes: LinearConfig::new(self.features, 10).init(device),
            config: self.clone(),
        }
    }
}

impl Classifier {
    /// The configuration the network was built from.
    pub fn config(&self) -> &ClassifierConfig {
        &self.config
    }

    /// The penultimate-layer features.
    ///
    /// # Shapes
    /// - `x`: `[batch, 1, side, side]`, pixels in `[-1, 1]`
    /// - output: `[batch, features]`
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.pool.forward(self.units[0].forward(x));
        let x = self.pool.forward(self.units[1].forward(x));
        let x = self.units[2].forward(x);
        let [batch, c, h, w] = x.dims();
        relu(self.features.forward(x.reshape([batch, c * h * w])))
    }

    /// Class logits from features (dropout applies when training).
    pub fn logits_from(&self, features: Tensor<2>) -> Tensor<2> {
        self.classes.forward(self.dropout.forward(features))
    }

    /// Class logits, `[batch, 10]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.logits_from(self.features(x))
    }
}

/// Class predictions for byte images (`n × side × side`), in batches.
pub fn predict(net: &Classifier, images: &[u8], side: usize, device: &Device) -> Vec<u8> {
    let mut predictions = Vec::with_capacity(images.len() / (side * side));
    for chunk in images.chunks(CHUNK * side * side) {
        let logits = net.forward(to_tensor(chunk, side, device));
        let best = logits
            .argmax(1)
            .try_into_vec_as::<i64>()
            .expect("int tensor");
        predictions.extend(best.into_iter().map(|c| c as u8));
    }
    predictions
}

/// Penultimate-layer features for byte images, row-major `n × features`.
pub fn embed(net: &Classifier, images: &[u8], side: usize, device: &Device) -> Vec<f32> {
    let mut features = Vec::new();
    for chunk in images.chunks(CHUNK * side * side) {
        let f = net.features(to_tensor(chunk, side, device));
        features.extend(f.try_into_vec_as::<f32>().expect("float tensor"));
    }
    features
}

const CHUNK: usize = 500;

fn to_tensor(bytes: &[u8], side: usize, device: &Device) -> Tensor<4> {
    let n = bytes.len() / (side * side);
    let values: Vec<f32> = bytes.iter().map(|&p| to_unit_range(p)).collect();
    Tensor::<4>::from_data(TensorData::new(values, [n, 1, side, side]), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::trainable_params;

    #[test]
    fn features_and_logits_have_their_shapes() {
        let device = Device::default();
        let net = ClassifierConfig::default().init(&device);
        let x = Tensor::<4>::zeros([3, 1, 28, 28], &device);
        assert_eq!(net.features(x.clone()).dims(), [3, 128]);
        assert_eq!(net.forward(x).dims(), [3, 10]);
        assert!(trainable_params(&net) < 500_000);
    }

    #[test]
    fn sides_that_do_not_halve_twice_are_refused() {
        let config = ClassifierConfig {
            image_size: 30,
            ..Default::default()
        };
        assert!(config.validate().is_err());
    }
}
