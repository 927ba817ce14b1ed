//! Moving a velocity network to and from PyTorch. Weights leave as safetensors, written by
//! burn's own store with PyTorch's conventions (linear weights transposed, norm `gamma`/`beta`
//! named `weight`/`bias`) and the network's configuration in the file's metadata, so that a
//! PyTorch module with the same attribute names loads them with `load_state_dict`.
//!
//! Weights also come in from the notebook this project grew from: its PyTorch `state_dict`
//! (`.pth`) is read by burn's PyTorch reader, its names mapped onto ours, and its widths
//! read off the tensors' shapes, giving a network of the `reference` family.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::{Module, Param};
use burn::store::{
    ApplyError, BurnToPyTorchAdapter, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter,
    PytorchStore, SafetensorsStore,
};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::{UNet, UNetConfig};

/// The metadata key that holds the network's configuration as JSON.
pub const CONFIG_KEY: &str = "mnist_flow.config";

/// Why weights could not be moved; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum InteropError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bytes are not safetensors.
    #[error("{path} is not a safetensors file: {detail}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What was expected and found.
        detail: String,
    },
    /// The bytes are not a PyTorch file burn's reader understands, or lack the entry asked for.
    #[error("{path} is not a PyTorch state_dict this can read: {detail}")]
    Pytorch {
        /// The file.
        path: PathBuf,
        /// What the reader said, shortened to a line.
        detail: String,
    },
    /// The metadata does not say which network the tensors belong to.
    #[error("{path} has no `{CONFIG_KEY}` metadata naming the network it holds")]
    NoConfig {
        /// The file.
        path: PathBuf,
    },
    /// The metadata names no valid network.
    #[error("{path}: the `{CONFIG_KEY}` metadata is not a network configuration: {detail}")]
    BadConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A tensor has another shape than the network's.
    #[error("{path}: tensor `{name}` should have shape {expected:?}, found {found:?}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// The tensor's name in the network.
        name: String,
        /// The network's shape.
        expected: Vec<usize>,
        /// The file's shape.
        found: Vec<usize>,
    },
    /// A tensor of the network is not in the file.
    #[error("{path}: tensor `{name}` is missing")]
    Missing {
        /// The file.
        path: PathBuf,
        /// The tensor's name in the network.
        name: String,
    },
    /// The file holds a tensor the network does not have.
    #[error("{path}: tensor `{name}` is not part of the network")]
    Unexpected {
        /// The file.
        path: PathBuf,
        /// The tensor's name in the file.
        name: String,
    },
    /// A tensor could not be converted.
    #[error("{path}: {detail}")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The file could not be written.
    #[error("cannot write {path}: {detail}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

/// Writes `model`'s weights to `path` as safetensors with its configuration in the metadata,
/// atomically (the store writes a scratch file and renames it).
pub fn save_safetensors(model: &UNet, path: &Path) -> Result<(), InteropError> {
    let config = serde_json::to_string(model.config()).expect("configurations serialise");
    let mut store = SafetensorsStore::from_file(path)
        .with_to_adapter(BurnToPyTorchAdapter)
        .metadata(CONFIG_KEY, config)
        .overwrite(true);
    model
        .save_into(&mut store)
        .map_err(|e| InteropError::Write {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
}

/// Reads a network written by [`save_safetensors`] (or by PyTorch with the same names and the
/// configuration in the metadata). Every tensor must be present with its exact shape, and
/// nothing else may be in the file.
pub fn load_safetensors(path: &Path, device: &Device) -> Result<UNet, InteropError> {
    let bytes = std::fs::read(path).map_err(|source| InteropError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    safetensors_from_bytes(bytes, path, device)
}

/// [`load_safetensors`] on the bytes of a file; `path` is only used in messages.
pub fn safetensors_from_bytes(
    bytes: Vec<u8>,
    path: &Path,
    device: &Device,
) -> Result<UNet, InteropError> {
    let metadata = read_metadata(&bytes, path)?;
    let json = metadata.get(CONFIG_KEY).ok_or(InteropError::NoConfig {
        path: path.to_path_buf(),
    })?;
    let config: UNetConfig = serde_json::from_str(json).map_err(|e| InteropError::BadConfig {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    config
        .validate()
        .map_err(|detail| InteropError::BadConfig {
            path: path.to_path_buf(),
            detail,
        })?;
    let model = config.init(device);
    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .with_from_adapter(PyTorchToBurnAdapter)
        .allow_partial(true)
        .validate(false);
    apply(model, &mut store, path)
}

/// The notebook's names (left, as regular expressions) and ours. They are applied in order,
/// each to the result of the ones before: first where a tensor sits in the network, then
/// what it is within a residual block.
pub const NOTEBOOK_KEYS: [(&str, &str); 17] = [
    (r"^time_embedder\.weights$", "time.frequencies"),
    (r"^y_embedder\.", "label.table."),
    (r"^init_conv\.0\.", "stem."),
    (r"^encoders\.(\d+)\.res_blocks\.", "down.$1.blocks."),
    (r"^encoders\.(\d+)\.downsample\.", "down.$1.down."),
    (r"^midcoder\.res_blocks\.", "bottleneck."),
    (r"^decoders\.(\d+)\.upsample\.1\.", "up.$1.conv."),
    (r"^decoders\.(\d+)\.res_blocks\.", "up.$1.blocks."),
    (r"^final_conv\.", "head."),
    (r"\.block1\.0\.", ".conv1."),
    (r"\.block1\.1\.", ".norm1.batch."),
    (r"\.block2\.0\.", ".conv2."),
    (r"\.block2\.1\.", ".norm2.batch."),
    (r"\.time_adapter\.0\.", ".offsets.time.inner."),
    (r"\.time_adapter\.2\.", ".offsets.time.outer."),
    (r"\.y_adapter\.0\.", ".offsets.label.inner."),
    (r"\.y_adapter\.2\.", ".offsets.label.outer."),
];

/// Reads the notebook's network from a PyTorch `state_dict` file (`key`: the entry holding
/// it, when the file is a dictionary of several things) into the `reference` configuration
/// with the widths, depth and embedding size its tensors have. As with safetensors, every
/// tensor must be there with its shape and nothing else may be (BatchNorm's step counters
/// aside).
pub fn load_notebook(
    path: &Path,
    key: Option<&str>,
    device: &Device,
) -> Result<UNet, InteropError> {
    if let Err(source) = std::fs::File::open(path) {
        return Err(InteropError::Read {
            path: path.to_path_buf(),
            source,
        });
    }
    let mut store = PytorchStore::from_file(path)
        .map_indices_contiguous(false)
        .allow_partial(true)
        .validate(false);
    if let Some(key) = key {
        store = store.with_top_level_key(key);
    }
    for (from, to) in NOTEBOOK_KEYS {
        store = store.with_key_remapping(from, to);
    }
    let shapes: HashMap<String, Vec<usize>> = store
        .get_all_tensors()
        .map_err(|e| InteropError::Pytorch {
            path: path.to_path_buf(),
            detail: shorten(&e.to_string()),
        })?
        .iter()
        .map(|(name, tensor)| (name.clone(), tensor.shape.to_vec()))
        .collect();
    let config = notebook_config(&shapes).map_err(|detail| InteropError::BadConfig {
        path: path.to_path_buf(),
        detail,
    })?;
    apply(config.init(device), &mut store, path)
}

/// `text` cut to a line's length: the reader lists every key it found when one is missing.
fn shorten(text: &str) -> String {
    const KEEP: usize = 200;
    match text.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}… ({} more characters)", &text[..cut], text.len() - cut),
        None => text.to_string(),
    }
}

/// The `reference` configuration with the sizes the tensors (under our names) show: the
/// stem's and each down-sampling convolution's output channels, the number of blocks in the
/// first level, the label table's width.
fn notebook_config(shapes: &HashMap<String, Vec<usize>>) -> Result<UNetConfig, String> {
    let dim = |name: &str, axis: usize| -> Result<usize, String> {
        let shape = shapes
            .get(name)
            .ok_or_else(|| format!("expected the notebook's network, found no tensor `{name}`"))?;
        shape.get(axis).copied().ok_or_else(|| {
            format!(
                "tensor `{name}` should have at least {} axes, found {shape:?}",
                axis + 1
            )
        })
    };
    let mut channels = vec![dim("stem.weight", 0)?];
    while shapes.contains_key(&format!("down.{}.down.weight", channels.len() - 1)) {
        channels.push(dim(&format!("down.{}.down.weight", channels.len() - 1), 0)?);
    }
    let blocks = (0..)
        .take_while(|b| shapes.contains_key(&format!("down.0.blocks.{b}.conv1.weight")))
        .count();
    let config = UNetConfig {
        channels,
        blocks,
        embed_dim: dim("label.table.weight", 1)?,
        ..UNetConfig::reference()
    };
    config.validate()?;
    Ok(config)
}

/// Loads `store`'s tensors into `model`, refusing the first missing, extra or misshapen one.
fn apply<S: ModuleStore>(mut model: UNet, store: &mut S, path: &Path) -> Result<UNet, InteropError>
where
    S::Error: std::fmt::Display,
{
    let result = model.load_from(store).map_err(|e| InteropError::Format {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    check_applied(path, &result)?;
    Ok(model)
}

/// Turns the store's report into the first problem it names, if any.
fn check_applied(path: &Path, result: &burn::store::ApplyResult) -> Result<(), InteropError> {
    let path = path.to_path_buf();
    if let Some(error) = result.errors.first() {
        return Err(match error {
            ApplyError::ShapeMismatch {
                path: name,
                expected,
                found,
            } => InteropError::Shape {
                path,
                name: name.clone(),
                expected: expected.to_vec(),
                found: found.to_vec(),
            },
            other => InteropError::Tensor {
                path,
                detail: other.to_string(),
            },
        });
    }
    if let Some((name, _)) = result.missing.first() {
        return Err(InteropError::Missing {
            path,
            name: name.clone(),
        });
    }
    // PyTorch's BatchNorm keeps a step counter that no computation reads; burn has none.
    let unused = result
        .unused
        .iter()
        .find(|name| !name.ends_with(".num_batches_tracked"));
    if let Some(name) = unused {
        return Err(InteropError::Unexpected {
            path,
            name: name.clone(),
        });
    }
    Ok(())
}

/// The `__metadata__` map of a safetensors file, after the safetensors crate has checked the
/// whole layout (header length against the file, every tensor's offsets).
fn read_metadata(bytes: &[u8], path: &Path) -> Result<HashMap<String, String>, InteropError> {
    let (_, metadata) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| InteropError::Format {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    Ok(metadata.metadata().clone().unwrap_or_default())
}

/// A fixed input and the network's velocity there, saved beside exported weights so that
/// another implementation can check it computes the same function.
#[derive(Module, Debug)]
pub struct Probe {
    /// Images, `[4, 1, side, side]`.
    pub x: Param<Tensor<4>>,
    /// Times.
    pub t: Param<Tensor<1>>,
    /// Labels as floats (10 is "no label").
    pub y: Param<Tensor<1>>,
    /// The velocity `u(x, t, y)`.
    pub v: Param<Tensor<4>>,
}

impl Probe {
    /// Evaluates `model` on a deterministic input: a smooth pattern in `[-1, 1]`, four times
    /// across `[0, 1]` and four labels including "no label".
    pub fn of(model: &UNet, device: &Device) -> Self {
        let side = model.config().image_size;
        let n = 4;
        let pixels: Vec<f32> = (0..n * side * side)
            .map(|i| ((i as f32) * 0.37).sin() * ((i as f32) * 0.011).cos())
            .collect();
        let x = Tensor::<4>::from_data(TensorData::new(pixels, [n, 1, side, side]), device);
        let times = [0.0f32, 0.25, 0.6, 0.95];
        let labels = [3i64, 7, super::NO_LABEL, 0];
        let t = Tensor::<1>::from_data(TensorData::new(times.to_vec(), [n]), device);
        let y_int = Tensor::<1, Int>::from_data(TensorData::new(labels.to_vec(), [n]), device);
        let v = model.forward(x.clone(), t.clone(), y_int.clone());
        Self {
            x: Param::from_tensor(x),
            t: Param::from_tensor(t),
            y: Param::from_tensor(y_int.float()),
            v: Param::from_tensor(v),
        }
    }

    /// Writes the probe as safetensors (`x`, `t`, `y`, `v`).
    pub fn save(&self, path: &Path) -> Result<(), InteropError> {
        let mut store = SafetensorsStore::from_file(path).overwrite(true);
        self.save_into(&mut store).map_err(|e| InteropError::Write {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
    }
}
