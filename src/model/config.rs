//! Configurations of the U-Net velocity field, with the two named presets.

use serde::{Deserialize, Serialize};

/// Which normalisation the residual blocks use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Norm {
    /// Batch statistics in training, running statistics in inference (the notebook's choice).
    Batch,
    /// Group normalisation with this many groups: a sample never depends on its batch.
    Group(usize),
}

/// How the decoder receives the encoder's features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Skips {
    /// The notebook's wiring: each level's down-sampled output is added to the decoder input
    /// of the same resolution, *before* up-sampling; the full-resolution features are never
    /// passed across.
    AfterDown,
    /// The usual U-Net wiring: each level's features before down-sampling are added after the
    /// decoder's up-sampling convolution, so full-resolution detail crosses over.
    BeforeDown,
}

/// How time and label reach the residual blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Conditioning {
    /// Two MLPs per block (Linear, SiLU, Linear), one for time and one for the label, each
    /// giving per-channel offsets (the notebook's choice).
    PerBlock,
    /// One shared MLP turns the time features and the label embedding into a vector once
    /// per forward pass; each block maps it to its offsets with a single linear layer.
    Shared,
}

/// How the decoder doubles the resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Upsample {
    /// Bilinear interpolation.
    Bilinear,
    /// Nearest-neighbour repetition (cheaper on the CPU).
    Nearest,
}

/// A complete description of a U-Net velocity field `u(x_t, t, y)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UNetConfig {
    /// Channels per level; the last entry is the bottleneck's. Each entry but the last is
    /// followed by a stride-2 convolution, halving the resolution.
    pub channels: Vec<usize>,
    /// Residual blocks per level (and in the bottleneck).
    pub blocks: usize,
    /// Width of the time features and of the label embedding.
    pub embed_dim: usize,
    /// Normalisation in the residual blocks.
    pub norm: Norm,
    /// Skip wiring.
    pub skips: Skips,
    /// Conditioning wiring.
    pub conditioning: Conditioning,
    /// Up-sampling in the decoder.
    pub upsample: Upsample,
    /// Side of the square the network sees. Images of another size are resized to it
    /// (bilinear) on the way in and back on the way out.
    pub input_size: usize,
    /// Side of the images in the data.
    pub image_size: usize,
    /// Side of the pixel patches folded into channels before the stem (space-to-depth) and
    /// unfolded after the head; 1 for none. A patch of 2 runs the network at half the
    /// resolution with four times the input channels, losing no pixel.
    #[serde(default = "one")]
    pub patch: usize,
}

fn one() -> usize {
    1
}

impl UNetConfig {
    /// The notebook's network: 32/64/128/256 channels, 3 blocks a level, BatchNorm,
    /// bilinear up-sampling, per-block conditioning, 32×32 input by resizing. 6,955,785
    /// trainable parameters.
    pub fn reference() -> Self {
        Self {
            channels: vec![32, 64, 128, 256],
            blocks: 3,
            embed_dim: 48,
            norm: Norm::Batch,
            skips: Skips::AfterDown,
            conditioning: Conditioning::PerBlock,
            upsample: Upsample::Bilinear,
            input_size: 32,
            image_size: 28,
            patch: 1,
        }
    }

    /// The default, chosen for quality per CPU-minute (see `docs/model-choice.md`): native
    /// 28×28 images folded into 2×2 patches (4 channels at 14×14, no pixel lost), 32/64
    /// channels at 14×14 and 7×7, one block a level, GroupNorm, the usual U-Net skips,
    /// shared conditioning, nearest-neighbour up-sampling.
    pub fn small() -> Self {
        Self {
            channels: vec![32, 64],
            patch: 2,
            ..Self::full(vec![32, 64])
        }
    }

    /// The default's layout at twice its width: 64/128 channels at 14×14 and 7×7 (about four
    /// times the work of `small` per image). The shipped weights use it: trained for long,
    /// the extra width buys the sample diversity (recall) that `small` cannot reach.
    pub fn medium() -> Self {
        Self {
            channels: vec![64, 128],
            ..Self::small()
        }
    }

    /// A full-resolution U-Net at 28×28 (no patches) with the given channels and otherwise
    /// the default's choices: the other candidates of the model comparison.
    pub fn full(channels: Vec<usize>) -> Self {
        Self {
            channels,
            blocks: 1,
            embed_dim: 48,
            norm: Norm::Group(8),
            skips: Skips::BeforeDown,
            conditioning: Conditioning::Shared,
            upsample: Upsample::Nearest,
            input_size: 28,
            image_size: 28,
            patch: 1,
        }
    }

    /// A preset by name.
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "small" => Some(Self::small()),
            "medium" => Some(Self::medium()),
            "full16" => Some(Self::full(vec![16, 32, 64])),
            "full24" => Some(Self::full(vec![24, 48, 96])),
            "full32" => Some(Self::full(vec![32, 64, 128])),
            "reference" => Some(Self::reference()),
            _ => None,
        }
    }

    /// Names accepted by [`preset`](Self::preset).
    pub const PRESETS: [&'static str; 6] =
        ["small", "medium", "full16", "full24", "full32", "reference"];

    /// Floating-point operations of one forward pass for one image, counting the
    /// multiply-adds of the convolutions and linear layers as two each (normalisation,
    /// activations, resizing and additions are left out: a few per cent). A training step
    /// costs about three times this per image: the forward pass and twice as much backward.
    pub fn forward_flops(&self) -> u64 {
        let conv = |cin: usize, cout: usize, side: usize| 2 * 9 * cin * cout * side * side;
        let linear = |inputs: usize, outputs: usize| 2 * inputs * outputs;
        let e = self.embed_dim;
        let offsets = |c: usize| match self.conditioning {
            Conditioning::Shared => linear(e, c),
            Conditioning::PerBlock => 2 * (linear(e, e) + linear(e, c)),
        };
        let block = |c: usize, side: usize| 2 * conv(c, c, side) + offsets(c);
        let blocks = |c: usize, side: usize| self.blocks * block(c, side);
        let fold = self.patch * self.patch;
        let top = self.input_size / self.patch;
        let side = |level: usize| top >> level;
        let last = self.channels.len() - 1;

        let mut flops = conv(fold, self.channels[0], top) + conv(self.channels[0], fold, top);
        if self.conditioning == Conditioning::Shared {
            flops += linear(2 * e, e) + linear(e, e);
        }
        for (level, pair) in self.channels.windows(2).enumerate() {
            let (a, b) = (pair[0], pair[1]);
            flops += blocks(a, side(level)) + conv(a, b, side(level + 1));
            flops += conv(b, a, side(level)) + blocks(a, side(level));
        }
        flops += blocks(self.channels[last], side(last));
        flops as u64
    }

    /// Checks that the network can be built and that its resolutions line up.
    pub fn validate(&self) -> Result<(), String> {
        if self.channels.len() < 2 {
            return Err(format!(
                "need at least 2 levels of channels, found {:?}",
                self.channels
            ));
        }
        if self.channels.contains(&0) || self.blocks == 0 || self.embed_dim == 0 {
            return Err("channels, blocks and embed_dim must all be positive".into());
        }
        if !self.embed_dim.is_multiple_of(2) {
            return Err(format!(
                "the time features come in sine/cosine pairs: embed_dim must be even, found {}",
                self.embed_dim
            ));
        }
        if let Norm::Group(g) = self.norm {
            if g == 0 || self.channels.iter().any(|c| c % g != 0) {
                return Err(format!(
                    "{g} groups do not divide channels {:?}",
                    self.channels
                ));
            }
        }
        if self.patch == 0 || self.input_size % self.patch != 0 {
            return Err(format!(
                "patch {} does not divide input size {}",
                self.patch, self.input_size
            ));
        }
        let mut side = self.input_size / self.patch;
        for _ in 1..self.channels.len() {
            if side % 2 != 0 {
                return Err(format!(
                    "input size {} cannot be halved {} times evenly",
                    self.input_size,
                    self.channels.len() - 1
                ));
            }
            side /= 2;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_round_trip_through_json() {
        for name in UNetConfig::PRESETS {
            let config = UNetConfig::preset(name).unwrap();
            config.validate().unwrap();
            let json = serde_json::to_string(&config).unwrap();
            assert_eq!(serde_json::from_str::<UNetConfig>(&json).unwrap(), config);
        }
    }

    #[test]
    fn forward_flops_match_a_count_by_hand_and_the_notebook() {
        // small, per image: stem and head 451,584 each; the shared conditioning MLP 13,824;
        // at 14x14 and 32 channels the down block and the up block 7,228,416 each and the
        // up convolution 7,225,344; the down convolution 1,806,336; the bottleneck block at
        // 7x7 and 64 channels 7,231,488.
        assert_eq!(UNetConfig::small().forward_flops(), 31_636_992);
        // The notebook gives "about 0.9 GFLOP per image forward at 32x32".
        let reference = UNetConfig::reference().forward_flops() as f64;
        assert!((0.8e9..1.0e9).contains(&reference), "{reference}");
    }

    #[test]
    fn odd_resolutions_are_refused() {
        let config = UNetConfig {
            channels: vec![8, 16, 32, 64],
            ..UNetConfig::small()
        };
        assert!(config.validate().is_err());
    }
}
