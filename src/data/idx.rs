//! The IDX file format of MNIST and its relatives (Fashion-MNIST, KMNIST).
//!
//! An IDX file is a big-endian header followed by a dense `u8` payload:
//! two zero bytes, a type code (0x08 for unsigned bytes), the rank, then one `u32` per
//! dimension. MNIST images are rank 3 (`count × rows × cols`, magic 2051) and labels rank 1
//! (`count`, magic 2049). Files may be gzip-compressed; the reader recognises the gzip magic.
//!
//! Every field is checked before it is trusted: the payload size is computed with overflow
//! checks and compared with the bytes actually present, so a lying header cannot make the
//! reader allocate or index out of bounds.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

/// Magic number of an IDX file of unsigned-byte images (rank 3).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned-byte labels (rank 1).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// The largest payload the reader accepts (1 GiB); larger declared sizes are refused.
const MAX_PAYLOAD: usize = 1 << 30;
/// The largest decompressed file the reader accepts: the largest payload behind the longest
/// header (rank 255). A gzip stream that inflates past it is refused while it inflates.
const MAX_FILE: usize = MAX_PAYLOAD + 4 + 4 * 255;

/// What went wrong while reading an IDX file. Each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The header is shorter than its declared rank requires.
    #[error("{path}: truncated header: expected at least {expected} bytes, found {found}")]
    TruncatedHeader {
        /// The file.
        path: PathBuf,
        /// Bytes the header needs.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// The magic number is not the one this kind of file must have.
    #[error("{path}: wrong magic number: expected {expected} ({kind}), found {found}")]
    WrongMagic {
        /// The file.
        path: PathBuf,
        /// The magic number required.
        expected: u32,
        /// The magic number in the file.
        found: u32,
        /// What kind of file was expected.
        kind: &'static str,
    },
    /// The header declares a rank other than the one this kind of file has.
    #[error("{path}: wrong rank: expected {expected} dimensions ({kind}), found {found}")]
    WrongRank {
        /// The file.
        path: PathBuf,
        /// The rank required.
        expected: usize,
        /// The rank declared.
        found: usize,
        /// What kind of file was expected.
        kind: &'static str,
    },
    /// A dimension has a value the caller cannot use.
    #[error("{path}: bad dimensions: expected {expected}, found {found:?}")]
    BadDimensions {
        /// The file.
        path: PathBuf,
        /// A description of the dimensions required.
        expected: String,
        /// The dimensions in the header.
        found: Vec<u32>,
    },
    /// The payload holds a different number of bytes than the header declares.
    #[error("{path}: payload length: expected {expected} bytes from the header, found {found}")]
    PayloadLength {
        /// The file.
        path: PathBuf,
        /// Bytes the header declares.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// Images and labels disagree in count.
    #[error(
        "{images} has {image_count} images but {labels} has {label_count} labels: counts must match"
    )]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// Number of images.
        image_count: usize,
        /// The label file.
        labels: PathBuf,
        /// Number of labels.
        label_count: usize,
    },
    /// A label is outside the range of classes.
    #[error("{path}: label {label} at index {index} is outside 0..{classes}")]
    LabelRange {
        /// The file.
        path: PathBuf,
        /// The offending value.
        label: u8,
        /// Its position.
        index: usize,
        /// The number of classes.
        classes: usize,
    },
    /// The file inflates to more bytes than any accepted IDX file holds.
    #[error("{path}: decompresses to more than {limit} bytes, more than any accepted IDX file")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The most bytes accepted.
        limit: usize,
    },
    /// The decompressed content does not match the recorded SHA-256.
    #[error("{path}: checksum mismatch: expected SHA-256 {expected}, found {found}")]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The recorded digest.
        expected: String,
        /// The digest of the content read.
        found: String,
    },
}

/// A decoded IDX array of unsigned bytes: its dimensions and its payload in row-major order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Size of each dimension, outermost first.
    pub dims: Vec<usize>,
    /// The payload, `dims.iter().product()` bytes.
    pub data: Vec<u8>,
}

/// Reads a whole file, transparently decompressing gzip (recognised by its magic bytes).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, IdxError> {
    let raw = std::fs::read(path).map_err(|source| IdxError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decompress(raw, path)
}

/// The content of a file's bytes: gzip (recognised by its magic bytes) is inflated, anything
/// else is returned as it is. Inflation stops with [`IdxError::TooLarge`] past the largest
/// file the reader accepts, so a small compressed file cannot claim unbounded memory.
///
/// `path` is only used in error messages.
pub fn decompress(raw: Vec<u8>, path: &Path) -> Result<Vec<u8>, IdxError> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        inflate(&raw, MAX_FILE, path)
    } else {
        Ok(raw)
    }
}

fn inflate(gz: &[u8], limit: usize, path: &Path) -> Result<Vec<u8>, IdxError> {
    let mut out = Vec::new();
    GzDecoder::new(gz)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|source| IdxError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if out.len() > limit {
        return Err(IdxError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(out)
}

/// Parses IDX bytes, requiring the given magic number (which fixes the rank).
///
/// `path` is only used in error messages.
pub fn parse(bytes: &[u8], magic: u32, path: &Path) -> Result<IdxArray, IdxError> {
    let kind = if magic == IMAGES_MAGIC {
        "images"
    } else {
        "labels"
    };
    if bytes.len() < 4 {
        return Err(IdxError::TruncatedHeader {
            path: path.to_path_buf(),
            expected: 4,
            found: bytes.len(),
        });
    }
    let found = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let rank = (magic & 0xff) as usize;
    if found >> 8 == magic >> 8 && found != magic {
        return Err(IdxError::WrongRank {
            path: path.to_path_buf(),
            expected: rank,
            found: (found & 0xff) as usize,
            kind,
        });
    }
    if found != magic {
        return Err(IdxError::WrongMagic {
            path: path.to_path_buf(),
            expected: magic,
            found,
            kind,
        });
    }

    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(IdxError::TruncatedHeader {
            path: path.to_path_buf(),
            expected: header,
            found: bytes.len(),
        });
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| {
            let at = 4 + 4 * i;
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize
        })
        .collect();

    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_PAYLOAD)
        .ok_or_else(|| IdxError::BadDimensions {
            path: path.to_path_buf(),
            expected: format!("a payload of at most {MAX_PAYLOAD} bytes"),
            found: dims.iter().map(|&d| d as u32).collect(),
        })?;
    let payload = &bytes[header..];
    if payload.len() != expected {
        return Err(IdxError::PayloadLength {
            path: path.to_path_buf(),
            expected,
            found: payload.len(),
        });
    }
    Ok(IdxArray {
        dims,
        data: payload.to_vec(),
    })
}

/// Encodes an array as IDX bytes with the given magic number (uncompressed).
///
/// # Panics
/// If the rank implied by `magic` differs from `dims.len()`, or a dimension exceeds `u32`:
/// both are programming errors, not input errors.
pub fn encode(magic: u32, dims: &[usize], data: &[u8]) -> Vec<u8> {
    assert_eq!(
        (magic & 0xff) as usize,
        dims.len(),
        "the magic number fixes the rank"
    );
    assert_eq!(
        dims.iter().product::<usize>(),
        data.len(),
        "payload must match dimensions"
    );
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend_from_slice(&magic.to_be_bytes());
    for &d in dims {
        let d = u32::try_from(d).expect("IDX dimensions fit in u32");
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Hex SHA-256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn here() -> &'static Path {
        Path::new("test.idx")
    }

    #[test]
    fn round_trip_images() {
        let data: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8).collect();
        let bytes = encode(IMAGES_MAGIC, &[2, 3, 4], &data);
        let array = parse(&bytes, IMAGES_MAGIC, here()).unwrap();
        assert_eq!(array.dims, vec![2, 3, 4]);
        assert_eq!(array.data, data);
    }

    #[test]
    fn wrong_magic_is_refused() {
        let mut bytes = encode(IMAGES_MAGIC, &[1, 1, 1], &[0]);
        bytes[2] = 0x0d; // float32 data: not what MNIST images hold
        let err = parse(&bytes, IMAGES_MAGIC, here()).unwrap_err();
        assert!(
            matches!(err, IdxError::WrongMagic { found: 0x0d03, .. }),
            "{err}"
        );
    }

    #[test]
    fn wrong_rank_is_refused() {
        let mut bytes = vec![0, 0, 8, 2];
        bytes.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 9]);
        let err = parse(&bytes, IMAGES_MAGIC, here()).unwrap_err();
        assert!(
            matches!(
                err,
                IdxError::WrongRank {
                    expected: 3,
                    found: 2,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn truncated_payload_is_refused() {
        let mut bytes = encode(LABELS_MAGIC, &[5], &[1, 2, 3, 4, 5]);
        bytes.pop();
        let err = parse(&bytes, LABELS_MAGIC, here()).unwrap_err();
        assert!(
            matches!(
                err,
                IdxError::PayloadLength {
                    expected: 5,
                    found: 4,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn truncated_header_is_refused() {
        let bytes = encode(IMAGES_MAGIC, &[1, 1, 1], &[0]);
        let err = parse(&bytes[..9], IMAGES_MAGIC, here()).unwrap_err();
        assert!(
            matches!(
                err,
                IdxError::TruncatedHeader {
                    expected: 16,
                    found: 9,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn huge_declared_dimensions_are_refused_without_allocating() {
        let mut bytes = IMAGES_MAGIC.to_be_bytes().to_vec();
        for _ in 0..3 {
            bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        }
        let err = parse(&bytes, IMAGES_MAGIC, here()).unwrap_err();
        assert!(matches!(err, IdxError::BadDimensions { .. }), "{err}");
    }

    #[test]
    fn gzip_that_inflates_past_the_limit_is_refused() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[0; 1000]).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(inflate(&gz, 1000, here()).unwrap().len(), 1000);
        let err = inflate(&gz, 999, here()).unwrap_err();
        assert!(
            matches!(err, IdxError::TooLarge { limit: 999, .. }),
            "{err}"
        );
    }

    #[test]
    fn gzip_is_decompressed() {
        use std::io::Write;
        let plain = encode(LABELS_MAGIC, &[3], &[7, 8, 9]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let dir = std::env::temp_dir().join(format!("mnist-flow-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("labels.gz");
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        assert_eq!(read_bytes(&path).unwrap(), plain);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
