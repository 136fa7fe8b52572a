//! Memory-mappable copies of PyTorch checkpoints.
//!
//! A `.pth` checkpoint is a pickle whose tensors are read and copied whole on every start (1.8 GB
//! for CLaMP 3: the reference spends 4.4 s in `torch.load`); a safetensors file is memory-mapped.
//! The first load of a checkpoint therefore writes a safetensors copy into the weight cache,
//! named after the checkpoint's [`file_identity`] (path, size and modification time), and every
//! later start maps that copy. Replacing the checkpoint changes its identity, so a stale copy is
//! never used.

use crate::spec::file_identity;
use crate::Result;
use clamp3_models::weights::{convert_to_safetensors, WeightFormat};
use std::path::{Path, PathBuf};

/// The file to load for `weights`: itself when it is safetensors or when there is no cache
/// folder; otherwise its safetensors copy in `cache`, made now if missing. A copy that cannot be
/// written (a full disk, a read-only folder) is not an error: the checkpoint is read as it is.
pub fn loadable(weights: &Path, cache: Option<&Path>) -> Result<PathBuf> {
    let Some(cache) = cache else {
        return Ok(weights.to_path_buf());
    };
    if WeightFormat::detect(weights)? == WeightFormat::Safetensors {
        return Ok(weights.to_path_buf());
    }
    let identity = file_identity(weights)?;
    let stem = weights
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let hash = blake3::hash(identity.as_bytes()).to_hex();
    let copy = cache.join(format!("{stem}-{}.safetensors", &hash[..16]));
    if copy.is_file() {
        return Ok(copy);
    }
    let converted = std::fs::create_dir_all(cache)
        .map_err(|e| e.to_string())
        .and_then(|()| convert_to_safetensors(weights, &copy).map_err(|e| e.to_string()));
    Ok(match converted {
        Ok(_) => copy,
        Err(_) => weights.to_path_buf(),
    })
}
