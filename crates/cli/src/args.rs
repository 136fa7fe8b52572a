//! Argument groups shared by several commands. Each command's own arguments live in its file
//! under `commands/`; the `///` comments are the `--help` text.

use clamp3_engine::{DeviceChoice, ModelId, ModelSpec, NpyReading, Precision};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// Where computations run.
#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum DeviceArg {
    /// A CUDA GPU when this build has CUDA support and one is present, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// The first CUDA GPU (needs a build with `--features cuda`).
    Cuda,
}

impl From<DeviceArg> for DeviceChoice {
    fn from(arg: DeviceArg) -> Self {
        match arg {
            DeviceArg::Auto => DeviceChoice::Auto,
            DeviceArg::Cpu => DeviceChoice::Cpu,
            DeviceArg::Cuda => DeviceChoice::Cuda,
        }
    }
}

/// The old way to pick a CLaMP 3 checkpoint, kept so existing scripts work.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum VariantArg {
    /// `--model clamp3-saas`.
    Saas,
    /// `--model clamp3-c2`.
    C2,
}

fn parse_model(name: &str) -> Result<ModelId, String> {
    ModelId::from_name(name).map_err(|e| e.to_string())
}

/// Which model runs, where its files come from, and where it runs.
#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// The model: clamp3-saas (CLaMP 3 trained on all modalities), clamp3-c2 (CLaMP 3 tuned for
    /// symbolic music), clamp2 (CLaMP 2: text, sheet music and MIDI), m3 (CLaMP 2's M3 encoder:
    /// per-patch features of sheet music and MIDI, with --local), clamp1-s512 or clamp1-s1024
    /// (CLaMP 1: text and sheet music).
    #[arg(long, env = "CLAMP3_MODEL", value_parser = parse_model, default_value = "clamp3-saas")]
    pub model: ModelId,
    /// Same as `--model clamp3-saas` / `--model clamp3-c2` (kept for older scripts).
    #[arg(long, value_enum, hide = true)]
    pub variant: Option<VariantArg>,
    /// The model's weights (`.pth` as published, or `.safetensors`). Default: the official
    /// checkpoint, downloaded once from the Hugging Face Hub into its cache.
    #[arg(long, env = "CLAMP3_WEIGHTS", value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Model configuration (`config.json`). Default: the official sizes.
    #[arg(long, env = "CLAMP3_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The text tokenizer's `tokenizer.json`. Default: FacebookAI/xlm-roberta-base's (CLaMP 3,
    /// CLaMP 2) or distilroberta-base's (CLaMP 1, which also reads the text encoder's
    /// `config.json` beside a given tokenizer), from the Hub cache.
    #[arg(long, env = "CLAMP3_TOKENIZER", value_name = "FILE")]
    pub tokenizer: Option<PathBuf>,
    /// MERT model folder for audio files (`config.json` and `model.safetensors` or
    /// `pytorch_model.bin`). Default: m-a-p/MERT-v1-95M from the Hub cache (CC-BY-NC-4.0).
    #[arg(long, env = "CLAMP3_MERT", value_name = "DIR")]
    pub mert: Option<PathBuf>,
    /// BLIP captioning folder for image files (`config.json`, `model.safetensors` or
    /// `pytorch_model.bin`, `preprocessor_config.json`, `tokenizer.json`): an image is embedded
    /// as its caption. Default: Salesforce/blip-image-captioning-base from the Hub cache.
    #[arg(long, env = "CLAMP3_BLIP", value_name = "DIR")]
    pub blip: Option<PathBuf>,
    /// Where to run the model.
    #[arg(long, value_enum, default_value_t)]
    pub device: DeviceArg,
    /// Number format: f32 (the reference's numbers) or bf16 (CLaMP 3's dense weights stored as
    /// bfloat16, computed in f32: faster text queries and short scores, cosine >= 0.9999 to
    /// f32). The feature cache keeps each precision's vectors apart.
    #[arg(long, env = "CLAMP3_PRECISION", value_enum, default_value_t)]
    pub precision: PrecisionArg,
}

/// The number format weights are stored in.
#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum PrecisionArg {
    /// 32-bit floats.
    #[default]
    F32,
    /// bfloat16 dense weights, f32 arithmetic (CLaMP 3 only).
    Bf16,
}

impl From<PrecisionArg> for Precision {
    fn from(arg: PrecisionArg) -> Self {
        match arg {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::Bf16 => Precision::Bf16,
        }
    }
}

impl ModelArgs {
    /// The engine's spec for these arguments.
    pub fn spec(&self) -> anyhow::Result<ModelSpec> {
        let model = match self.variant {
            None => self.model,
            Some(variant) => {
                let wanted = match variant {
                    VariantArg::Saas => ModelId::Clamp3Saas,
                    VariantArg::C2 => ModelId::Clamp3C2,
                };
                if self.model != ModelId::default() && self.model != wanted {
                    anyhow::bail!(
                        "--variant and --model disagree ({} vs {}); --model alone is enough",
                        wanted,
                        self.model
                    );
                }
                wanted
            }
        };
        Ok(ModelSpec {
            model,
            weights: self.weights.clone(),
            config: self.config.clone(),
            tokenizer: self.tokenizer.clone(),
            mert: self.mert.clone(),
            blip: self.blip.clone(),
            device: self.device.into(),
            precision: self.precision.into(),
            ..ModelSpec::default()
        })
    }
}

/// How `.npy` inputs are read.
#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum NpyArg {
    /// By shape: a `[1, D]` array is a vector (as `clamp3 embed` writes them), `[n, W]` or
    /// `[1, n, W]` MERT features.
    #[default]
    Auto,
    /// Every `.npy` is a vector, used as it is.
    Vector,
    /// Every `.npy` is MERT features, encoded by the audio encoder.
    Features,
}

/// Feature-cache and input options shared by the commands that embed.
#[derive(Debug, Args, Clone)]
pub struct CacheArgs {
    /// Neither read nor write the feature cache (every file is embedded again).
    #[arg(long)]
    pub no_cache: bool,
    /// How `.npy` inputs are read.
    #[arg(long, value_enum, default_value_t)]
    pub npy: NpyArg,
}

impl CacheArgs {
    /// The engine's reading of `.npy` inputs.
    pub fn npy_reading(&self) -> NpyReading {
        match self.npy {
            NpyArg::Auto => NpyReading::Auto,
            NpyArg::Vector => NpyReading::Vector,
            NpyArg::Features => NpyReading::Features,
        }
    }
}

/// Where a library lives, and what a Qdrant server library needs.
#[derive(Debug, Args)]
pub struct QdrantArgs {
    /// The API key of the Qdrant server, for a `qdrant://` library.
    #[arg(
        long,
        global = true,
        env = "CLAMP3_QDRANT_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub qdrant_api_key: Option<String>,
    /// A new Qdrant collection's shard count (default: one per node of the cluster).
    #[arg(long, global = true, value_name = "N")]
    pub qdrant_shards: Option<u32>,
    /// A new Qdrant collection's replication factor: copies of each shard (default: 1).
    #[arg(long, global = true, value_name = "N")]
    pub qdrant_replicas: Option<u32>,
    /// Replicas that must confirm each write to a new Qdrant collection (default: 1).
    #[arg(long, global = true, value_name = "N")]
    pub qdrant_write_consistency: Option<u32>,
    /// A new Qdrant collection keeps vectors and payloads on disk (memory-mapped).
    #[arg(long, global = true)]
    pub qdrant_on_disk: bool,
    /// A new Qdrant collection has scalar int8 quantization (kept in RAM; rescored).
    #[arg(long, global = true)]
    pub qdrant_int8: bool,
    /// How long calls to a Qdrant server are retried on transient errors, in seconds.
    #[arg(long, global = true, default_value_t = 120, value_name = "S")]
    pub qdrant_retry_s: u64,
}

impl QdrantArgs {
    /// The library `given` (a folder or `qdrant://HOST:PORT/COLLECTION`), else
    /// `$CLAMP3_LIBRARY`, else the standard folder; with these options.
    pub fn location(&self, given: Option<&str>) -> anyhow::Result<clamp3_library::Location> {
        let location = match given {
            Some(s) => s.parse()?,
            None => clamp3_library::Location::default_location()?,
        };
        let mut location = location
            .with_api_key(self.qdrant_api_key.clone())
            .with_collection_options(clamp3_library::CollectionOptions {
                shards: self.qdrant_shards,
                replication_factor: self.qdrant_replicas,
                write_consistency_factor: self.qdrant_write_consistency,
                on_disk: self.qdrant_on_disk,
                int8: self.qdrant_int8,
            });
        if let clamp3_library::Location::Qdrant(q) = &mut location {
            q.retry_for = std::time::Duration::from_secs(self.qdrant_retry_s);
        }
        Ok(location)
    }
}
