//! The velocity field: a U-Net over images, conditioned on time and class label.

pub mod block;
pub mod config;
pub mod embed;
pub mod interop;
pub mod kernels;
pub mod unet;

pub use config::{Conditioning, Norm, Skips, UNetConfig, Upsample};
pub use embed::NO_LABEL;
pub use unet::UNet;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// Number of trainable parameters: every float parameter except normalisation running
/// statistics, which are buffers rather than weights.
pub fn trainable_params<M: Module>(module: &M) -> usize {
    struct Count {
        path: Vec<String>,
        total: usize,
    }
    impl ModuleVisitor for Count {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let buffer = self.path.last().is_some_and(|n| n.starts_with("running_"));
            if !buffer {
                self.total += param.shape().num_elements();
            }
        }
    }
    let mut count = Count {
        path: Vec::new(),
        total: 0,
    };
    module.visit(&mut count);
    count.total
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Int, Tensor};

    fn output_shape(config: &UNetConfig) -> [usize; 4] {
        let device = Device::default();
        let net = config.init(&device);
        let x = Tensor::<4>::zeros([2, 1, 28, 28], &device);
        let t = Tensor::<1>::from_floats([0.2, 0.9], &device);
        let y = Tensor::<1, Int>::from_ints([3, NO_LABEL], &device);
        net.forward(x, t, y).dims()
    }

    #[test]
    fn both_presets_return_the_shape_of_their_input() {
        assert_eq!(output_shape(&UNetConfig::small()), [2, 1, 28, 28]);
        assert_eq!(output_shape(&UNetConfig::reference()), [2, 1, 28, 28]);
    }

    #[test]
    fn reference_has_the_notebook_parameter_count() {
        let net = UNetConfig::reference().init(&Device::default());
        assert_eq!(trainable_params(&net), 6_955_785);
    }
}
