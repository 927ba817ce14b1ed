//! The U-Net velocity field `u(x_t, t, y)`: embed time and label, go down, bottleneck, come
//! up, head. Its output has the shape of `x_t` and regresses the CondOT target `x1 − x0`.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::interpolate::{Interpolate2dConfig, InterpolateMode};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Int, Tensor};

use super::block::{conv3x3, Context, ResBlock};
use super::config::{Conditioning, Skips, UNetConfig, Upsample};
use super::embed::{FourierTime, LabelEmbedding, Mlp};
use super::kernels;

/// One encoder level: residual blocks, then a stride-2 convolution to the next width.
#[derive(Module, Debug)]
pub struct DownLevel {
    blocks: Vec<ResBlock>,
    down: Conv2d,
}

/// One decoder level: up-sampling, a convolution to this level's width, residual blocks.
#[derive(Module, Debug)]
pub struct UpLevel {
    conv: Conv2d,
    blocks: Vec<ResBlock>,
}

/// The velocity field.
#[derive(Module, Debug)]
pub struct UNet {
    time: FourierTime,
    label: LabelEmbedding,
    shared: Option<Mlp>,
    stem: Conv2d,
    down: Vec<DownLevel>,
    bottleneck: Vec<ResBlock>,
    up: Vec<UpLevel>,
    head: Conv2d,
    #[module(skip)]
    config: UNetConfig,
}

impl UNetConfig {
    /// Builds the network on `device` with freshly initialised weights.
    ///
    /// # Panics
    /// If the configuration does not [`validate`](UNetConfig::validate); callers check it
    /// first at the edge.
    pub fn init(&self, device: &Device) -> UNet {
        crate::seed::exclusive(|| self.build(device))
    }

    /// Like [`init`](Self::init), with the device's generator seeded with `seed` first:
    /// the same seed gives the same weights.
    pub fn init_seeded(&self, seed: u64, device: &Device) -> UNet {
        crate::seed::seeded(device, seed, || self.build(device))
    }

    fn build(&self, device: &Device) -> UNet {
        self.validate()
            .expect("configurations are validated before init");
        let (e, norm, cond) = (self.embed_dim, self.norm, self.conditioning);
        let block = |c: usize| ResBlock::new(c, norm, cond, e, device);
        let blocks = |c: usize| (0..self.blocks).map(|_| block(c)).collect::<Vec<_>>();
        let ch = &self.channels;
        let last = *ch.last().expect("validated: at least two levels");

        let down = ch
            .windows(2)
            .map(|w| DownLevel {
                blocks: blocks(w[0]),
                down: conv3x3(w[0], w[1], 2, device),
            })
            .collect();
        let up = ch
            .windows(2)
            .rev()
            .map(|w| UpLevel {
                conv: conv3x3(w[1], w[0], 1, device),
                blocks: blocks(w[0]),
            })
            .collect();
        let shared = (cond == Conditioning::Shared).then(|| Mlp::new(2 * e, e, e, device));

        UNet {
            time: FourierTime::new(e, device),
            label: LabelEmbedding::new(e, device),
            shared,
            stem: conv3x3(self.patch * self.patch, ch[0], 1, device),
            down,
            bottleneck: blocks(last),
            up,
            head: conv3x3(ch[0], self.patch * self.patch, 1, device),
            config: self.clone(),
        }
    }
}

impl UNet {
    /// The configuration the network was built from.
    pub fn config(&self) -> &UNetConfig {
        &self.config
    }

    /// The velocity at `x_t` for times `t` and label tokens `y` (`NO_LABEL` for none).
    ///
    /// # Shapes
    /// - `x`: `[batch, 1, image_size, image_size]`
    /// - `t`: `[batch]`, in `[0, 1]`
    /// - `y`: `[batch]`, in `0..=NO_LABEL`
    /// - output: like `x`
    pub fn forward(&self, x: Tensor<4>, t: Tensor<1>, y: Tensor<1, Int>) -> Tensor<4> {
        let context = self.context(t, y);
        let (inner, outer) = (self.config.input_size, self.config.image_size);
        let x = space_to_depth(resize(x, outer, inner), self.config.patch);

        let mut x = kernels::silu(kernels::conv3x3(&self.stem, x));
        let mut kept = Vec::with_capacity(self.down.len());
        for level in &self.down {
            for block in &level.blocks {
                x = block.forward(x, &context);
            }
            if self.config.skips == Skips::BeforeDown {
                kept.push(x.clone());
            }
            x = kernels::conv3x3(&level.down, x);
            if self.config.skips == Skips::AfterDown {
                kept.push(x.clone());
            }
        }

        for block in &self.bottleneck {
            x = block.forward(x, &context);
        }

        for level in &self.up {
            let skip = kept.pop().expect("one kept tensor per level");
            x = match self.config.skips {
                Skips::AfterDown => kernels::conv3x3(&level.conv, self.upsample(x + skip)),
                Skips::BeforeDown => kernels::conv3x3(&level.conv, self.upsample(x)) + skip,
            };
            for block in &level.blocks {
                x = block.forward(x, &context);
            }
        }

        let x = depth_to_space(kernels::conv3x3(&self.head, x), self.config.patch);
        resize(x, inner, outer)
    }

    fn context(&self, t: Tensor<1>, y: Tensor<1, Int>) -> Context {
        let time = self.time.forward(t);
        let label = self.label.forward(y);
        match &self.shared {
            Some(mlp) => Context::Shared(silu(mlp.forward(Tensor::cat(vec![time, label], 1)))),
            None => Context::Separate { time, label },
        }
    }

    fn upsample(&self, x: Tensor<4>) -> Tensor<4> {
        let mode = match self.config.upsample {
            Upsample::Bilinear => InterpolateMode::Linear,
            Upsample::Nearest => InterpolateMode::Nearest,
        };
        let [_, _, h, w] = x.dims();
        Interpolate2dConfig::new()
            .with_output_size(Some([2 * h, 2 * w]))
            .with_mode(mode)
            .with_align_corners(false)
            .init()
            .forward(x)
    }
}

/// `[b, c, h, w]` → `[b, c·p², h/p, w/p]`: each `p × p` patch becomes `p²` channels.
fn space_to_depth(x: Tensor<4>, p: usize) -> Tensor<4> {
    if p == 1 {
        return x;
    }
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h / p, p, w / p, p])
        .permute([0, 1, 3, 5, 2, 4])
        .reshape([b, c * p * p, h / p, w / p])
}

/// The inverse of [`space_to_depth`].
fn depth_to_space(x: Tensor<4>, p: usize) -> Tensor<4> {
    if p == 1 {
        return x;
    }
    let [b, cpp, h, w] = x.dims();
    let c = cpp / (p * p);
    x.reshape([b, c, p, p, h, w])
        .permute([0, 1, 4, 2, 5, 3])
        .reshape([b, c, h * p, w * p])
}

fn resize(x: Tensor<4>, from: usize, to: usize) -> Tensor<4> {
    if from == to {
        return x;
    }
    Interpolate2dConfig::new()
        .with_output_size(Some([to, to]))
        .with_mode(InterpolateMode::Linear)
        .with_align_corners(false)
        .init()
        .forward(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_to_space_inverts_space_to_depth() {
        let device = Device::default();
        let x = Tensor::<4>::random([2, 1, 4, 6], burn::tensor::Distribution::Default, &device);
        let folded = space_to_depth(x.clone(), 2);
        assert_eq!(folded.dims(), [2, 4, 2, 3]);
        let back = depth_to_space(folded, 2);
        let diff: f32 = (back - x).abs().max().into_scalar();
        assert_eq!(diff, 0.0);
    }
}
