//! What to run: a model (family and variant), where its files come from, on which device and in
//! which precision; and the *identity* of all that, which keys the feature cache.

use crate::{Error, Result};
use candle_core::Device;
use std::path::{Path, PathBuf};

/// The models the engine can run, as `--model` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ModelId {
    /// CLaMP 3, the checkpoint trained on all modalities (the reference's default).
    #[default]
    Clamp3Saas,
    /// CLaMP 3, the checkpoint tuned for symbolic music.
    Clamp3C2,
    /// CLaMP 2: XLM-R text and the M3 symbolic encoder (sheet music and MIDI, no audio).
    Clamp2,
    /// M3, CLaMP 2's symbolic encoder alone: per-patch features (`extract_m3.py`).
    M3,
    /// CLaMP 1, CLaMP-S/512: DistilRoBERTa text and a bar-patch music encoder (sheet music).
    Clamp1S512,
    /// CLaMP 1, CLaMP-S/1024 (up to 1024 bar patches).
    Clamp1S1024,
}

impl ModelId {
    /// Every model, in the order `--help` lists them.
    pub const ALL: [ModelId; 6] = [
        ModelId::Clamp3Saas,
        ModelId::Clamp3C2,
        ModelId::Clamp2,
        ModelId::M3,
        ModelId::Clamp1S512,
        ModelId::Clamp1S1024,
    ];

    /// The name `--model` takes.
    pub fn name(self) -> &'static str {
        match self {
            ModelId::Clamp3Saas => "clamp3-saas",
            ModelId::Clamp3C2 => "clamp3-c2",
            ModelId::Clamp2 => "clamp2",
            ModelId::M3 => "m3",
            ModelId::Clamp1S512 => "clamp1-s512",
            ModelId::Clamp1S1024 => "clamp1-s1024",
        }
    }

    /// The model a name stands for.
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|m| m.name()).collect();
                Error::Spec(format!(
                    "unknown model {name:?} (known: {})",
                    known.join(", ")
                ))
            })
    }
}

impl std::fmt::Display for ModelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the models run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// A CUDA GPU when this build has CUDA support and one is present, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// The first CUDA GPU (needs a build with the `cuda` feature).
    Cuda,
}

impl DeviceChoice {
    /// The candle device.
    pub fn device(self) -> Result<Device> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda => Device::new_cuda(0).map_err(|e| {
                Error::Spec(format!(
                    "cannot use CUDA ({e}); is this a build with `--features cuda`, and is a GPU visible?"
                ))
            }),
            DeviceChoice::Auto => Ok(Device::cuda_if_available(0).unwrap_or(Device::Cpu)),
        }
    }
}

/// The number format weights and activations are computed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// 32-bit floats: the reference's numbers.
    #[default]
    F32,
    /// CLaMP 3's dense-layer weights stored as bfloat16, widened to f32 as they are read;
    /// activations, sums, embeddings, LayerNorms and MERT stay f32. Half the bytes a text query
    /// or a short score reads, for vectors within cosine 0.9999 of f32 (measured in
    /// `cargo bench -p clamp3-engine --bench speed`).
    Bf16,
}

impl Precision {
    /// The name in cache identities and messages.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }
}

/// Everything that decides which model runs and how. Unset files come from the Hugging Face Hub
/// (downloaded once into its cache, only when first needed).
#[derive(Debug, Clone, Default)]
pub struct ModelSpec {
    /// The model.
    pub model: ModelId,
    /// The model's weights (`.pth` as published, or `.safetensors`).
    pub weights: Option<PathBuf>,
    /// The model's `config.json`; default: the official sizes.
    pub config: Option<PathBuf>,
    /// The text tokenizer's `tokenizer.json`.
    pub tokenizer: Option<PathBuf>,
    /// The audio feature extractor's folder (MERT: `config.json` + weights).
    pub mert: Option<PathBuf>,
    /// The image captioner's folder (BLIP: `config.json`, weights, `preprocessor_config.json`,
    /// `tokenizer.json`); default: Salesforce/blip-image-captioning-base from the Hub.
    pub blip: Option<PathBuf>,
    /// Where to run.
    pub device: DeviceChoice,
    /// The number format.
    pub precision: Precision,
    /// Where memory-mappable copies of PyTorch checkpoints are kept ([`crate::weight_cache`]);
    /// `None`: a checkpoint is read as it is on every load.
    pub weight_cache: Option<PathBuf>,
}

/// Bumped whenever preprocessing or pooling changes the vectors a file gets; cached vectors of
/// older versions then miss.
pub const PIPELINE_VERSION: u32 = 1;

/// `path|size|mtime` of a file (its canonical path, length in bytes and modification time in
/// nanoseconds): a cheap identity for large files such as weights, which changes when the file is
/// replaced or rewritten (hashing gigabytes on every run would cost more than it saves).
pub fn file_identity(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok(format!("{}|{}|{}", canonical.display(), meta.len(), mtime))
}

/// The BLAKE3 hash of a small file's bytes (a config): edits that keep the size still count.
pub fn content_identity(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(blake3::hash(&bytes).to_hex().to_string())
}

/// The identity of a model folder: the bytes of its `config.json` and the [`file_identity`] of
/// every other file in it (whichever weight file the loader picks, replacing it changes this).
pub fn folder_identity(dir: &Path) -> Result<String> {
    let mut parts = vec![format!(
        "config.json={}",
        content_identity(&dir.join("config.json"))?
    )];
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "config.json"))
        .collect();
    names.sort();
    for path in names {
        parts.push(file_identity(&path)?);
    }
    Ok(parts.join(";"))
}

/// The identity of a Hub file: the cached copy's [`file_identity`] (its path holds the revision)
/// when it is in the cache, else its repository and name.
pub fn hub_identity(repo: &str, file: &str) -> String {
    clamp3_features::hub::cached(repo, file)
        .and_then(|path| file_identity(&path).ok())
        .unwrap_or_else(|| format!("hub:{repo}/{file}"))
}

/// The identity of a file given locally (`--weights`, `--tokenizer`) or else taken from the Hub.
pub fn source_identity(local: Option<&Path>, repo: &str, file: &str) -> Result<String> {
    match local {
        Some(path) => file_identity(path),
        None => Ok(hub_identity(repo, file)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_round_trip() {
        for model in ModelId::ALL {
            assert_eq!(ModelId::from_name(model.name()).unwrap(), model);
        }
        let err = ModelId::from_name("clamp4").unwrap_err().to_string();
        assert!(err.contains("clamp3-saas"), "{err}");
    }

    #[test]
    fn file_identity_changes_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.bin");
        std::fs::write(&path, b"abc").unwrap();
        let a = file_identity(&path).unwrap();
        std::fs::write(&path, b"abcd").unwrap();
        assert_ne!(a, file_identity(&path).unwrap());
        assert!(file_identity(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn folder_identity_covers_the_weights() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), b"{}").unwrap();
        std::fs::write(dir.path().join("model.safetensors"), b"one").unwrap();
        let a = folder_identity(dir.path()).unwrap();
        std::fs::write(dir.path().join("model.safetensors"), b"other").unwrap();
        assert_ne!(a, folder_identity(dir.path()).unwrap());
    }
}
