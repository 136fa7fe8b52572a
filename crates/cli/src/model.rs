//! Turning `ModelArgs` into a loaded model and a (lazily loaded) tokenizer.

use crate::args::{DeviceArg, ModelArgs, VariantArg};
use anyhow::Context;
use candle_core::Device;
use clamp3_features::hub::{self, Variant};
use clamp3_features::input::read_input_with;
use clamp3_features::{FileKind, ModelInput};
use clamp3_models::mert::Mert;
use clamp3_models::{Clamp3Model, Config};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tokenizers::Tokenizer;

/// Picks the device the user asked for.
pub fn device(arg: DeviceArg) -> anyhow::Result<Device> {
    match arg {
        DeviceArg::Cpu => Ok(Device::Cpu),
        DeviceArg::Cuda => Device::new_cuda(0).context(
            "cannot use CUDA (is this a build with `--features cuda`, and is a GPU visible?)",
        ),
        DeviceArg::Auto => Ok(Device::cuda_if_available(0).unwrap_or(Device::Cpu)),
    }
}

/// A loaded model, plus the tokenizer and MERT, each loaded the first time a file needs it.
pub struct Loaded {
    /// The CLaMP 3 model.
    pub model: Clamp3Model,
    tokenizer_path: Option<PathBuf>,
    tokenizer: OnceLock<Result<Tokenizer, String>>,
    mert_dir: Option<PathBuf>,
    mert: OnceLock<Result<Mert, String>>,
}

impl Loaded {
    /// The tokenizer (loaded, or downloaded and loaded, on first use).
    pub fn tokenizer(&self) -> anyhow::Result<&Tokenizer> {
        let loaded = self.tokenizer.get_or_init(|| {
            load_tokenizer(self.tokenizer_path.clone()).map_err(|e| format!("{e:#}"))
        });
        loaded.as_ref().map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Reads a file for its encoder, loading the tokenizer or MERT first if the file needs one.
    pub fn read_input(&self, path: &Path) -> anyhow::Result<ModelInput> {
        let kind = FileKind::of(path);
        let tokenizer = match kind {
            Some(FileKind::Text) => Some(self.tokenizer()?),
            _ => None,
        };
        let mert = match kind {
            Some(FileKind::Audio) => Some(self.mert()?),
            _ => None,
        };
        Ok(read_input_with(path, tokenizer, mert)?)
    }

    /// MERT (loaded, or downloaded and loaded, on first use), on the model's device.
    pub fn mert(&self) -> anyhow::Result<&Mert> {
        let loaded = self.mert.get_or_init(|| {
            load_mert(self.mert_dir.clone(), self.model.device()).map_err(|e| format!("{e:#}"))
        });
        loaded.as_ref().map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// Loads MERT from a folder, or the official one from the Hub cache, saying once that its weights
/// are non-commercial.
pub fn load_mert(dir: Option<PathBuf>, device: &Device) -> anyhow::Result<Mert> {
    let dir = match dir {
        Some(dir) => dir,
        None => {
            let dir = hub::mert_folder(true)?;
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "note: audio features use {}, whose weights are licensed CC-BY-NC-4.0 \
                     (non-commercial use only); CLaMP 3's own weights are MIT",
                    hub::MERT_REPO
                );
            }
            dir
        }
    };
    Mert::from_folder(&dir, device).with_context(|| format!("loading MERT from {}", dir.display()))
}

/// Loads a tokenizer from a path, or the official one from the Hub cache.
pub fn load_tokenizer(path: Option<PathBuf>) -> anyhow::Result<Tokenizer> {
    let path = match path {
        Some(path) => path,
        None => hub::xlm_roberta_tokenizer(true)?,
    };
    Ok(clamp3_features::text::load_tokenizer(&path)?)
}

/// Loads the model described by the arguments.
pub fn load(args: &ModelArgs) -> anyhow::Result<Loaded> {
    let config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    let weights = match &args.weights {
        Some(path) => path.clone(),
        None => hub::clamp3_weights(
            match args.variant {
                VariantArg::Saas => Variant::Saas,
                VariantArg::C2 => Variant::C2,
            },
            true,
        )?,
    };
    let device = device(args.device)?;
    let model = Clamp3Model::from_file(&weights, &config, &device)
        .with_context(|| format!("loading CLaMP 3 weights from {}", weights.display()))?;
    Ok(Loaded {
        model,
        tokenizer_path: args.tokenizer.clone(),
        tokenizer: OnceLock::new(),
        mert_dir: args.mert.clone(),
        mert: OnceLock::new(),
    })
}
