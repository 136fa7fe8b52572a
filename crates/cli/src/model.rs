//! Turning `ModelArgs` into a loaded model and a (lazily loaded) tokenizer.

use crate::args::{DeviceArg, ModelArgs, VariantArg};
use anyhow::Context;
use candle_core::Device;
use clamp3_features::hub::{self, Variant};
use clamp3_models::{Clamp3Model, Config};
use std::path::PathBuf;
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

/// A loaded model, plus the tokenizer, loaded the first time a text needs it.
pub struct Loaded {
    /// The CLaMP 3 model.
    pub model: Clamp3Model,
    tokenizer_path: Option<PathBuf>,
    tokenizer: OnceLock<Result<Tokenizer, String>>,
}

impl Loaded {
    /// The tokenizer (loaded, or downloaded and loaded, on first use).
    pub fn tokenizer(&self) -> anyhow::Result<&Tokenizer> {
        let loaded = self.tokenizer.get_or_init(|| {
            load_tokenizer(self.tokenizer_path.clone()).map_err(|e| format!("{e:#}"))
        });
        loaded.as_ref().map_err(|e| anyhow::anyhow!("{e}"))
    }
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
    })
}
