//! An MNIST-format dataset in memory: images as bytes, labels as class indices.
//!
//! The four files are looked up in a directory by their official names, gzip or plain.
//! The shipped MNIST files are checked against their SHA-256 digests; a directory of another
//! dataset is checked against its own `SHA256SUMS` when it has one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::idx::{self, IdxError, IMAGES_MAGIC, LABELS_MAGIC};

/// Number of classes in every MNIST-format dataset.
pub const CLASSES: usize = 10;

/// SHA-256 of the decompressed official MNIST files.
pub const MNIST_SHA256: [(&str, &str); 4] = [
    (
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    (
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
    (
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    (
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
];

/// Which half of a dataset to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The 60,000-image training set (`train-*`).
    Train,
    /// The 10,000-image test set (`t10k-*`).
    Test,
}

impl Split {
    fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// Errors opening a dataset directory.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// A file is malformed.
    #[error(transparent)]
    Idx(#[from] IdxError),
    /// Neither the plain nor the gzip file exists.
    #[error("{name} not found: looked for {plain} and {gz}")]
    Missing {
        /// The base name of the file.
        name: String,
        /// The plain path tried.
        plain: PathBuf,
        /// The gzip path tried.
        gz: PathBuf,
    },
}

/// Images and labels of one split, kept as bytes.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Pixel bytes, `len × rows × cols`, row-major.
    pub images: Vec<u8>,
    /// One class index per image.
    pub labels: Vec<u8>,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the dataset holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.rows * self.cols
    }

    /// The bytes of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.pixels();
        &self.images[i * n..(i + 1) * n]
    }

    /// The first `n` images (or all, if fewer).
    pub fn head(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            images: self.images[..n * self.pixels()].to_vec(),
            labels: self.labels[..n].to_vec(),
            rows: self.rows,
            cols: self.cols,
        }
    }

    /// All pixels scaled from `0..=255` to `[-1, 1]`.
    pub fn scaled_pixels(&self) -> Vec<f32> {
        self.images.iter().map(|&p| to_unit_range(p)).collect()
    }

    /// Builds a dataset from parsed image and label arrays, checking that they agree.
    pub fn from_arrays(
        images: idx::IdxArray,
        images_path: &Path,
        labels: idx::IdxArray,
        labels_path: &Path,
    ) -> Result<Self, IdxError> {
        let (count, rows, cols) = (images.dims[0], images.dims[1], images.dims[2]);
        if rows == 0 || cols == 0 {
            return Err(IdxError::BadDimensions {
                path: images_path.to_path_buf(),
                expected: "rows and columns of at least 1".into(),
                found: images.dims.iter().map(|&d| d as u32).collect(),
            });
        }
        if count != labels.dims[0] {
            return Err(IdxError::CountMismatch {
                images: images_path.to_path_buf(),
                image_count: count,
                labels: labels_path.to_path_buf(),
                label_count: labels.dims[0],
            });
        }
        if let Some((index, &label)) = labels
            .data
            .iter()
            .enumerate()
            .find(|(_, &l)| l as usize >= CLASSES)
        {
            return Err(IdxError::LabelRange {
                path: labels_path.to_path_buf(),
                label,
                index,
                classes: CLASSES,
            });
        }
        Ok(Dataset {
            images: images.data,
            labels: labels.data,
            rows,
            cols,
        })
    }

    /// Reads one split from `dir`.
    ///
    /// When `verify` holds digests (file name → hex SHA-256), each file's decompressed content
    /// must match its digest.
    pub fn open(
        dir: &Path,
        split: Split,
        verify: Option<&HashMap<String, String>>,
    ) -> Result<Self, DatasetError> {
        let images_name = format!("{}-images-idx3-ubyte", split.prefix());
        let labels_name = format!("{}-labels-idx1-ubyte", split.prefix());
        let (images_path, images_bytes) = read_named(dir, &images_name, verify)?;
        let (labels_path, labels_bytes) = read_named(dir, &labels_name, verify)?;
        let images = idx::parse(&images_bytes, IMAGES_MAGIC, &images_path)?;
        let labels = idx::parse(&labels_bytes, LABELS_MAGIC, &labels_path)?;
        Ok(Self::from_arrays(
            images,
            &images_path,
            labels,
            &labels_path,
        )?)
    }
}

/// Maps a pixel byte to `[-1, 1]`.
pub fn to_unit_range(p: u8) -> f32 {
    p as f32 / 127.5 - 1.0
}

/// Maps a value in `[-1, 1]` back to a pixel byte, clamping outside values.
pub fn to_byte(v: f32) -> u8 {
    ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
}

/// The built-in digests of the official MNIST files.
pub fn mnist_digests() -> HashMap<String, String> {
    MNIST_SHA256
        .iter()
        .map(|(n, d)| (n.to_string(), d.to_string()))
        .collect()
}

/// Reads the digests of a `SHA256SUMS` file in `dir`, if there is one (`digest  name` lines).
pub fn digests_in(dir: &Path) -> Option<HashMap<String, String>> {
    let text = std::fs::read_to_string(dir.join("SHA256SUMS")).ok()?;
    let map = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let digest = parts.next()?;
            let name = parts.next()?;
            Some((
                name.trim_start_matches('*').to_string(),
                digest.to_lowercase(),
            ))
        })
        .collect();
    Some(map)
}

fn read_named(
    dir: &Path,
    name: &str,
    verify: Option<&HashMap<String, String>>,
) -> Result<(PathBuf, Vec<u8>), DatasetError> {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    let path = if plain.is_file() {
        plain
    } else if gz.is_file() {
        gz
    } else {
        return Err(DatasetError::Missing {
            name: name.into(),
            plain,
            gz,
        });
    };
    let bytes = idx::read_bytes(&path)?;
    if let Some(expected) = verify.and_then(|v| v.get(name)) {
        let found = idx::sha256_hex(&bytes);
        if &found != expected {
            return Err(IdxError::Checksum {
                path,
                expected: expected.clone(),
                found,
            }
            .into());
        }
    }
    Ok((path, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_maps_bytes_onto_minus_one_to_one() {
        assert_eq!(to_unit_range(0), -1.0);
        assert_eq!(to_unit_range(255), 1.0);
        for p in [0u8, 1, 127, 128, 254, 255] {
            assert_eq!(to_byte(to_unit_range(p)), p);
        }
    }
}
