//! Weights records: the burnpack bytes burn writes for a module's tensors, checked before
//! burn is asked to build anything from them.
//!
//! burn trusts a record it decodes: a tensor stored with an integer type where the module
//! holds floats makes it panic while loading. Every tensor of our networks is `f32`, so a
//! record is decoded here first and refused, with the tensor named, unless each one is.

use burn::store::ModuleRecord;
use burn::tensor::{Bytes, DType};

/// Decodes `bytes` into a record whose tensors are all `f32`; the error names the first
/// that is not. (burnpack's reader already refuses a tensor whose bytes do not fit its shape.)
pub fn decode(bytes: &[u8]) -> Result<ModuleRecord, String> {
    let reader = burn_pack::Reader::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
        .map_err(|e| format!("weights do not decode: {e}"))?;
    for tensor in reader
        .into_tensors()
        .map_err(|e| format!("weights do not decode: {e}"))?
    {
        let (name, dtype, ..) = tensor
            .into_parts()
            .map_err(|e| format!("weights do not decode: {e}"))?;
        if dtype != DType::F32 {
            return Err(format!("tensor `{name}`: expected f32, found {dtype:?}"));
        }
    }
    ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
        .map_err(|e| format!("weights do not decode: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::Device;
    use burn_pack::{Reader, Tensor, Writer};

    fn linear() -> Linear {
        LinearConfig::new(2, 3).init(&Device::default())
    }

    /// The record of a small layer, with `edit` applied to each tensor's dtype and bytes.
    fn edited(edit: impl Fn(&str, DType, Vec<u8>) -> (DType, Vec<u8>)) -> Vec<u8> {
        let bytes = linear().into_record().into_bytes().unwrap();
        let tensors = Reader::from_bytes(bytes)
            .unwrap()
            .into_tensors()
            .unwrap()
            .into_iter()
            .map(|t| {
                let (name, dtype, shape, id, data) = t.into_parts().unwrap();
                let (dtype, data) = edit(&name, dtype, data.to_vec());
                Tensor::new(name, dtype, shape, id, Bytes::from_bytes_vec(data))
            })
            .collect();
        Writer::new(tensors).into_bytes().unwrap().to_vec()
    }

    #[test]
    fn an_unchanged_record_loads() {
        let record = decode(&edited(|_, dtype, data| (dtype, data))).unwrap();
        linear().try_load_record(record).unwrap();
    }

    #[test]
    fn a_tensor_stored_as_integers_is_refused_by_name() {
        let bytes = edited(|name, dtype, data| {
            (
                if name.ends_with("bias") {
                    DType::U32
                } else {
                    dtype
                },
                data,
            )
        });
        let err = decode(&bytes).unwrap_err();
        assert!(
            err.contains("bias") && err.contains("expected f32"),
            "{err}"
        );
    }
}
