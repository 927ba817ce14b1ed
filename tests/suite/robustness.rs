//! The readers of untrusted files fed damaged and lying bytes: IDX data, checkpoints and
//! classifier files. Truncations, flipped bytes, random bytes and headers declaring huge sizes
//! must end in the reader's typed error, never in a panic, and never in an allocation sized by
//! a header field that the reader has not checked against the bytes present.
//!
//! That last rule is measured: this test binary's allocator notes the largest single request
//! a thread makes while a probe is armed, and each case bounds it by a few times its input.
//! Each property runs proptest's 256 cases, or `PROPTEST_CASES`; the targets in `fuzz/`
//! search the same readers without a bound.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;

/// The system allocator, noting the largest request of each thread while it is armed.
struct Probe;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: a thread being torn down has no thread-locals left to note in.
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
        }
    });
}

// SAFETY: every call goes unchanged to the system allocator; noting a size only touches
// `const`-initialised thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for Probe {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Probe = Probe;

/// Runs `read`, returning its result and the largest single allocation it made on this thread.
fn largest_allocation<T>(read: impl FnOnce() -> T) -> (T, usize) {
    struct Disarm;
    impl Drop for Disarm {
        fn drop(&mut self) {
            ARMED.with(|armed| armed.set(false));
        }
    }
    LARGEST.with(|largest| largest.set(0));
    ARMED.with(|armed| armed.set(true));
    let disarm = Disarm;
    let out = read();
    drop(disarm);
    (out, LARGEST.with(Cell::get))
}

/// The most a reader may allocate at once for `len` bytes of input: a few copies of them,
/// and a mebibyte for the tiny networks built here. Every lying header below declares
/// gibibytes at least.
fn budget(len: usize) -> usize {
    4 * len + (1 << 20)
}

/// Proptest's settings (`PROPTEST_CASES` included), without failure files in the tree.
fn settings() -> Config {
    Config {
        failure_persistence: None,
        ..Config::default()
    }
}

fn here() -> &'static Path {
    Path::new("fuzzed")
}

/// Flips `mask` into the byte at `at` (an index into `bytes`).
fn flipped(bytes: &[u8], at: Index, mask: u8) -> (Vec<u8>, usize) {
    let mut out = bytes.to_vec();
    let at = at.index(out.len());
    out[at] ^= mask;
    (out, at)
}

/// The end of the JSON header of a checkpoint or classifier file (both share the preamble:
/// magic, `u32` version, `u64` header length).
fn header_end(bytes: &[u8]) -> usize {
    20 + u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize
}

#[test]
fn the_probe_sees_a_large_allocation_and_nothing_outside_it() {
    let (bytes, largest) = largest_allocation(|| vec![1u8; 5 << 20]);
    assert_eq!(largest, 5 << 20);
    drop(bytes);
    let ((), largest) = largest_allocation(|| ());
    assert_eq!(largest, 0);
}

mod idx_files {
    use super::*;
    use mnist_flow::data::idx::{self, IdxError, IMAGES_MAGIC, LABELS_MAGIC};

    /// The reader's limit on a declared payload (1 GiB).
    const MAX_PAYLOAD: u128 = 1 << 30;

    /// A few tiny images with their pixels.
    fn images() -> impl Strategy<Value = (Vec<usize>, Vec<u8>)> {
        (1usize..4, 1usize..6, 1usize..6).prop_flat_map(|(n, rows, cols)| {
            let pixels = prop::collection::vec(any::<u8>(), n * rows * cols);
            (Just(vec![n, rows, cols]), pixels)
        })
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    /// What the reader must answer for a header whose dimensions multiply to `declared`
    /// followed by `found` payload bytes.
    fn payload_verdict(err: &IdxError, declared: u128, found: usize) -> bool {
        match err {
            IdxError::BadDimensions { .. } => declared > MAX_PAYLOAD,
            IdxError::PayloadLength {
                expected, found: f, ..
            } => declared <= MAX_PAYLOAD && *expected as u128 == declared && *f == found,
            _ => false,
        }
    }

    fn dims_of(header: &[u8]) -> Vec<u32> {
        header[4..]
            .chunks(4)
            .map(|d| u32::from_be_bytes(d.try_into().unwrap()))
            .collect()
    }

    proptest! {
        #![proptest_config(settings())]

        #[test]
        fn files_cut_short_are_refused_by_where_they_end(
            (dims, pixels) in images(),
            cut in any::<Index>(),
        ) {
            let bytes = idx::encode(IMAGES_MAGIC, &dims, &pixels);
            let cut = cut.index(bytes.len());
            let (result, largest) =
                largest_allocation(|| idx::parse(&bytes[..cut], IMAGES_MAGIC, here()));
            let err = result.unwrap_err();
            let expected_header = if cut < 4 { 4 } else { 16 };
            let right = match err {
                IdxError::TruncatedHeader { expected, found, .. } => {
                    cut < 16 && expected == expected_header && found == cut
                }
                IdxError::PayloadLength { expected, found, .. } => {
                    cut >= 16 && expected == pixels.len() && found == cut - 16
                }
                _ => false,
            };
            prop_assert!(right, "cut at {cut}: {err}");
            prop_assert!(largest <= budget(cut), "{largest} bytes");
        }

        #[test]
        fn flipped_bytes_are_refused_unless_they_are_pixels(
            (dims, pixels) in images(),
            at in any::<Index>(),
            mask in 1u8..,
        ) {
            let (bytes, at) = flipped(&idx::encode(IMAGES_MAGIC, &dims, &pixels), at, mask);
            let (result, largest) =
                largest_allocation(|| idx::parse(&bytes, IMAGES_MAGIC, here()));
            match (at, result) {
                (0..=2, Err(IdxError::WrongMagic { .. })) => {}
                (3, Err(IdxError::WrongRank { expected: 3, found, .. })) => {
                    prop_assert_eq!(found, (3 ^ mask) as usize);
                }
                (4..=15, Err(err)) => {
                    let declared = dims_of(&bytes[..16]).iter().map(|&d| d as u128).product();
                    prop_assert!(payload_verdict(&err, declared, pixels.len()), "{err}");
                }
                (16.., Ok(array)) => {
                    prop_assert_eq!(array.dims, dims);
                    prop_assert_eq!(&array.data[..], &bytes[16..]);
                }
                (at, result) => prop_assert!(false, "byte {at} flipped: {result:?}"),
            }
            prop_assert!(largest <= budget(bytes.len()), "{largest} bytes");
        }

        #[test]
        fn random_bytes_are_refused_at_the_header(
            bytes in prop::collection::vec(any::<u8>(), 0..64),
            labels in any::<bool>(),
        ) {
            let magic = if labels { LABELS_MAGIC } else { IMAGES_MAGIC };
            let (result, largest) = largest_allocation(|| idx::parse(&bytes, magic, here()));
            let err = result.unwrap_err();
            let right = match err {
                IdxError::TruncatedHeader { .. } => bytes.len() < 4,
                IdxError::WrongMagic { .. } | IdxError::WrongRank { .. } => bytes.len() >= 4,
                _ => false,
            };
            prop_assert!(right, "{err}");
            prop_assert!(largest <= budget(bytes.len()), "{largest} bytes");
        }

        #[test]
        fn random_dimensions_and_payloads_are_checked_against_each_other(
            tail in prop::collection::vec(any::<u8>(), 0..48),
            labels in any::<bool>(),
        ) {
            let (magic, rank) = if labels { (LABELS_MAGIC, 1) } else { (IMAGES_MAGIC, 3) };
            let mut bytes = magic.to_be_bytes().to_vec();
            bytes.extend_from_slice(&tail);
            let (result, largest) = largest_allocation(|| idx::parse(&bytes, magic, here()));
            let header = 4 + 4 * rank;
            match result {
                Err(IdxError::TruncatedHeader { expected, found, .. }) => {
                    prop_assert!(bytes.len() < header);
                    prop_assert_eq!((expected, found), (header, bytes.len()));
                }
                Err(err) => {
                    prop_assert!(bytes.len() >= header, "{err}");
                    let declared = dims_of(&bytes[..header]).iter().map(|&d| d as u128).product();
                    let found = bytes.len() - header;
                    prop_assert!(payload_verdict(&err, declared, found), "{err}");
                }
                Ok(array) => {
                    prop_assert_eq!(array.dims.iter().product::<usize>(), array.data.len());
                    prop_assert_eq!(&array.data[..], &bytes[header..]);
                }
            }
            prop_assert!(largest <= budget(bytes.len()), "{largest} bytes");
        }

        #[test]
        fn huge_declared_dimensions_on_a_tiny_file_are_refused_without_allocating(
            dims in (1u32.., (1u32 << 12).., (1u32 << 12)..),
            tail in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let dims = [dims.0, dims.1, dims.2];
            let mut bytes = IMAGES_MAGIC.to_be_bytes().to_vec();
            for d in dims {
                bytes.extend_from_slice(&d.to_be_bytes());
            }
            bytes.extend_from_slice(&tail);
            let (result, largest) =
                largest_allocation(|| idx::parse(&bytes, IMAGES_MAGIC, here()));
            let err = result.unwrap_err();
            let declared = dims.iter().map(|&d| d as u128).product();
            prop_assert!(payload_verdict(&err, declared, tail.len()), "{err}");
            prop_assert!(largest <= budget(bytes.len()), "{largest} bytes");
        }

        #[test]
        fn damaged_gzip_is_refused_or_inflates_to_the_original(
            (dims, pixels) in images(),
            cut in any::<Index>(),
            at in any::<Index>(),
            mask in 1u8..,
        ) {
            let plain = idx::encode(IMAGES_MAGIC, &dims, &pixels);
            let gz = gzip(&plain);

            let cut = 2 + cut.index(gz.len() - 2);
            let cut_short = gz[..cut].to_vec();
            let (result, largest) = largest_allocation(|| idx::decompress(cut_short, here()));
            prop_assert!(matches!(result, Err(IdxError::Io { .. })), "cut at {cut}: {result:?}");
            prop_assert!(largest <= budget(gz.len()), "{largest} bytes");

            // The gzip header's time stamp and flags may change harmlessly; the CRC-32
            // catches any change to the content.
            let (damaged, at) = flipped(&gz, at, mask);
            let (result, largest) = largest_allocation(|| idx::decompress(damaged, here()));
            match result {
                Err(IdxError::Io { .. }) => {}
                Ok(content) => prop_assert!(at < 2 || content == plain, "byte {at} flipped"),
                Err(err) => prop_assert!(false, "byte {at} flipped: {err}"),
            }
            prop_assert!(largest <= budget(gz.len()), "{largest} bytes");
        }

        #[test]
        fn random_gzip_streams_never_panic(
            tail in prop::collection::vec(any::<u8>(), 0..256),
        ) {
            let mut raw = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
            raw.extend_from_slice(&tail);
            let (result, largest) = largest_allocation(|| {
                idx::decompress(raw, here()).and_then(|b| idx::parse(&b, LABELS_MAGIC, here()))
            });
            // Random deflate data may inflate to a few hundred times its size, never more.
            prop_assert!(largest <= budget(1024 * tail.len()), "{largest} bytes");
            if let Ok(array) = result {
                prop_assert_eq!(array.dims.iter().product::<usize>(), array.data.len());
            }
        }
    }

    #[test]
    fn images_of_two_to_the_31_squared_pixels_on_a_tiny_file_are_refused() {
        let mut bytes = IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [1u32, 1 << 31, 1 << 31] {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        bytes.extend_from_slice(&[0; 10]);
        let (result, largest) = largest_allocation(|| idx::parse(&bytes, IMAGES_MAGIC, here()));
        let err = result.unwrap_err();
        match &err {
            IdxError::BadDimensions { found, .. } => assert_eq!(found, &[1, 1 << 31, 1 << 31]),
            _ => panic!("{err}"),
        }
        assert!(largest <= budget(bytes.len()), "{largest} bytes");
    }
}

mod checkpoints {
    use super::*;
    use burn::tensor::Device;
    use mnist_flow::data::SamplerState;
    use mnist_flow::model::{Norm, UNetConfig};
    use mnist_flow::train::checkpoint::module_bytes;
    use mnist_flow::train::{Checkpoint, CheckpointError, TrainConfig};

    fn tiny_unet() -> UNetConfig {
        UNetConfig {
            channels: vec![4, 8],
            embed_dim: 4,
            norm: Norm::Group(2),
            ..UNetConfig::small()
        }
    }

    /// The record of a freshly built tiny network.
    fn tiny_record() -> &'static [u8] {
        static RECORD: OnceLock<Vec<u8>> = OnceLock::new();
        RECORD.get_or_init(|| module_bytes(&tiny_unet().init(&Device::default())))
    }

    /// A valid checkpoint of `model` with these sections.
    fn sealed(model: UNetConfig, sections: Vec<(&str, Vec<u8>)>) -> Vec<u8> {
        let sections = sections
            .into_iter()
            .map(|(n, b)| (n.to_string(), b))
            .collect();
        let sampler = SamplerState {
            seed: 1,
            epoch: 2,
            position: 3,
        };
        let config = TrainConfig::for_preset("custom", model);
        Checkpoint::new(config, 7, sampler, 1.5, sections).to_bytes()
    }

    /// A valid checkpoint of the tiny network, with model and EMA sections.
    fn valid() -> &'static [u8] {
        static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
        BYTES.get_or_init(|| {
            let record = tiny_record().to_vec();
            sealed(
                tiny_unet(),
                vec![("model", record.clone()), ("ema", record)],
            )
        })
    }

    /// The length of the valid checkpoint's payload.
    fn payload_len() -> u64 {
        (valid().len() - header_end(valid())) as u64
    }

    /// The valid checkpoint with its header's section lengths replaced.
    fn with_lengths(lengths: &[u64]) -> Vec<u8> {
        let mut checkpoint = Checkpoint::from_bytes(valid(), here()).unwrap();
        checkpoint.header.sections = lengths
            .iter()
            .enumerate()
            .map(|(i, &n)| (format!("s{i}"), n))
            .collect();
        checkpoint.to_bytes()
    }

    /// Loads the `model` section of `bytes`, noting the largest allocation.
    fn load_model(bytes: &[u8]) -> (Result<(), CheckpointError>, usize) {
        let checkpoint = Checkpoint::from_bytes(bytes, here()).unwrap();
        let device = Device::default();
        largest_allocation(|| checkpoint.model("model", &device).map(drop))
    }

    /// A network configuration that passes or narrowly fails validation, with sizes from
    /// tiny to astronomical.
    fn architectures() -> impl Strategy<Value = UNetConfig> {
        let width = || prop_oneof![1usize..=16, (1usize << 20)..=(1 << 40)];
        (
            prop::collection::vec(width(), 2..5),
            prop_oneof![1usize..=2, (1usize << 30)..],
            prop_oneof![1usize..=8, (1usize << 30)..=(1 << 50)],
            prop_oneof![1usize..=3, (1usize << 16)..=(1 << 34)],
            prop_oneof![Just(Norm::Batch), (1usize..=2).prop_map(Norm::Group)],
        )
            .prop_map(|(channels, blocks, embed_dim, patch, norm)| {
                let input_size = patch << (channels.len() - 1);
                UNetConfig {
                    channels,
                    blocks,
                    embed_dim,
                    norm,
                    patch,
                    input_size,
                    ..tiny_unet()
                }
            })
    }

    /// Whether networks of `a` and `b` hold weights of the same names and shapes (sizes of
    /// the images and the number of groups change none).
    fn same_weights(a: &UNetConfig, b: &UNetConfig) -> bool {
        let group = |c: &UNetConfig| matches!(c.norm, Norm::Group(_));
        (&a.channels, a.blocks, a.embed_dim, a.patch, group(a))
            == (&b.channels, b.blocks, b.embed_dim, b.patch, group(b))
            && (a.conditioning, a.skips, a.upsample) == (b.conditioning, b.skips, b.upsample)
    }

    proptest! {
        #![proptest_config(settings())]

        #[test]
        fn files_cut_short_are_refused_as_malformed(cut in any::<Index>()) {
            let cut = cut.index(valid().len());
            let bytes = &valid()[..cut];
            let (result, largest) = largest_allocation(|| Checkpoint::from_bytes(bytes, here()));
            let err = result.unwrap_err();
            prop_assert!(matches!(err, CheckpointError::Format { .. }), "cut at {cut}: {err}");
            prop_assert!(largest <= budget(cut), "{largest} bytes");
        }

        #[test]
        fn flipped_bytes_are_refused_by_where_they_fall(at in any::<Index>(), mask in 1u8..) {
            let (bytes, at) = flipped(valid(), at, mask);
            let (result, largest) = largest_allocation(|| Checkpoint::from_bytes(&bytes, here()));
            let payload = header_end(valid());
            match (at, result) {
                (0..=7 | 12..=19, Err(CheckpointError::Format { .. })) => {}
                (8..=11, Err(CheckpointError::Version { found, .. })) => {
                    prop_assert_ne!(found, 1);
                }
                (at, Err(CheckpointError::Checksum { .. })) if at >= payload => {}
                // The JSON header is not covered by the checksum: a flip that leaves it valid
                // JSON for the format passes, and the payload must then be the original.
                (at, Err(CheckpointError::Format { .. } | CheckpointError::Checksum { .. }))
                    if (20..payload).contains(&at) => {}
                (at, Ok(checkpoint)) if (20..payload).contains(&at) => {
                    let all: Vec<u8> =
                        checkpoint.sections.into_iter().flat_map(|(_, b)| b).collect();
                    prop_assert_eq!(&all[..], &valid()[payload..]);
                }
                (at, result) => prop_assert!(false, "byte {at} flipped: {result:?}"),
            }
            prop_assert!(largest <= budget(bytes.len()), "{largest} bytes");
        }

        #[test]
        fn random_bytes_are_refused_as_malformed(
            bytes in prop::collection::vec(any::<u8>(), 0..256),
        ) {
            let (result, largest) = largest_allocation(|| Checkpoint::from_bytes(&bytes, here()));
            let err = result.unwrap_err();
            prop_assert!(matches!(err, CheckpointError::Format { .. }), "{err}");
            prop_assert!(largest <= budget(bytes.len()), "{largest} bytes");
        }

        #[test]
        fn random_headers_of_any_declared_length_are_refused_as_malformed(
            declared in prop_oneof![any::<u64>(), 0u64..256],
            tail in prop::collection::vec(any::<u8>(), 0..256),
        ) {
            let mut bytes = b"MNFLOWCK".to_vec();
            bytes.extend_from_slice(&1u32.to_le_bytes());
            bytes.extend_from_slice(&declared.to_le_bytes());
            bytes.extend_from_slice(&tail);
            let (result, largest) = largest_allocation(|| Checkpoint::from_bytes(&bytes, here()));
            let err = result.unwrap_err();
            prop_assert!(matches!(err, CheckpointError::Format { .. }), "{err}");
            prop_assert!(largest <= budget(bytes.len()), "{largest} bytes");
        }

        #[test]
        fn section_lengths_must_add_up_to_the_payload_without_overflow(
            lengths in prop_oneof![
                prop::collection::vec(
                    prop_oneof![any::<u64>(), 0u64..100_000, Just(u64::MAX)],
                    1..4,
                ),
                // Pairs whose sum wraps around to the payload's length half of the time.
                any::<u64>().prop_map(|a| vec![a, payload_len().wrapping_sub(a)]),
            ],
        ) {
            let bytes = with_lengths(&lengths);
            let payload = (bytes.len() - header_end(&bytes)) as u64;
            let (result, largest) = largest_allocation(|| Checkpoint::from_bytes(&bytes, here()));
            let adds_up = lengths.iter().try_fold(0u64, |s, &n| s.checked_add(n)) == Some(payload);
            match result {
                // The checksum covers the sections' bytes, not where they split.
                Ok(_) => prop_assert!(adds_up),
                Err(err) => {
                    prop_assert!(!adds_up, "{err}");
                    prop_assert!(matches!(err, CheckpointError::Format { .. }), "{err}");
                }
            }
            prop_assert!(largest <= budget(bytes.len()), "{largest} bytes");
        }

        #[test]
        fn random_sections_are_refused_when_loaded(
            section in prop::collection::vec(any::<u8>(), 0..4096),
        ) {
            let (result, largest) = load_model(&sealed(tiny_unet(), vec![("model", section)]));
            let err = result.unwrap_err();
            prop_assert!(matches!(err, CheckpointError::Architecture { .. }), "{err}");
            prop_assert!(largest <= budget(tiny_record().len()), "{largest} bytes");
        }

        #[test]
        fn damaged_records_load_or_are_refused(
            flips in prop::collection::vec((any::<Index>(), 1u8..), 1..4),
        ) {
            let mut record = tiny_record().to_vec();
            for (at, mask) in flips {
                record = flipped(&record, at, mask).0;
            }
            let (result, largest) = load_model(&sealed(tiny_unet(), vec![("model", record)]));
            if let Err(err) = result {
                prop_assert!(matches!(err, CheckpointError::Architecture { .. }), "{err}");
            }
            prop_assert!(largest <= budget(tiny_record().len()), "{largest} bytes");
        }

        #[test]
        fn headers_declaring_other_or_huge_networks_are_refused_before_building(
            model in architectures(),
        ) {
            let fits = same_weights(&model, &tiny_unet());
            let bytes = sealed(model, vec![("model", tiny_record().to_vec())]);
            let (result, largest) = load_model(&bytes);
            match result {
                Ok(()) => prop_assert!(fits),
                Err(err) => {
                    prop_assert!(matches!(err, CheckpointError::Architecture { .. }), "{err}");
                }
            }
            prop_assert!(largest <= budget(tiny_record().len()), "{largest} bytes");
        }
    }

    #[test]
    fn section_lengths_that_wrap_around_to_the_payload_are_refused() {
        let bytes = with_lengths(&[u64::MAX, payload_len() + 1]);
        let err = Checkpoint::from_bytes(&bytes, here()).unwrap_err();
        assert!(matches!(err, CheckpointError::Format { .. }), "{err}");
    }

    #[test]
    fn an_odd_embedding_width_is_refused_before_building() {
        let model = UNetConfig {
            embed_dim: 5,
            ..tiny_unet()
        };
        let bytes = sealed(model, vec![("model", tiny_record().to_vec())]);
        let err = load_model(&bytes).0.unwrap_err();
        assert!(matches!(err, CheckpointError::Architecture { .. }), "{err}");
        assert!(err.to_string().contains("even"), "{err}");
    }

    #[test]
    fn the_tiny_checkpoint_loads() {
        let (result, largest) = load_model(valid());
        result.unwrap();
        assert!(largest <= budget(tiny_record().len()), "{largest} bytes");
    }
}

mod classifier_files {
    use super::*;
    use burn::module::Module;
    use burn::tensor::Device;
    use mnist_flow::data::idx::sha256_hex;
    use mnist_flow::eval::fit::FitSettings;
    use mnist_flow::eval::weights::{self, ClassifierHeader, WeightsError};
    use mnist_flow::eval::ClassifierConfig;

    fn tiny_classifier() -> ClassifierConfig {
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
            let net = tiny_classifier().init(&Device::default());
            net.into_record().into_bytes().unwrap().to_vec()
        })
    }

    /// A valid file of `config` around `record`.
    fn sealed(config: ClassifierConfig, record: &[u8]) -> Vec<u8> {
        let header = ClassifierHeader {
            config,
            fit: FitSettings::default(),
            test_accuracy: 0.5,
            dataset: "mnist".into(),
            payload_len: record.len() as u64,
            payload_sha256: sha256_hex(record),
        };
        weights::encode(&header, record)
    }

    fn valid() -> &'static [u8] {
        static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
        BYTES.get_or_init(|| sealed(tiny_classifier(), tiny_record()))
    }

    /// Reads `bytes` and builds the network, noting the largest allocation; returns the
    /// error's message, or `None` if the file loaded.
    fn load(bytes: &[u8]) -> (Option<String>, usize) {
        let device = Device::default();
        let (result, largest) = largest_allocation(|| weights::from_bytes(bytes, here(), &device));
        let message = match result {
            Ok(_) => None,
            Err(err @ WeightsError::Format { .. }) => Some(err.to_string()),
            Err(err) => panic!("only format errors can come from bytes in memory: {err}"),
        };
        (message, largest)
    }

    proptest! {
        #![proptest_config(settings())]

        #[test]
        fn files_cut_short_are_refused_by_where_they_end(cut in any::<Index>()) {
            let cut = cut.index(valid().len());
            let (message, largest) = load(&valid()[..cut]);
            let message = message.unwrap();
            let expected = match cut {
                0..20 => "magic bytes",
                cut if cut < header_end(valid()) => "header of",
                _ => "truncated",
            };
            prop_assert!(message.contains(expected), "cut at {cut}: {message}");
            prop_assert!(largest <= budget(cut), "{largest} bytes");
        }

        #[test]
        fn flipped_bytes_are_refused_by_where_they_fall(at in any::<Index>(), mask in 1u8..) {
            let (bytes, at) = flipped(valid(), at, mask);
            let (message, largest) = load(&bytes);
            let record = header_end(valid());
            let expected = match at {
                0..8 => Some("magic bytes"),
                8..12 => Some("format version"),
                12..20 => Some("header"),
                at if at >= record => Some("corrupt"),
                // Not covered by the checksum: the header may stay valid and load.
                _ => None,
            };
            match (expected, message) {
                (Some(expected), Some(message)) => {
                    prop_assert!(message.contains(expected), "byte {at}: {message}");
                }
                (Some(_), None) => prop_assert!(false, "byte {at} flipped and the file loaded"),
                (None, _) => {}
            }
            prop_assert!(largest <= budget(bytes.len()), "{largest} bytes");
        }

        #[test]
        fn random_bytes_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let (message, largest) = load(&bytes);
            prop_assert!(message.unwrap().contains("magic bytes"));
            prop_assert!(largest <= budget(bytes.len()), "{largest} bytes");
        }

        #[test]
        fn random_and_damaged_records_are_refused_or_load(
            random in prop::collection::vec(any::<u8>(), 0..4096),
            flips in prop::collection::vec((any::<Index>(), 1u8..), 1..4),
        ) {
            let (message, largest) = load(&sealed(tiny_classifier(), &random));
            prop_assert!(message.is_some());
            prop_assert!(largest <= budget(tiny_record().len()), "{largest} bytes");

            let mut record = tiny_record().to_vec();
            for (at, mask) in flips {
                record = flipped(&record, at, mask).0;
            }
            let (_, largest) = load(&sealed(tiny_classifier(), &record));
            prop_assert!(largest <= budget(tiny_record().len()), "{largest} bytes");
        }

        #[test]
        fn headers_declaring_other_or_huge_networks_are_refused_before_building(
            channels in (1usize..=4, 1usize..=4, prop_oneof![1usize..=4, (1usize << 20)..]),
            features in prop_oneof![1usize..=8, (1usize << 20)..],
            quarter_side in prop_oneof![1usize..=3, (1usize << 16)..=(1 << 40)],
        ) {
            let config = ClassifierConfig {
                channels: [channels.0, channels.1, channels.2],
                features,
                image_size: 4 * quarter_side,
                ..tiny_classifier()
            };
            let tiny = config == tiny_classifier();
            let (message, largest) = load(&sealed(config, tiny_record()));
            prop_assert_eq!(message.is_none(), tiny, "{:?}", message);
            prop_assert!(largest <= budget(tiny_record().len()), "{largest} bytes");
        }
    }

    #[test]
    fn a_feature_layer_of_two_to_the_62_weights_is_refused_before_building() {
        let config = ClassifierConfig {
            channels: [1, 1, 1 << 30],
            image_size: 4 << 15,
            ..tiny_classifier()
        };
        let (message, largest) = load(&sealed(config, tiny_record()));
        let message = message.unwrap();
        assert!(message.contains("weights"), "{message}");
        assert!(largest <= budget(tiny_record().len()), "{largest} bytes");
    }
}
