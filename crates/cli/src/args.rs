//! Command-line arguments. The `///` comments are the `--help` text.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// CLaMP 3 music information retrieval: text in 100 languages, sheet music, MIDI and audio in
/// one embedding space.
#[derive(Debug, Parser)]
#[command(name = "clamp3", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Embed files (or every supported file under a folder) into `.npy` vectors.
    Embed(EmbedArgs),
    /// Show what the model would see for a file.
    #[command(subcommand)]
    Inspect(InspectCommand),
    /// Weight-file utilities.
    #[command(subcommand)]
    Weights(WeightsCommand),
    /// Convert between music formats.
    #[command(subcommand)]
    Convert(crate::commands::convert::ConvertCommand),
    /// The files of a folder most similar to a query file or text.
    Search(crate::commands::search::SearchArgs),
    /// How similar two folders are: as groups, or file by file (`--pairwise`).
    Score(crate::commands::score::ScoreArgs),
    /// Retrieval metrics (MRR, Hit@1/10/100) of queries against their paired references.
    Eval(crate::commands::eval::EvalArgs),
    /// Zero-shot classification of music by the cosine to label texts.
    Classify(crate::commands::classify::ClassifyArgs),
    /// The feature cache: where it is, how big, and clearing it.
    #[command(subcommand)]
    Cache(crate::commands::cache::CacheCommand),
    /// Linear-probe classification: train on labelled files, predict new ones.
    #[command(subcommand)]
    Probe(crate::commands::probe::ProbeCommand),
}

/// Which CLaMP 3 checkpoint to download when no `--weights` is given.
#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum VariantArg {
    /// Trained on all modalities (default).
    #[default]
    Saas,
    /// Tuned for symbolic music.
    C2,
}

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

/// Where the model, its configuration and its tokenizer come from.
#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// CLaMP 3 weights (`.pth` as published, or `.safetensors`). Default: the official checkpoint,
    /// downloaded once from the Hugging Face Hub into its cache.
    #[arg(long, env = "CLAMP3_WEIGHTS", value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Model configuration (`config.json`). Default: the official sizes.
    #[arg(long, env = "CLAMP3_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// XLM-R `tokenizer.json`. Default: FacebookAI/xlm-roberta-base's, from the Hub cache.
    #[arg(long, env = "CLAMP3_TOKENIZER", value_name = "FILE")]
    pub tokenizer: Option<PathBuf>,
    /// MERT model folder for audio files (`config.json` and `model.safetensors` or
    /// `pytorch_model.bin`). Default: m-a-p/MERT-v1-95M from the Hub cache (CC-BY-NC-4.0).
    #[arg(long, env = "CLAMP3_MERT", value_name = "DIR")]
    pub mert: Option<PathBuf>,
    /// Which official checkpoint to download when `--weights` is not given.
    #[arg(long, value_enum, default_value_t)]
    pub variant: VariantArg,
    /// Where to run the model.
    #[arg(long, value_enum, default_value_t)]
    pub device: DeviceArg,
}

/// `clamp3 embed`.
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// A file, or a folder walked recursively. Supported: .txt; .abc, .mtf, .mid/.midi,
    /// .xml/.musicxml/.mxl; .wav, .mp3, .flac, .ogg; .npy (MERT features).
    pub input: PathBuf,
    /// Where to write `<stem>.npy` files, mirroring the input's folders.
    pub output_dir: PathBuf,
    /// Save per-item hidden states `[1, n, H]` instead of one global vector `[1, D]`.
    #[arg(long)]
    pub local: bool,
    /// Recompute outputs that already exist.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// `clamp3 inspect`.
#[derive(Debug, Subcommand)]
pub enum InspectCommand {
    /// Print the XLM-R token ids of a text file (a JSON array), before segmenting.
    Tokens {
        /// A `.txt` file.
        file: PathBuf,
        /// XLM-R `tokenizer.json`. Default: FacebookAI/xlm-roberta-base's, from the Hub cache.
        #[arg(long, env = "CLAMP3_TOKENIZER", value_name = "FILE")]
        tokenizer: Option<PathBuf>,
    },
    /// Print the patches of a score (a JSON array of 64-integer arrays), before segmenting.
    Patches {
        /// An `.abc` (interleaved) or `.mtf` file.
        file: PathBuf,
    },
}

/// `clamp3 weights`.
#[derive(Debug, Subcommand)]
pub enum WeightsCommand {
    /// Convert a PyTorch checkpoint to safetensors, which later runs memory-map.
    Convert {
        /// The `.pth` / `.bin` checkpoint.
        input: PathBuf,
        /// The `.safetensors` file to write.
        output: PathBuf,
    },
}
