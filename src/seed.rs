//! One lock around the device's random generator.
//!
//! burn's CPU backend keeps a single random generator per process. A training run seeds it
//! and draws its initial weights from it; if another thread (a concurrent test, say) draws in
//! between, the run starts from other weights. Seeded initialisations therefore hold this
//! lock from the seed to their last draw, and unseeded ones take it too, so neither can
//! interleave with the other. burn draws a parameter's initial values lazily, on its first
//! use; both functions draw every parameter before they let go of the lock.

use std::sync::Mutex;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};

static GENERATOR: Mutex<()> = Mutex::new(());

/// Seeds the device's generator with `seed` and builds a module with `init`, with no other
/// draw in between.
pub fn seeded<M: Module>(device: &Device, seed: u64, init: impl FnOnce() -> M) -> M {
    let _turn = GENERATOR.lock().unwrap_or_else(|p| p.into_inner());
    device.seed(seed);
    drawn(init())
}

/// Builds a module with `init`, which takes values from the device's generator, while no
/// seeded initialisation is under way.
pub fn exclusive<M: Module>(init: impl FnOnce() -> M) -> M {
    let _turn = GENERATOR.lock().unwrap_or_else(|p| p.into_inner());
    drawn(init())
}

/// `module`, with every parameter's initial values drawn now.
fn drawn<M: Module>(module: M) -> M {
    struct Draw;
    impl ModuleVisitor for Draw {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Draw);
    module
}
