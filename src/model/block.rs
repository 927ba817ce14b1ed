//! The residual block of the U-Net: two 3×3 convolutions, each normalised and passed through
//! SiLU, with per-channel offsets from time and label added between them.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::nn::{BatchNorm, BatchNormConfig, GroupNorm, GroupNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use super::config::{Conditioning, Norm};
use super::embed::Mlp;
use super::kernels;

/// The conditioning a block receives, computed once per forward pass.
#[derive(Debug, Clone)]
pub enum Context {
    /// Time features and label embedding, for per-block MLPs.
    Separate {
        /// `[batch, embed]`.
        time: Tensor<2>,
        /// `[batch, embed]`.
        label: Tensor<2>,
    },
    /// One shared conditioning vector, already passed through SiLU.
    Shared(Tensor<2>),
}

/// A normalisation layer of either kind.
#[derive(Module, Debug)]
pub struct NormLayer {
    batch: Option<BatchNorm>,
    group: Option<GroupNorm>,
}

impl NormLayer {
    fn new(norm: Norm, channels: usize, device: &Device) -> Self {
        match norm {
            Norm::Batch => Self {
                batch: Some(BatchNormConfig::new(channels).init(device)),
                group: None,
            },
            Norm::Group(g) => Self {
                batch: None,
                group: Some(GroupNormConfig::new(g, channels).init(device)),
            },
        }
    }

    /// `silu(norm(x)) + shift`, `shift` being `[batch, channels]` (none: zero).
    fn forward_silu(&self, x: Tensor<4>, shift: Option<Tensor<2>>) -> Tensor<4> {
        match (&self.batch, &self.group) {
            (Some(bn), _) => {
                let y = kernels::silu(bn.forward(x));
                match shift {
                    Some(shift) => {
                        let [batch, channels] = shift.dims();
                        y + shift.reshape([batch, channels, 1, 1])
                    }
                    None => y,
                }
            }
            (None, Some(gn)) => kernels::group_norm_silu(gn, x, shift),
            (None, None) => unreachable!("a NormLayer is built with exactly one layer"),
        }
    }
}

/// Maps the context to per-channel offsets.
#[derive(Module, Debug)]
pub struct OffsetLayer {
    time: Option<Mlp>,
    label: Option<Mlp>,
    shared: Option<Linear>,
}

impl OffsetLayer {
    fn new(conditioning: Conditioning, embed: usize, channels: usize, device: &Device) -> Self {
        match conditioning {
            Conditioning::PerBlock => Self {
                time: Some(Mlp::new(embed, embed, channels, device)),
                label: Some(Mlp::new(embed, embed, channels, device)),
                shared: None,
            },
            Conditioning::Shared => Self {
                time: None,
                label: None,
                shared: Some(LinearConfig::new(embed, channels).init(device)),
            },
        }
    }

    fn forward(&self, context: &Context) -> Tensor<2> {
        match (context, &self.time, &self.label, &self.shared) {
            (Context::Separate { time, label }, Some(tm), Some(lm), _) => {
                tm.forward(time.clone()) + lm.forward(label.clone())
            }
            (Context::Shared(v), _, _, Some(linear)) => linear.forward(v.clone()),
            _ => panic!("the context kind matches the block's conditioning by construction"),
        }
    }
}

/// `x + act(norm(conv(act(norm(conv(x))) + offset)))`, in the notebook's order.
#[derive(Module, Debug)]
pub struct ResBlock {
    conv1: Conv2d,
    norm1: NormLayer,
    offsets: OffsetLayer,
    conv2: Conv2d,
    norm2: NormLayer,
}

/// A 3×3 convolution with padding 1 and the given stride.
pub fn conv3x3(input: usize, output: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([input, output], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

impl ResBlock {
    /// A block at `channels` channels.
    pub fn new(
        channels: usize,
        norm: Norm,
        conditioning: Conditioning,
        embed: usize,
        device: &Device,
    ) -> Self {
        Self {
            conv1: conv3x3(channels, channels, 1, device),
            norm1: NormLayer::new(norm, channels, device),
            offsets: OffsetLayer::new(conditioning, embed, channels, device),
            conv2: conv3x3(channels, channels, 1, device),
            norm2: NormLayer::new(norm, channels, device),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, channels, h, w]` → same
    pub fn forward(&self, x: Tensor<4>, context: &Context) -> Tensor<4> {
        let offsets = self.offsets.forward(context);
        let h = self
            .norm1
            .forward_silu(kernels::conv3x3(&self.conv1, x.clone()), Some(offsets));
        let h = self
            .norm2
            .forward_silu(kernels::conv3x3(&self.conv2, h), None);
        h + x
    }
}
