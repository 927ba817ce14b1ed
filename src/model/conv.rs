//! The network's 3×3 convolutions (padding 1, stride 1 or 2).
//!
//! On the CPU backend they run through this crate's own kernel ([`cpu`]), registered with
//! burn as a backend extension with a handwritten backward pass ([`extension`]). Everywhere
//! else (GPU backends, or a convolution of another shape) they run through burn's generic
//! `conv2d`. The parameters live in an ordinary [`Conv2d`] either way, so weights files do
//! not depend on the path taken.

use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::{DType, Tensor};

#[cfg(feature = "flex")]
pub mod cpu;
#[cfg(feature = "flex")]
mod extension;

/// `conv.forward(x)`, through the CPU kernel where it applies.
pub fn forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(stride) = kernel_stride(conv, &x) {
        let bias = conv.bias.as_ref().expect("checked by kernel_stride").val();
        return extension::conv3x3(x, conv.weight.val(), bias, stride);
    }
    conv.forward(x)
}

/// burn's generic path, always: the yardstick the kernel is tested against.
pub fn forward_generic(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    conv.forward(x)
}

/// The stride, if the kernel computes this convolution on this input's device.
fn kernel_stride(conv: &Conv2d, x: &Tensor<4>) -> Option<usize> {
    let shape_fits = conv.kernel_size == [3, 3]
        && conv.dilation == [1, 1]
        && conv.groups == 1
        && conv.bias.is_some()
        && matches!(conv.padding, PaddingConfig2d::Explicit(1, 1, 1, 1))
        && conv.stride[0] == conv.stride[1]
        && (conv.stride[0] == 1 || conv.stride[0] == 2)
        && x.dtype() == DType::F32;
    (shape_fits && on_flex(x)).then_some(conv.stride[0])
}

#[cfg(feature = "flex")]
fn on_flex(x: &Tensor<4>) -> bool {
    matches!(
        x.device().inner().as_dispatch(),
        burn::backend::DispatchDevice::Flex(_)
    )
}

#[cfg(not(feature = "flex"))]
fn on_flex(_: &Tensor<4>) -> bool {
    false
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::tensor::{Device, Distribution};

    use super::*;
    use crate::model::block::conv3x3;

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
            let conv = conv3x3(cin, cout, stride, &device);
            let shape = [3, cin, side, side];
            let x =
                Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device).require_grad();
            assert!(
                kernel_stride(&conv, &x).is_some(),
                "the kernel applies here"
            );

            let fast = forward(&conv, x.clone());
            let slow = forward_generic(&conv, x.clone());
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

    /// Without autodiff (sampling), the kernel also serves and agrees.
    #[test]
    fn the_kernel_serves_inference_too() {
        let device = Device::flex();
        let conv = conv3x3(4, 8, 1, &device);
        let x = Tensor::<4>::random([2, 4, 9, 9], Distribution::Normal(0.0, 1.0), &device);
        assert!(kernel_stride(&conv, &x).is_some());
        let diff = largest_difference(forward(&conv, x.clone()), forward_generic(&conv, x));
        assert!(diff < 1e-4, "{diff}");
    }
}
