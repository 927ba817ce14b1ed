//! Safetensors export: the weights come back exactly, and a file with a missing, extra or
//! misshapen tensor is refused with the tensor's name.

use std::path::Path;

use burn::tensor::{Device, Int, Tensor};
use mnist_flow::model::interop::{load_safetensors, save_safetensors, InteropError, Probe};
use mnist_flow::model::{UNetConfig, NO_LABEL};

/// A tiny network of the default kind, with its own random weights.
fn tiny() -> UNetConfig {
    UNetConfig {
        channels: vec![8, 16],
        embed_dim: 8,
        ..UNetConfig::small()
    }
}

/// The header and the data of a safetensors file.
fn split(bytes: &[u8]) -> (serde_json::Map<String, serde_json::Value>, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header.as_object().unwrap().clone(), bytes[8 + n..].to_vec())
}

fn join(header: &serde_json::Map<String, serde_json::Value>, data: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(header).unwrap();
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend(json);
    out.extend(data);
    out
}

/// Rewrites the exported file at `from` into `to` after `edit` changed its header, laying the
/// tensors' bytes out again so that the result is well-formed safetensors.
fn tamper(
    from: &Path,
    to: &Path,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) {
    let (mut header, data) = split(&std::fs::read(from).unwrap());
    edit(&mut header);
    let mut packed = Vec::new();
    for (name, entry) in header.iter_mut() {
        if name == "__metadata__" {
            continue;
        }
        let offsets = &entry["data_offsets"];
        let (a, b) = (
            offsets[0].as_u64().unwrap() as usize,
            offsets[1].as_u64().unwrap() as usize,
        );
        let start = packed.len();
        packed.extend_from_slice(&data[a..b]);
        entry["data_offsets"] = serde_json::json!([start, packed.len()]);
    }
    std::fs::write(to, join(&header, &packed)).unwrap();
}

#[test]
fn exported_weights_load_back_to_the_same_velocity() {
    let device = Device::default();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("net.safetensors");
    let model = tiny().init(&device);
    save_safetensors(&model, &file).unwrap();

    let back = load_safetensors(&file, &device).unwrap();
    assert_eq!(back.config(), model.config());
    let x = Tensor::<4>::random([3, 1, 28, 28], burn::tensor::Distribution::Default, &device);
    let t = Tensor::<1>::from_floats([0.1, 0.5, 0.9], &device);
    let y = Tensor::<1, Int>::from_ints([1, 9, NO_LABEL], &device);
    let a = model.forward(x.clone(), t.clone(), y.clone());
    let b = back.forward(x, t, y);
    let diff: f32 = (a - b).abs().max().into_scalar();
    assert_eq!(diff, 0.0, "the round trip changed the velocity by {diff}");

    let probe_file = tmp.path().join("probe.safetensors");
    Probe::of(&model, &device).save(&probe_file).unwrap();
    let (header, _) = split(&std::fs::read(&probe_file).unwrap());
    assert_eq!(header["v"]["shape"], serde_json::json!([4, 1, 28, 28]));
    assert_eq!(header["x"]["shape"], serde_json::json!([4, 1, 28, 28]));
}

#[test]
fn damaged_exports_are_refused_naming_the_tensor() {
    let device = Device::default();
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.safetensors");
    save_safetensors(&tiny().init(&device), &good).unwrap();
    let bad = tmp.path().join("bad.safetensors");

    tamper(&good, &bad, |h| {
        h.remove("stem.bias");
    });
    match load_safetensors(&bad, &device) {
        Err(InteropError::Missing { name, .. }) => assert_eq!(name, "stem.bias"),
        other => panic!("a missing tensor must be named, got {other:?}"),
    }

    tamper(&good, &bad, |h| {
        let extra = h["stem.bias"].clone();
        h.insert("stem.extra".into(), extra);
    });
    match load_safetensors(&bad, &device) {
        Err(InteropError::Unexpected { name, .. }) => assert_eq!(name, "stem.extra"),
        other => panic!("an extra tensor must be named, got {other:?}"),
    }

    tamper(&good, &bad, |h| {
        // Same byte count, another shape: 8 × 1 × 3 × 3 instead of 8 × 4 × 3 × 3 would not
        // fit, so swap the two leading dimensions of the 4-channel stem.
        h["stem.weight"]["shape"] = serde_json::json!([4, 8, 3, 3]);
    });
    match load_safetensors(&bad, &device) {
        Err(InteropError::Shape {
            name,
            expected,
            found,
            ..
        }) => {
            assert_eq!(name, "stem.weight");
            assert_eq!(expected, vec![8, 4, 3, 3]);
            assert_eq!(found, vec![4, 8, 3, 3]);
        }
        other => panic!("a misshapen tensor must be named, got {other:?}"),
    }

    tamper(&good, &bad, |h| {
        h["__metadata__"]
            .as_object_mut()
            .unwrap()
            .remove("mnist_flow.config");
    });
    assert!(matches!(
        load_safetensors(&bad, &device),
        Err(InteropError::NoConfig { .. })
    ));

    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    assert!(
        load_safetensors(&bad, &device).is_err(),
        "a truncated file loads"
    );
    std::fs::write(&bad, [0xffu8; 16]).unwrap();
    assert!(matches!(
        load_safetensors(&bad, &device),
        Err(InteropError::Format { .. })
    ));
}

mod damaged_bytes {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::Config;

    /// An exported tiny network, once per test binary.
    fn exported() -> &'static [u8] {
        static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        BYTES.get_or_init(|| {
            let tmp = tempfile::tempdir().unwrap();
            let file = tmp.path().join("net.safetensors");
            save_safetensors(&tiny().init(&Device::default()), &file).unwrap();
            std::fs::read(file).unwrap()
        })
    }

    /// Loads `bytes` as a safetensors file; a panic inside fails the property.
    fn load(bytes: &[u8]) -> Result<(), InteropError> {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("x.safetensors");
        std::fs::write(&file, bytes).unwrap();
        load_safetensors(&file, &Device::default()).map(|_| ())
    }

    #[test]
    fn a_header_length_past_the_file_is_refused() {
        for declared in [u64::MAX, 1 << 40, exported().len() as u64] {
            let mut bytes = exported().to_vec();
            bytes[..8].copy_from_slice(&declared.to_le_bytes());
            assert!(
                matches!(load(&bytes), Err(InteropError::Format { .. })),
                "a header of {declared} bytes"
            );
        }
    }

    proptest! {
        #![proptest_config(Config { failure_persistence: None, ..Config::default() })]

        #[test]
        fn a_truncated_export_is_an_error(cut in 0usize..1_000_000) {
            let bytes = exported();
            let cut = cut % bytes.len();
            prop_assert!(load(&bytes[..cut]).is_err());
        }

        #[test]
        fn flipped_bytes_never_panic(flips in proptest::collection::vec((0usize..1_000_000, 1u8..=255), 1..8)) {
            let mut bytes = exported().to_vec();
            for (at, mask) in flips {
                let i = at % bytes.len();
                bytes[i] ^= mask;
            }
            // A flip in the weights still loads (safetensors has no checksum); any other
            // damage must come back as an error, not a panic.
            let _ = load(&bytes);
        }
    }
}
