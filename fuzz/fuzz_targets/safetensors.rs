//! Arbitrary bytes through the safetensors reader (`model::interop::safetensors_from_bytes`),
//! in one of two roles chosen by the first byte: a whole file, or a valid export of a tiny
//! network with bytes flipped (its header's JSON, offsets, metadata and tensors). Any panic,
//! and any allocation past libFuzzer's limits, is a finding.

#![no_main]

mod mutate;

use std::path::Path;
use std::sync::OnceLock;

use burn::tensor::Device;
use libfuzzer_sys::fuzz_target;
use mnist_flow::model::interop::{safetensors_from_bytes, save_safetensors};
use mnist_flow::model::{Norm, UNetConfig};

fn exported() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let config = UNetConfig {
            channels: vec![4, 8],
            embed_dim: 4,
            norm: Norm::Group(2),
            ..UNetConfig::small()
        };
        let file = std::env::temp_dir().join(format!("fuzz-export-{}.safetensors", std::process::id()));
        save_safetensors(&config.init(&Device::default()), &file).expect("export");
        let bytes = std::fs::read(&file).expect("read back");
        let _ = std::fs::remove_file(&file);
        bytes
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&role, rest)) = data.split_first() else {
        return;
    };
    let bytes = match role % 2 {
        0 => rest.to_vec(),
        _ => mutate::flipped(exported(), rest),
    };
    let _ = safetensors_from_bytes(bytes, Path::new("fuzzed"), &Device::default());
});
