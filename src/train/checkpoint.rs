//! Checkpoint files: the run's config, where it stands, and named binary sections (model,
//! EMA and optimiser state as burn records).
//!
//! Layout: the 8-byte magic `MNFLOWCK`, a little-endian `u32` format version, a `u64` header
//! length, the JSON header, then the sections back to back. The header lists each section's
//! length and the SHA-256 of all section bytes, so truncation and corruption are detected
//! before any byte reaches burn. Files are written atomically.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use crate::data::idx::sha256_hex;
use crate::data::SamplerState;
use crate::model::{UNet, UNetConfig};

/// First bytes of every checkpoint.
pub const MAGIC: &[u8; 8] = b"MNFLOWCK";
/// The format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Errors reading or writing a checkpoint; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
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
    /// The bytes are not a checkpoint of this format.
    #[error("{path}: not a mnist-flow checkpoint: {detail}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What was expected and found.
        detail: String,
    },
    /// Written by another format version.
    #[error("{path}: checkpoint format version {found}, this build reads version {expected}")]
    Version {
        /// The file.
        path: PathBuf,
        /// The version this build reads.
        expected: u32,
        /// The version in the file.
        found: u32,
    },
    /// The payload does not match its recorded checksum.
    #[error("{path}: checkpoint is corrupt: payload SHA-256 {found}, header records {expected}")]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The recorded digest.
        expected: String,
        /// The digest of the bytes present.
        found: String,
    },
    /// A section the caller needs is absent.
    #[error("{path}: checkpoint has no '{name}' section (it has: {present})")]
    MissingSection {
        /// The file.
        path: PathBuf,
        /// The section asked for.
        name: String,
        /// The sections present.
        present: String,
    },
    /// The weights do not fit the architecture in the header.
    #[error("{path}: section '{name}' does not match the configured architecture: {detail}")]
    Architecture {
        /// The file.
        path: PathBuf,
        /// The section.
        name: String,
        /// What burn reported.
        detail: String,
    },
}

/// The JSON header of a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    /// The run's settings (the model architecture among them).
    pub config: TrainConfig,
    /// Optimiser steps taken.
    pub step: u64,
    /// Where the data order stands.
    pub sampler: SamplerState,
    /// Training time spent so far, in seconds.
    pub seconds: f64,
    /// Names and lengths of the sections, in file order.
    pub sections: Vec<(String, u64)>,
    /// SHA-256 of all section bytes.
    pub payload_sha256: String,
}

/// A checkpoint in memory: header and raw sections.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The header.
    pub header: Header,
    /// `(name, bytes)` of each section.
    pub sections: Vec<(String, Vec<u8>)>,
    /// Where it was read from (for messages).
    pub path: PathBuf,
}

/// Serialises a module's record.
pub fn module_bytes(model: &UNet) -> Vec<u8> {
    let bytes = model
        .clone()
        .into_record()
        .into_bytes()
        .expect("a record serialises to memory");
    bytes.to_vec()
}

/// Serialises an optimiser's state.
pub fn optimizer_bytes(optim: &ModuleOptimizer) -> Vec<u8> {
    optim
        .into_bytes()
        .expect("optimiser state serialises to memory")
        .to_vec()
}

impl Checkpoint {
    /// Assembles a checkpoint; `seconds`, `step` and `sampler` describe where the run stands.
    pub fn new(
        config: TrainConfig,
        step: u64,
        sampler: SamplerState,
        seconds: f64,
        sections: Vec<(String, Vec<u8>)>,
    ) -> Self {
        let payload_sha256 = payload_digest(&sections);
        let lengths = sections
            .iter()
            .map(|(n, b)| (n.clone(), b.len() as u64))
            .collect();
        let header = Header {
            config,
            step,
            sampler,
            seconds,
            sections: lengths,
            payload_sha256,
        };
        Self {
            header,
            sections,
            path: PathBuf::new(),
        }
    }

    /// The encoded file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).expect("the header serialises");
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        for (_, bytes) in &self.sections {
            out.extend_from_slice(bytes);
        }
        out
    }

    /// Writes the file atomically.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        Ok(crate::atomic::write(path, &self.to_bytes())?)
    }

    /// Reads and verifies a file.
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, path)
    }

    /// Decodes and verifies bytes; `path` is used in messages.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, CheckpointError> {
        let format = |detail: String| CheckpointError::Format {
            path: path.to_path_buf(),
            detail,
        };
        if bytes.len() < 20 || &bytes[..8] != MAGIC {
            return Err(format(format!(
                "expected the magic bytes {:?} and a 20-byte preamble, found {} bytes starting {:?}",
                String::from_utf8_lossy(MAGIC),
                bytes.len(),
                String::from_utf8_lossy(&bytes[..bytes.len().min(8)])
            )));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(CheckpointError::Version {
                path: path.to_path_buf(),
                expected: FORMAT_VERSION,
                found: version,
            });
        }
        let header_len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
        let rest = &bytes[20..];
        if header_len > rest.len() as u64 {
            return Err(format(format!(
                "header of {header_len} bytes declared, only {} bytes follow",
                rest.len()
            )));
        }
        let (header, mut payload) = rest.split_at(header_len as usize);
        let header: Header = serde_json::from_slice(header)
            .map_err(|e| format(format!("header is not valid JSON for this version: {e}")))?;

        // Checked: lengths that wrap around to the payload's size must not reach `split_at`.
        let declared = header
            .sections
            .iter()
            .try_fold(0u64, |sum, (_, n)| sum.checked_add(*n))
            .ok_or_else(|| format("section lengths add up past 2^64 bytes".into()))?;
        if declared != payload.len() as u64 {
            return Err(format(format!(
                "sections declare {declared} bytes, found {} (truncated or padded)",
                payload.len()
            )));
        }
        let mut sections = Vec::with_capacity(header.sections.len());
        for (name, len) in &header.sections {
            let (section, tail) = payload.split_at(*len as usize);
            sections.push((name.clone(), section.to_vec()));
            payload = tail;
        }
        let found = payload_digest(&sections);
        if found != header.payload_sha256 {
            return Err(CheckpointError::Checksum {
                path: path.to_path_buf(),
                expected: header.payload_sha256.clone(),
                found,
            });
        }
        Ok(Self {
            header,
            sections,
            path: path.to_path_buf(),
        })
    }

    /// The bytes of a section.
    pub fn section(&self, name: &str) -> Result<&[u8], CheckpointError> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
            .ok_or_else(|| CheckpointError::MissingSection {
                path: self.path.clone(),
                name: name.into(),
                present: self
                    .sections
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Whether a section is present.
    pub fn has(&self, name: &str) -> bool {
        self.sections.iter().any(|(n, _)| n == name)
    }

    /// Builds the network of the header and loads a section's weights into it.
    ///
    /// The header's architecture is checked against the section before anything is built: a
    /// network with more weights than the section has bytes is refused, so that a header
    /// cannot make the loader allocate more than a small multiple of the file.
    pub fn model(&self, name: &str, device: &Device) -> Result<UNet, CheckpointError> {
        let bytes = self.section(name)?;
        let arch = |detail: String| CheckpointError::Architecture {
            path: self.path.clone(),
            name: name.into(),
            detail,
        };
        let config = &self.header.config.model;
        config.validate().map_err(arch)?;
        match weight_floor(config) {
            Some(floor) if floor <= bytes.len() as u64 => {}
            floor => {
                return Err(arch(format!(
                    "the header's network holds {} weights, the section only {} bytes",
                    floor.map_or("more than 2^64".into(), |n| format!("at least {n}")),
                    bytes.len()
                )))
            }
        }
        let record = crate::record::decode(bytes).map_err(arch)?;
        self.header
            .config
            .model
            .init(device)
            .try_load_record(record)
            .map_err(|e| arch(format!("{e}")))
    }
}

/// The fewest weights a network of this shape holds (`None` past `u64`), counting only what
/// every wiring has: at each level, `blocks` residual blocks of two 3×3 convolutions at the
/// level's width and a conditioning layer from the embedding; the stem and head, 3×3
/// convolutions over `patch²` channels; conditioning MLPs of at least `embed_dim²` weights.
/// Every input to the network's size appears, so a bounded floor bounds the network.
fn weight_floor(config: &UNetConfig) -> Option<u64> {
    let wide = |n: usize| u64::try_from(n).ok();
    let (blocks, embed, patch) = (
        wide(config.blocks)?,
        wide(config.embed_dim)?,
        wide(config.patch)?,
    );
    let first = wide(*config.channels.first()?)?;
    let ends = patch
        .checked_mul(patch)?
        .checked_mul(first)?
        .checked_mul(18)?;
    let mut total = embed.checked_mul(embed)?.checked_add(ends)?;
    for &channels in &config.channels {
        let c = wide(channels)?;
        let block = c
            .checked_mul(c)?
            .checked_mul(18)?
            .checked_add(c.checked_mul(embed)?)?;
        total = total.checked_add(block.checked_mul(blocks)?)?;
    }
    Some(total)
}

fn payload_digest(sections: &[(String, Vec<u8>)]) -> String {
    let all: Vec<u8> = sections
        .iter()
        .flat_map(|(_, b)| b.iter().copied())
        .collect();
    sha256_hex(&all)
}
