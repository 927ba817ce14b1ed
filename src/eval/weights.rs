//! The classifier's weights file: what it is, how it was trained and how well it scored,
//! then its weights, with a checksum.
//!
//! Layout: the 8-byte magic `MNFLOWCL`, a little-endian `u32` format version, a `u64` header
//! length, the JSON [`ClassifierHeader`], then the burn record of the network. The header
//! records the record's length and SHA-256, so a truncated or altered file is refused before
//! any byte reaches burn. Files are written atomically.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::classifier::{Classifier, ClassifierConfig};
use super::fit::FitSettings;
use crate::data::idx::sha256_hex;

/// First bytes of every classifier file.
pub const MAGIC: &[u8; 8] = b"MNFLOWCL";
/// The format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// What a classifier file says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierHeader {
    /// The network's shape.
    pub config: ClassifierConfig,
    /// How it was trained.
    pub fit: FitSettings,
    /// Its accuracy on the test set of `dataset`.
    pub test_accuracy: f64,
    /// Which data it was trained on (`mnist`, or the directory given with `--data`).
    pub dataset: String,
    /// Length of the weights record in bytes.
    pub payload_len: u64,
    /// SHA-256 of the weights record.
    pub payload_sha256: String,
}

/// Errors reading or writing a classifier file; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error(transparent)]
    Write(#[from] crate::atomic::WriteError),
    /// Not a classifier file of this version, or damaged.
    #[error("{path}: not a usable mnist-flow classifier file: {detail}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What was expected and what was found.
        detail: String,
    },
}

/// Writes `net` with its header, atomically.
pub fn save(
    net: &Classifier,
    fit: &FitSettings,
    test_accuracy: f64,
    dataset: &str,
    path: &Path,
) -> Result<(), WeightsError> {
    let record = net
        .clone()
        .into_record()
        .into_bytes()
        .expect("a record serialises to memory")
        .to_vec();
    let header = ClassifierHeader {
        config: net.config().clone(),
        fit: fit.clone(),
        test_accuracy,
        dataset: dataset.to_string(),
        payload_len: record.len() as u64,
        payload_sha256: sha256_hex(&record),
    };
    Ok(crate::atomic::write(path, &encode(&header, &record))?)
}

/// The bytes of a classifier file: `header` exactly as given, then `record`. Setting the
/// header's `payload_len` and `payload_sha256` to match `record` is the caller's part.
pub fn encode(header: &ClassifierHeader, record: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(header).expect("the header serialises");
    let mut out = Vec::with_capacity(20 + json.len() + record.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(record);
    out
}

/// Reads, verifies and builds the classifier in `path`.
pub fn load(path: &Path, device: &Device) -> Result<(ClassifierHeader, Classifier), WeightsError> {
    let bytes = std::fs::read(path).map_err(|source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    from_bytes(&bytes, path, device)
}

/// Verifies the bytes of a classifier file and builds the network they hold; `path` is only
/// used in messages.
///
/// The header's network is checked against the record before it is built: one with more
/// weights than the record has bytes is refused, so that a header cannot make the loader
/// allocate more than a small multiple of the file.
pub fn from_bytes(
    bytes: &[u8],
    path: &Path,
    device: &Device,
) -> Result<(ClassifierHeader, Classifier), WeightsError> {
    let bad = |detail: String| WeightsError::Format {
        path: path.to_path_buf(),
        detail,
    };
    if bytes.len() < 20 || &bytes[..8] != MAGIC {
        return Err(bad(format!(
            "expected the magic bytes {:?}, found {} bytes starting {:?}",
            String::from_utf8_lossy(MAGIC),
            bytes.len(),
            String::from_utf8_lossy(&bytes[..bytes.len().min(8)])
        )));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(bad(format!(
            "format version {version}, this build reads version {FORMAT_VERSION}"
        )));
    }
    let header_len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let rest = &bytes[20..];
    if header_len > rest.len() as u64 {
        return Err(bad(format!(
            "header of {header_len} bytes declared, only {} bytes follow",
            rest.len()
        )));
    }
    let (json, record) = rest.split_at(header_len as usize);
    let header: ClassifierHeader = serde_json::from_slice(json)
        .map_err(|e| bad(format!("header is not valid JSON for this version: {e}")))?;
    if header.payload_len != record.len() as u64 {
        return Err(bad(format!(
            "weights of {} bytes declared, found {} (truncated or padded)",
            header.payload_len,
            record.len()
        )));
    }
    let found = sha256_hex(record);
    if found != header.payload_sha256 {
        return Err(bad(format!(
            "weights are corrupt: SHA-256 {found}, header records {}",
            header.payload_sha256
        )));
    }
    header.config.validate().map_err(bad)?;
    match weight_floor(&header.config) {
        Some(floor) if floor <= record.len() as u64 => {}
        floor => {
            return Err(bad(format!(
                "the header's network holds {} weights, the record only {} bytes",
                floor.map_or("more than 2^64".into(), |n| n.to_string()),
                record.len()
            )))
        }
    }
    let record = crate::record::decode(record).map_err(bad)?;
    let net = header
        .config
        .init(device)
        .try_load_record(record)
        .map_err(|e| bad(format!("weights do not fit the header's network: {e}")))?;
    Ok((header, net))
}

/// The weights of the network's convolutions and linear layers, biases and normalisation
/// aside (`None` past `u64`): the side is halved twice before the feature layer.
fn weight_floor(config: &ClassifierConfig) -> Option<u64> {
    let wide = |n: usize| u64::try_from(n).ok();
    let [a, b, c] = [
        wide(config.channels[0])?,
        wide(config.channels[1])?,
        wide(config.channels[2])?,
    ];
    let (features, side) = (wide(config.features)?, wide(config.image_size / 4)?);
    let convs = a
        .checked_add(a.checked_mul(b)?)?
        .checked_add(b.checked_mul(c)?)?;
    let flat = c.checked_mul(side)?.checked_mul(side)?;
    convs
        .checked_mul(9)?
        .checked_add(flat.checked_mul(features)?)?
        .checked_add(features.checked_mul(10)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Tensor;

    #[test]
    fn a_saved_classifier_loads_to_the_same_outputs_and_damage_is_refused() {
        let device = Device::default();
        let net = ClassifierConfig::default().init(&device).valid();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.mfcl");
        save(&net, &FitSettings::default(), 0.5, "mnist", &path).unwrap();

        let (header, back) = load(&path, &device).unwrap();
        assert_eq!(header.test_accuracy, 0.5);
        let x = Tensor::<4>::ones([2, 1, 28, 28], &device);
        let a = net.forward(x.clone()).try_into_vec_as::<f32>().unwrap();
        let b = back.forward(x).try_into_vec_as::<f32>().unwrap();
        assert_eq!(a, b);

        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let err = load(&path, &device).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");

        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = load(&path, &device).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }
}
