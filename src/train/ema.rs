//! An exponential moving average of the weights, the network used for sampling.
//!
//! After each optimiser step `ema ← d · ema + (1 − d) · θ`, with a warm-up
//! `d = min(decay, (1 + step) / (10 + step))` so that early averages are not dominated by the
//! random initialisation.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::container::TensorContainer;
use burn::tensor::Tensor;

use crate::model::UNet;

/// The decay used at `step` for a target `decay`.
pub fn warmed_decay(decay: f64, step: u64) -> f64 {
    decay.min((1.0 + step as f64) / (10.0 + step as f64))
}

/// Moves `ema` towards `model` by one step of the average with decay `d`.
pub fn update(ema: UNet, model: &UNet, d: f64) -> UNet {
    let mut collect = Collect {
        path: Vec::new(),
        values: TensorContainer::new(),
    };
    model.visit(&mut collect);
    ema.map(&mut Blend {
        path: Vec::new(),
        values: collect.values,
        d,
    })
}

struct Collect {
    path: Vec<String>,
    values: TensorContainer<String>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val().detach().without_autodiff();
        self.values.register(self.path.join("."), value);
    }
}

struct Blend {
    path: Vec<String>,
    values: TensorContainer<String>,
    d: f64,
}

impl ModuleMapper for Blend {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let d = self.d;
        match self.values.remove::<Tensor<D>>(&self.path.join(".")) {
            Some(current) => param.map(|e| e * d + current * (1.0 - d)),
            None => param,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_up_starts_low_and_reaches_the_target() {
        assert!((warmed_decay(0.999, 0) - 0.1).abs() < 1e-12);
        assert_eq!(warmed_decay(0.999, 1_000_000), 0.999);
    }
}
