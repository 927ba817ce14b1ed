//! The layers that have their own CPU kernels: the 3×3 convolution (padding 1, stride 1 or
//! 2), group normalisation followed by SiLU (and the block's per-channel offsets), and SiLU.
//!
//! On the CPU backend they run through this crate's kernels ([`conv`], [`group_norm`]),
//! registered with burn as a backend extension with handwritten backward passes
//! ([`extension`]). Everywhere else (GPU backends, or a layer of another shape) they run
//! through burn's generic operations, which are also what the tests hold the kernels to. The
//! parameters live in ordinary [`Conv2d`] and [`GroupNorm`] modules either way, so weights
//! files do not depend on the path taken.

use burn::nn::conv::Conv2d;
use burn::nn::GroupNorm;
#[cfg(feature = "flex")]
use burn::nn::PaddingConfig2d;
#[cfg(feature = "flex")]
use burn::tensor::DType;
use burn::tensor::Tensor;

#[cfg(feature = "flex")]
pub mod activation;
#[cfg(feature = "flex")]
pub mod conv;
#[cfg(feature = "flex")]
mod extension;
#[cfg(feature = "flex")]
pub mod group_norm;
#[cfg(feature = "flex")]
mod lanes;

/// `conv.forward(x)`, through the CPU kernel where it applies.
pub fn conv3x3(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(stride) = kernel_stride(conv, &x) {
        let bias = conv.bias.as_ref().expect("checked by kernel_stride").val();
        return extension::conv3x3(x, conv.weight.val(), bias, stride);
    }
    conv3x3_generic(conv, x)
}

/// burn's generic convolution.
pub fn conv3x3_generic(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    conv.forward(x)
}

/// `silu(norm.forward(x)) + shift`, `shift` being `[batch, channels]` (none: zero), through
/// the CPU kernel where it applies.
pub fn group_norm_silu(norm: &GroupNorm, x: Tensor<4>, shift: Option<Tensor<2>>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let (Some(gamma), Some(beta), true) = (&norm.gamma, &norm.beta, on_flex(&x)) {
        let [batch, channels, _, _] = x.dims();
        let shift = shift.unwrap_or_else(|| Tensor::zeros([batch, channels], &x.device()));
        return extension::group_norm_silu(
            x,
            gamma.val(),
            beta.val(),
            shift,
            norm.num_groups,
            norm.epsilon as f32,
        );
    }
    group_norm_silu_generic(norm, x, shift)
}

/// burn's generic normalisation, activation and shift.
pub fn group_norm_silu_generic(
    norm: &GroupNorm,
    x: Tensor<4>,
    shift: Option<Tensor<2>>,
) -> Tensor<4> {
    let y = burn::tensor::activation::silu(norm.forward(x));
    match shift {
        Some(shift) => {
            let [batch, channels] = shift.dims();
            y + shift.reshape([batch, channels, 1, 1])
        }
        None => y,
    }
}

/// `x·σ(x)`, through the CPU kernel where it applies.
pub fn silu(x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if on_flex(&x) {
        return extension::silu(x);
    }
    silu_generic(x)
}

/// burn's generic SiLU.
pub fn silu_generic(x: Tensor<4>) -> Tensor<4> {
    burn::tensor::activation::silu(x)
}

/// The stride, if the kernel computes this convolution on this input's device.
#[cfg(feature = "flex")]
fn kernel_stride(conv: &Conv2d, x: &Tensor<4>) -> Option<usize> {
    let shape_fits = conv.kernel_size == [3, 3]
        && conv.dilation == [1, 1]
        && conv.groups == 1
        && conv.bias.is_some()
        && matches!(conv.padding, PaddingConfig2d::Explicit(1, 1, 1, 1))
        && conv.stride[0] == conv.stride[1]
        && (conv.stride[0] == 1 || conv.stride[0] == 2);
    (shape_fits && on_flex(x)).then_some(conv.stride[0])
}

/// Whether `x` is an `f32` tensor on the CPU backend, with or without autodiff.
#[cfg(feature = "flex")]
fn on_flex(x: &Tensor<4>) -> bool {
    x.dtype() == DType::F32
        && matches!(
            x.device().inner().as_dispatch(),
            burn::backend::DispatchDevice::Flex(_)
        )
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::tensor::{Device, Distribution};

    use super::*;
    use crate::model::block;

    fn largest_difference(a: Tensor<4>, b: Tensor<4>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    /// Forward values and the gradients of input, weight and bias through the kernel agree
    /// with burn's generic convolution to 1e-4, at both strides, odd and even sizes.
    #[test]
    fn the_kernel_matches_burns_generic_convolution() {
        let device = Device::flex().autodiff();
        for (stride, cin, cout, side) in [(1, 4, 8, 14), (1, 8, 4, 7), (2, 8, 16, 14), (2, 3, 5, 7)]
        {
            let conv = block::conv3x3(cin, cout, stride, &device);
            let shape = [3, cin, side, side];
            let x =
                Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device).require_grad();
            assert!(
                kernel_stride(&conv, &x).is_some(),
                "the kernel applies here"
            );

            let fast = conv3x3(&conv, x.clone());
            let slow = conv3x3_generic(&conv, x.clone());
            assert_eq!(fast.dims(), slow.dims());
            let dy = Tensor::<4>::random(fast.dims(), Distribution::Normal(0.0, 1.0), &device);
            let value = largest_difference(fast.clone(), slow.clone());
            assert!(
                value < 1e-4,
                "stride {stride}, {cin}→{cout}, {side}: forward {value}"
            );

            let g_fast = (fast * dy.clone()).sum().backward();
            let g_slow = (slow * dy).sum().backward();
            let grad = |t: &Tensor<4>, g| t.grad(g).expect("a gradient");
            let dx = largest_difference(grad(&x, &g_fast), grad(&x, &g_slow));
            let w = conv.weight.val();
            let dw = largest_difference(grad(&w, &g_fast), grad(&w, &g_slow));
            let b = conv.bias.as_ref().expect("bias").val();
            let (b_fast, b_slow) = (
                b.grad(&g_fast).expect("bias grad"),
                b.grad(&g_slow).expect("bias grad"),
            );
            let db: f32 = (b_fast - b_slow).abs().max().into_scalar();
            let scale: f32 = grad(&w, &g_slow).abs().max().into_scalar();
            for (name, diff) in [
                ("input", dx),
                ("weight", dw / scale.max(1.0)),
                ("bias", db / scale.max(1.0)),
            ] {
                assert!(
                    diff < 1e-4,
                    "stride {stride}, {cin}→{cout}, {side}: {name} gradient {diff}"
                );
            }
        }
    }

    /// `silu(group_norm(x))` through the kernel agrees with burn's generic layers to 1e-4:
    /// values, and the gradients of input, `γ` and `β` (set away from their initial values).
    #[test]
    fn the_normalisation_kernel_matches_burns_generic_layers() {
        use burn::module::Param;
        use burn::nn::GroupNormConfig;

        let device = Device::flex().autodiff();
        for (groups, channels, side) in [(8, 32, 14), (8, 64, 7), (2, 6, 5)] {
            let mut norm = GroupNormConfig::new(groups, channels).init(&device);
            let normal = Distribution::Normal(0.0, 1.0);
            norm.gamma = Some(Param::from_tensor(Tensor::<1>::random(
                [channels],
                normal,
                &device,
            )));
            norm.beta = Some(Param::from_tensor(Tensor::<1>::random(
                [channels],
                normal,
                &device,
            )));
            // An offset and a scale per image, as a network's activations have.
            let x = (Tensor::<4>::random([3, channels, side, side], normal, &device) * 2.5 + 0.7)
                .require_grad();
            let shift = Tensor::<2>::random([3, channels], normal, &device).require_grad();
            let fast = group_norm_silu(&norm, x.clone(), Some(shift.clone()));
            let slow = group_norm_silu_generic(&norm, x.clone(), Some(shift.clone()));
            let value = largest_difference(fast.clone(), slow.clone());
            assert!(
                value < 1e-4,
                "{groups} groups of {channels}, {side}: forward {value}"
            );

            let dy = Tensor::<4>::random(fast.dims(), normal, &device);
            let g_fast = (fast * dy.clone()).sum().backward();
            let g_slow = (slow * dy).sum().backward();
            let dx = largest_difference(
                x.grad(&g_fast).expect("x grad"),
                x.grad(&g_slow).expect("x grad"),
            );
            assert!(
                dx < 1e-4,
                "{groups} groups of {channels}, {side}: input gradient {dx}"
            );
            for (name, p) in [("gamma", &norm.gamma), ("beta", &norm.beta)] {
                let p = p.as_ref().expect("affine").val();
                let (a, b) = (
                    p.grad(&g_fast).expect("grad"),
                    p.grad(&g_slow).expect("grad"),
                );
                let scale: f32 = b.clone().abs().max().into_scalar();
                let diff: f32 = (a - b).abs().max().into_scalar();
                assert!(
                    diff / scale.max(1.0) < 1e-4,
                    "{groups} groups of {channels}, {side}: {name} gradient {diff}"
                );
            }
        }
    }

    /// SiLU through the kernel agrees with burn's, value and gradient.
    #[test]
    fn the_activation_kernel_matches_burns() {
        let device = Device::flex().autodiff();
        let x = (Tensor::<4>::random([2, 3, 9, 9], Distribution::Normal(0.0, 1.0), &device) * 4.0)
            .require_grad();
        let (fast, slow) = (silu(x.clone()), silu_generic(x.clone()));
        assert!(largest_difference(fast.clone(), slow.clone()) < 1e-4);
        let dy = Tensor::<4>::random(fast.dims(), Distribution::Normal(0.0, 1.0), &device);
        let (g_fast, g_slow) = (
            (fast * dy.clone()).sum().backward(),
            (slow * dy).sum().backward(),
        );
        let diff = largest_difference(
            x.grad(&g_fast).expect("grad"),
            x.grad(&g_slow).expect("grad"),
        );
        assert!(diff < 1e-4, "silu gradient {diff}");
    }

    /// Without autodiff (sampling), the kernel also serves and agrees.
    #[test]
    fn the_kernel_serves_inference_too() {
        let device = Device::flex();
        let conv = block::conv3x3(4, 8, 1, &device);
        let x = Tensor::<4>::random([2, 4, 9, 9], Distribution::Normal(0.0, 1.0), &device);
        assert!(kernel_stride(&conv, &x).is_some());
        let diff = largest_difference(conv3x3(&conv, x.clone()), conv3x3_generic(&conv, x.clone()));
        assert!(diff < 1e-4, "{diff}");
        let norm = burn::nn::GroupNormConfig::new(2, 4).init(&device);
        let diff = largest_difference(
            group_norm_silu(&norm, x.clone(), None),
            group_norm_silu_generic(&norm, x.clone(), None),
        );
        assert!(diff < 1e-4, "{diff}");
        let diff = largest_difference(silu(x.clone()), silu_generic(x));
        assert!(diff < 1e-4, "{diff}");
    }
}
