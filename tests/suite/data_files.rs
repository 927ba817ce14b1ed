//! Opening dataset directories: good files, and each kind of bad one.

use std::collections::HashMap;

use mnist_flow::data::idx::{encode, sha256_hex, IdxError, IMAGES_MAGIC, LABELS_MAGIC};
use mnist_flow::data::{Dataset, DatasetError, Split};

use crate::fixtures::{synthetic, write_dataset};

#[test]
fn a_written_dataset_reads_back_identically() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic(12);
    write_dataset(dir.path(), &data);
    let read = Dataset::open(dir.path(), Split::Train, None).unwrap();
    assert_eq!(read.images, data.images);
    assert_eq!(read.labels, data.labels);
    assert_eq!((read.rows, read.cols), (28, 28));
}

#[test]
fn mismatched_counts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &synthetic(12));
    let labels = encode(LABELS_MAGIC, &[11], &[0; 11]);
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), labels).unwrap();
    let err = Dataset::open(dir.path(), Split::Train, None).unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::Idx(IdxError::CountMismatch {
                image_count: 12,
                label_count: 11,
                ..
            })
        ),
        "{err}"
    );
}

#[test]
fn a_label_outside_the_classes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &synthetic(3));
    std::fs::write(
        dir.path().join("train-labels-idx1-ubyte"),
        encode(LABELS_MAGIC, &[3], &[1, 12, 0]),
    )
    .unwrap();
    let err = Dataset::open(dir.path(), Split::Train, None).unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::Idx(IdxError::LabelRange {
                label: 12,
                index: 1,
                ..
            })
        ),
        "{err}"
    );
}

#[test]
fn a_checksum_mismatch_is_refused_and_a_match_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic(5);
    write_dataset(dir.path(), &data);
    let images = encode(IMAGES_MAGIC, &[5, 28, 28], &data.images);
    let labels = encode(LABELS_MAGIC, &[5], &data.labels);
    let mut digests = HashMap::new();
    digests.insert("train-images-idx3-ubyte".to_string(), sha256_hex(&images));
    digests.insert("train-labels-idx1-ubyte".to_string(), sha256_hex(&labels));
    Dataset::open(dir.path(), Split::Train, Some(&digests)).unwrap();

    digests.insert("train-labels-idx1-ubyte".to_string(), "00".repeat(32));
    let err = Dataset::open(dir.path(), Split::Train, Some(&digests)).unwrap_err();
    assert!(
        matches!(err, DatasetError::Idx(IdxError::Checksum { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
}

#[test]
fn a_missing_file_names_both_places_looked() {
    let dir = tempfile::tempdir().unwrap();
    let err = Dataset::open(dir.path(), Split::Test, None).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DatasetError::Missing { .. }));
    assert!(
        msg.contains("t10k-images-idx3-ubyte.gz") && msg.contains("not found"),
        "{msg}"
    );
}

#[test]
fn a_truncated_file_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &synthetic(4));
    let path = dir.path().join("train-images-idx3-ubyte");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let err = Dataset::open(dir.path(), Split::Train, None).unwrap_err();
    assert!(
        matches!(err, DatasetError::Idx(IdxError::PayloadLength { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("train-images-idx3-ubyte"), "{err}");
}

#[test]
fn the_shipped_mnist_matches_its_digests() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let digests = mnist_flow::data::dataset::mnist_digests();
    let test = Dataset::open(&dir, Split::Test, Some(&digests)).unwrap();
    assert_eq!((test.len(), test.rows, test.cols), (10_000, 28, 28));
}
