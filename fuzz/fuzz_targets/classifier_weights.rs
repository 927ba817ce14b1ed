//! Arbitrary bytes through the classifier file reader, in one of four roles chosen by the
//! first byte: a whole file; the sizes of the network its header declares; the weights of a
//! tiny network; or those weights, valid, with bytes flipped. In the last three the file is
//! sealed with a matching SHA-256, which the fuzzer could never produce by chance, so that the
//! bytes reach the network's construction and burn's record decoding. Any panic, and any
//! allocation past libFuzzer's limits, is a finding.

#![no_main]

mod mutate;

use std::path::Path;
use std::sync::OnceLock;

use burn::module::Module;
use burn::tensor::Device;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use mnist_flow::data::idx::sha256_hex;
use mnist_flow::eval::fit::FitSettings;
use mnist_flow::eval::weights::{self, ClassifierHeader};
use mnist_flow::eval::ClassifierConfig;

fn path() -> &'static Path {
    Path::new("fuzzed")
}

fn tiny() -> ClassifierConfig {
    ClassifierConfig {
        channels: [2, 2, 2],
        features: 4,
        dropout: 0.0,
        image_size: 8,
    }
}

fn tiny_record() -> &'static [u8] {
    static RECORD: OnceLock<Vec<u8>> = OnceLock::new();
    RECORD.get_or_init(|| {
        let net = tiny().init(&Device::default());
        net.into_record()
            .into_bytes()
            .expect("a record serialises")
            .to_vec()
    })
}

/// A network whose every size comes from the fuzzer.
fn architecture(u: &mut Unstructured) -> Result<ClassifierConfig> {
    Ok(ClassifierConfig {
        channels: u.arbitrary()?,
        features: u.arbitrary()?,
        dropout: u.arbitrary()?,
        image_size: u.arbitrary()?,
    })
}

/// Seals a file of `config` around `record` and loads it.
fn seal_and_load(config: ClassifierConfig, record: &[u8]) {
    let header = ClassifierHeader {
        config,
        fit: FitSettings::default(),
        test_accuracy: 0.0,
        dataset: "fuzzed".into(),
        payload_len: record.len() as u64,
        payload_sha256: sha256_hex(record),
    };
    let bytes = weights::encode(&header, record);
    let _ = weights::from_bytes(&bytes, path(), &Device::default());
}

fuzz_target!(|data: &[u8]| {
    let Some((&role, rest)) = data.split_first() else {
        return;
    };
    match role % 4 {
        0 => {
            let _ = weights::from_bytes(rest, path(), &Device::default());
        }
        1 => {
            if let Ok(config) = architecture(&mut Unstructured::new(rest)) {
                seal_and_load(config, tiny_record());
            }
        }
        2 => seal_and_load(tiny(), rest),
        _ => seal_and_load(tiny(), &mutate::flipped(tiny_record(), rest)),
    }
});
