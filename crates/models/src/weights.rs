//! Weight files: the official PyTorch checkpoints and safetensors.
//!
//! The official CLaMP 3 files are `torch.save({'model': state_dict, 'epoch': .., 'min_eval_loss': ..})`
//! zip archives; Hugging Face `pytorch_model.bin` files hold a bare state dict. Both are read with
//! candle's pickle reader, which interprets only the data opcodes of the pickle protocol and never
//! imports or calls anything, so a malicious checkpoint cannot run code. Safetensors files are
//! memory-mapped, which is why `clamp3 weights convert` exists.

use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The state-dict entry of the official checkpoints.
const CHECKPOINT_STATE_KEY: &str = "model";

/// How a weight file is stored, told by its first bytes rather than its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// A zip-format PyTorch pickle (`.pth`, `.bin`, `.pt`).
    PyTorch,
    /// A safetensors file.
    Safetensors,
}

impl WeightFormat {
    /// Detects the format of `path` from its magic bytes.
    pub fn detect(path: &Path) -> Result<Self> {
        let mut magic = [0u8; 4];
        let mut file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
        let n = file.read(&mut magic).map_err(|e| io_error(path, e))?;
        if n >= 2 && &magic[..2] == b"PK" {
            Ok(Self::PyTorch)
        } else if n == 4 {
            // safetensors starts with a little-endian u64 header length; real headers are far
            // smaller than 2^32, so the upper bytes are zero.
            Ok(Self::Safetensors)
        } else {
            Err(Error::Weights {
                path: path.to_path_buf(),
                error: candle_core::Error::Msg(
                    "not a PyTorch zip checkpoint nor a safetensors file".to_string(),
                ),
            })
        }
    }
}

fn io_error(path: &Path, error: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        error,
    }
}

fn weights_error(path: &Path) -> impl Fn(candle_core::Error) -> Error + '_ {
    move |error| Error::Weights {
        path: path.to_path_buf(),
        error,
    }
}

/// Opens a PyTorch checkpoint, looking inside its `model` entry when it has one (the official
/// CLaMP 3 files) and at the top level otherwise (Hugging Face `pytorch_model.bin`).
fn open_pth(path: &Path) -> Result<candle_core::pickle::PthTensors> {
    let err = weights_error(path);
    match candle_core::pickle::PthTensors::new(path, Some(CHECKPOINT_STATE_KEY)) {
        Ok(tensors) if !tensors.tensor_infos().is_empty() => Ok(tensors),
        _ => candle_core::pickle::PthTensors::new(path, None).map_err(err),
    }
}

/// Opens a weight file of either format as a float32 [`VarBuilder`] on `device`.
pub fn var_builder(path: &Path, device: &Device) -> Result<VarBuilder<'static>> {
    let err = weights_error(path);
    match WeightFormat::detect(path)? {
        WeightFormat::PyTorch => {
            let tensors = open_pth(path)?;
            if tensors.tensor_infos().is_empty() {
                return Err(err(candle_core::Error::Msg(
                    "the checkpoint holds no tensors".to_string(),
                )));
            }
            Ok(VarBuilder::from_backend(
                Box::new(tensors),
                DType::F32,
                device.clone(),
            ))
        }
        WeightFormat::Safetensors => mmap_safetensors(path, device),
    }
}

/// Builds a model from a weight file: `config_check` is the configuration's validation result,
/// reported against `path`, and every loading error names `path` and the offending tensor.
pub fn load_model<M>(
    path: &Path,
    device: &Device,
    config_check: std::result::Result<(), String>,
    build: impl FnOnce(VarBuilder<'static>) -> candle_core::Result<M>,
) -> Result<M> {
    config_check.map_err(|message| Error::Config {
        path: path.to_path_buf(),
        message,
    })?;
    build(var_builder(path, device)?).map_err(weights_error(path))
}

#[allow(unsafe_code)]
fn mmap_safetensors(path: &Path, device: &Device) -> Result<VarBuilder<'static>> {
    // SAFETY: the file is mapped read-only; like every memory-mapped weight loader we rely on it
    // not being truncated or rewritten while the model is alive. `clamp3 weights convert` writes
    // through a temporary file and a rename, so it never rewrites a mapped file in place.
    unsafe {
        VarBuilder::from_mmaped_safetensors(&[path], DType::F32, device)
            .map_err(weights_error(path))
    }
}

/// The rows of one 2-D float32 tensor in a memory-mapped safetensors file, read when asked for.
/// XLM-R's token table is 250 002 × 768 floats (768 MB) and a query needs a few dozen rows of it:
/// reading only those keeps the table out of memory and out of every cold start.
pub struct MappedRows {
    file: candle_core::safetensors::MmapedSafetensors,
    name: String,
    rows: usize,
    width: usize,
}

impl MappedRows {
    /// Maps `name` of the safetensors file `path` when it is a 2-D float32 tensor there; `None`
    /// for a PyTorch checkpoint or another dtype (the caller then loads the tensor whole).
    pub fn open(path: &Path, name: &str) -> Result<Option<Self>> {
        if WeightFormat::detect(path)? != WeightFormat::Safetensors {
            return Ok(None);
        }
        let err = weights_error(path);
        // SAFETY: as in `mmap_safetensors`: mapped read-only, never rewritten in place.
        #[allow(unsafe_code)]
        let file =
            unsafe { candle_core::safetensors::MmapedSafetensors::new(path) }.map_err(&err)?;
        let (rows, width) = {
            let view = file.get(name).map_err(&err)?;
            match (DType::try_from(view.dtype()), view.shape()) {
                (Ok(DType::F32), &[rows, width]) => (rows, width),
                _ => return Ok(None),
            }
        };
        Ok(Some(Self {
            file,
            name: name.to_string(),
            rows,
            width,
        }))
    }

    /// The tensor's `[rows, width]`.
    pub fn dims(&self) -> (usize, usize) {
        (self.rows, self.width)
    }

    /// Rows `ids`, one after another (`ids.len() × width` floats).
    pub fn gather(&self, ids: &[u32]) -> candle_core::Result<Vec<f32>> {
        let view = self.file.get(&self.name)?;
        let bytes = view.data();
        let row_bytes = self.width * 4;
        let mut out = Vec::with_capacity(ids.len() * self.width);
        for &id in ids {
            let id = id as usize;
            if id >= self.rows {
                candle_core::bail!("id {id} is outside the table of {} rows", self.rows);
            }
            let row = &bytes[id * row_bytes..(id + 1) * row_bytes];
            // The file's data need not be 4-byte aligned in memory: read each float whole.
            out.extend(
                row.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
        }
        Ok(out)
    }
}

/// A float32 [`VarBuilder`] over the current values of `varmap`'s variables as plain tensors, the
/// way a loaded checkpoint holds them. Benchmarks build full-size random models with a `VarMap`;
/// a variable records the ops applied to it (for training), which keeps every product on
/// candle's general path instead of the inference kernels.
pub fn frozen(varmap: &candle_nn::VarMap, device: &Device) -> Result<VarBuilder<'static>> {
    let tensors = varmap
        .data()
        .lock()
        .map_err(|_| Error::Input("the variables' lock is poisoned".to_string()))?
        .iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().detach()))
        .collect();
    Ok(VarBuilder::from_tensors(tensors, DType::F32, device))
}

/// Reads every tensor of a weight file, by name.
pub fn read_all(path: &Path) -> Result<HashMap<String, Tensor>> {
    let err = weights_error(path);
    match WeightFormat::detect(path)? {
        WeightFormat::PyTorch => {
            let tensors = open_pth(path)?;
            let mut out = HashMap::with_capacity(tensors.tensor_infos().len());
            for name in tensors.tensor_infos().keys() {
                if let Some(t) = tensors.get(name).map_err(&err)? {
                    out.insert(name.clone(), t);
                }
            }
            Ok(out)
        }
        WeightFormat::Safetensors => {
            candle_core::safetensors::load(path, &Device::Cpu).map_err(err)
        }
    }
}

/// Converts any supported weight file to safetensors, writing through a temporary file in the
/// destination folder so that a crash never leaves a truncated `output`. Returns the number of
/// tensors written.
pub fn convert_to_safetensors(input: &Path, output: &Path) -> Result<usize> {
    let tensors = read_all(input)?;
    if tensors.is_empty() {
        return Err(weights_error(input)(candle_core::Error::Msg(
            "the file holds no tensors".to_string(),
        )));
    }
    let tmp = temp_sibling(output);
    candle_core::safetensors::save(&tensors, &tmp).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        weights_error(output)(e)
    })?;
    std::fs::rename(&tmp, output).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_error(output, e)
    })?;
    Ok(tensors.len())
}

fn temp_sibling(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests panic on broken fixtures")]

    use super::*;

    fn saved(tensors: &[(&str, Tensor)]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let map: HashMap<String, Tensor> = tensors
            .iter()
            .map(|(name, t)| (name.to_string(), t.clone()))
            .collect();
        candle_core::safetensors::save(&map, &path).unwrap();
        (dir, path)
    }

    #[test]
    fn mapped_rows_are_the_tensors_rows() {
        let table = Tensor::arange(0f32, 15., &Device::Cpu)
            .unwrap()
            .reshape((5, 3))
            .unwrap();
        let half = table.to_dtype(DType::F16).unwrap();
        let (_dir, path) = saved(&[("t.weight", table), ("h.weight", half)]);
        let rows = MappedRows::open(&path, "t.weight").unwrap().unwrap();
        assert_eq!(rows.dims(), (5, 3));
        assert_eq!(
            rows.gather(&[4, 0, 4]).unwrap(),
            [12., 13., 14., 0., 1., 2., 12., 13., 14.]
        );
        let out_of_range = rows.gather(&[5]).unwrap_err().to_string();
        assert!(
            out_of_range.contains("outside the table of 5 rows"),
            "{out_of_range}"
        );
        // Another dtype is loaded whole by the caller (and converted), not mapped.
        assert!(MappedRows::open(&path, "h.weight").unwrap().is_none());
        let missing = MappedRows::open(&path, "nothing.weight")
            .err()
            .unwrap()
            .to_string();
        assert!(missing.contains("w.safetensors"), "{missing}");
    }
}
