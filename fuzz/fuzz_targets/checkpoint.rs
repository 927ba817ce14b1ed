//! Arbitrary bytes through the checkpoint reader, in one of four roles chosen by the first
//! byte: a whole file; the sizes of the network its header declares; the weights of a tiny
//! network; or those weights, valid, with bytes flipped. In the last three the file is sealed
//! with a matching SHA-256, which the fuzzer could never produce by chance, so that the bytes
//! reach the network's construction and burn's record decoding. Any panic, and any allocation
//! past libFuzzer's limits, is a finding.

#![no_main]

mod mutate;

use std::path::Path;
use std::sync::OnceLock;

use burn::tensor::Device;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use mnist_flow::data::SamplerState;
use mnist_flow::model::{Norm, UNetConfig};
use mnist_flow::train::checkpoint::module_bytes;
use mnist_flow::train::{Checkpoint, TrainConfig};

fn path() -> &'static Path {
    Path::new("fuzzed")
}

fn tiny() -> UNetConfig {
    UNetConfig {
        channels: vec![4, 8],
        embed_dim: 4,
        norm: Norm::Group(2),
        ..UNetConfig::small()
    }
}

fn tiny_record() -> &'static [u8] {
    static RECORD: OnceLock<Vec<u8>> = OnceLock::new();
    RECORD.get_or_init(|| module_bytes(&tiny().init(&Device::default())))
}

/// A network whose every size comes from the fuzzer.
fn architecture(u: &mut Unstructured) -> Result<UNetConfig> {
    let levels = u.int_in_range(2..=4)?;
    let channels = (0..levels)
        .map(|_| u.arbitrary())
        .collect::<Result<Vec<usize>>>()?;
    let norm = if u.arbitrary()? {
        Norm::Batch
    } else {
        Norm::Group(u.arbitrary()?)
    };
    Ok(UNetConfig {
        channels,
        blocks: u.arbitrary()?,
        embed_dim: u.arbitrary()?,
        norm,
        input_size: u.arbitrary()?,
        patch: u.arbitrary()?,
        ..tiny()
    })
}

/// Seals a checkpoint of `model` around `record`, reads it back and loads the network.
fn seal_and_load(model: UNetConfig, record: Vec<u8>) {
    let sampler = SamplerState {
        seed: 0,
        epoch: 0,
        position: 0,
    };
    let config = TrainConfig::for_preset("custom", model);
    let sections = vec![("model".to_string(), record)];
    let bytes = Checkpoint::new(config, 0, sampler, 0.0, sections).to_bytes();
    let checkpoint = Checkpoint::from_bytes(&bytes, path()).expect("a sealed checkpoint reads");
    let _ = checkpoint.model("model", &Device::default());
}

fuzz_target!(|data: &[u8]| {
    let Some((&role, rest)) = data.split_first() else {
        return;
    };
    match role % 4 {
        0 => {
            let _ = Checkpoint::from_bytes(rest, path());
        }
        1 => {
            if let Ok(model) = architecture(&mut Unstructured::new(rest)) {
                seal_and_load(model, tiny_record().to_vec());
            }
        }
        2 => seal_and_load(tiny(), rest.to_vec()),
        _ => seal_and_load(tiny(), mutate::flipped(tiny_record(), rest)),
    }
});
