//! Safetensors export: the weights come back exactly, and a file with a missing, extra or
//! misshapen tensor is refused with the tensor's name.

use std::path::Path;

use burn::tensor::{Device, Int, Tensor, TensorData};
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
    // Host values: a draw from the device's generator here could land inside another test's
    // seeded initialisation.
    let values: Vec<f32> = (0..3 * 28 * 28)
        .map(|i| ((i * 31) % 97) as f32 / 48.0 - 1.0)
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(values, [3, 1, 28, 28]), &device);
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

mod notebook {
    use std::path::{Path, PathBuf};

    use burn::tensor::{Device, Int, Tensor, TensorData};
    use mnist_flow::model::interop::{load_notebook, InteropError};
    use mnist_flow::model::UNetConfig;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/notebook")
            .join(name)
    }

    /// A tensor of the probe the fixture script wrote, as floats and a shape.
    fn probe(name: &str) -> (Vec<f32>, Vec<usize>) {
        let bytes = std::fs::read(fixture("probe.safetensors")).unwrap();
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let view = file.tensor(name).unwrap();
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        (values, view.shape().to_vec())
    }

    #[test]
    fn the_notebook_network_imports_and_reproduces_the_recorded_velocity() {
        let device = Device::default();
        let model = load_notebook(&fixture("notebook-tiny.pth"), None, &device).unwrap();
        let expected = UNetConfig {
            channels: vec![4, 8, 8, 16],
            blocks: 2,
            embed_dim: 8,
            ..UNetConfig::reference()
        };
        assert_eq!(model.config(), &expected);

        let (x, x_shape) = probe("x");
        let (t, _) = probe("t");
        let (y, _) = probe("y");
        let (v, v_shape) = probe("v");
        let x = Tensor::<4>::from_data(TensorData::new(x, x_shape.clone()), &device);
        let t = Tensor::<1>::from_data(TensorData::new(t, [4]), &device);
        let labels: Vec<i64> = y.iter().map(|&l| l as i64).collect();
        let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [4]), &device);
        let found = model
            .forward(x, t, y)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(v_shape, x_shape);
        let worst = found
            .iter()
            .zip(&v)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let scale = v.iter().map(|a| a.abs()).fold(0.0f32, f32::max);
        assert!(
            scale > 0.01,
            "the recorded velocity is all but zero: {scale}"
        );
        assert!(worst < 1e-4, "largest difference {worst}");
    }

    fn refusal(name: &str) -> String {
        let err = load_notebook(&fixture(name), None, &Device::default()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(name) && !text.contains('\n'), "{text}");
        match err {
            InteropError::Missing { .. }
            | InteropError::Unexpected { .. }
            | InteropError::Shape { .. }
            | InteropError::Pytorch { .. } => text,
            other => panic!("unexpected kind of error: {other}"),
        }
    }

    #[test]
    fn a_missing_extra_or_misshapen_tensor_is_named() {
        let missing = refusal("broken-missing.pth");
        assert!(
            missing.contains("`up.0.blocks.0.conv2.bias` is missing"),
            "{missing}"
        );
        let extra = refusal("broken-extra.pth");
        assert!(extra.contains("`extra.weight` is not part"), "{extra}");
        let shape = refusal("broken-misshapen.pth");
        assert!(
            shape.contains("`head.weight`")
                && shape.contains("[1, 2, 3, 3]")
                && shape.contains("[1, 2, 5, 5]"),
            "{shape}"
        );
    }

    #[test]
    fn other_files_and_absent_entries_are_refused_in_a_line() {
        let tmp = tempfile::tempdir().unwrap();
        let junk = tmp.path().join("junk.pth");
        std::fs::write(&junk, b"not a pickle at all").unwrap();
        let err = load_notebook(&junk, None, &Device::default()).unwrap_err();
        assert!(matches!(err, InteropError::Pytorch { .. }), "{err}");

        let err = load_notebook(
            &fixture("notebook-tiny.pth"),
            Some("model_state_dict"),
            &Device::default(),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("model_state_dict") && text.len() < 400,
            "{text}"
        );
    }
}
