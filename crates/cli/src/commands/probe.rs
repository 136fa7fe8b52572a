//! `clamp3 probe`: the reference's linear probe (`classification/train_cls.py`,
//! `inference_cls.py`) over CLaMP 3 vectors: `.npy` vectors as `extract_clamp3.py` saves them, or
//! raw music files embedded on the fly (through the feature cache).

use super::ExitStatus;
use crate::args::{CacheArgs, ModelArgs, NpyArg};
use crate::batch::write_atomic;
use crate::embedding::{collect, Embedder};
use anyhow::{bail, Context};
use clamp3_retrieval::probe::{self, label_of, Example, Probe, Rng, TrainOptions};
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `clamp3 probe`.
#[derive(Debug, Subcommand)]
pub enum ProbeCommand {
    /// Train a linear probe on files named `<label>_<anything>` (`.npy` vectors or music files).
    Train(TrainArgs),
    /// Classify files with a trained probe; writes `{file: label}` JSON, as the reference.
    Predict(PredictArgs),
}

/// `clamp3 probe train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training files: a folder walked recursively; each file's label is its name up to the
    /// first `_`.
    pub features_dir: PathBuf,
    /// Held-out files (labelled the same way). Default: a random `--eval-split` of the training
    /// files.
    #[arg(long, value_name = "DIR")]
    pub eval_dir: Option<PathBuf>,
    /// Share of the training files held out when there is no `--eval-dir`.
    #[arg(long, default_value_t = 0.2)]
    pub eval_split: f64,
    /// Passes over the training set.
    #[arg(long, default_value_t = 1000)]
    pub epochs: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 1e-5)]
    pub lr: f64,
    /// Each epoch, sample as many files of every label as the rarest label has.
    #[arg(long)]
    pub balanced: bool,
    /// Seed for the initialisation, the split and the shuffles.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where to write the probe (the epoch with the best held-out accuracy).
    #[arg(long, short, default_value = "probe.safetensors")]
    pub output: PathBuf,
    /// Print one JSON object per epoch instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// `clamp3 probe predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// A probe written by `clamp3 probe train`.
    pub probe: PathBuf,
    /// A file or a folder of `.npy` vectors or music files.
    pub input: PathBuf,
    /// Where to write `{file: label}`.
    #[arg(long, short, default_value = "results.json")]
    pub output: PathBuf,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub model: ModelArgs,
}

pub fn run(command: ProbeCommand) -> anyhow::Result<ExitStatus> {
    match command {
        ProbeCommand::Train(args) => train(args),
        ProbeCommand::Predict(args) => predict(args),
    }
}

/// Every supported file under `input`, `.npy` files counting as vectors.
fn files(input: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let inputs = collect(input)?;
    if inputs.files.is_empty() {
        bail!("{}: no .npy vectors or music files", input.display());
    }
    Ok(inputs.files)
}

/// Vectors of files (`.npy` vectors as they are, others embedded). Failures are printed;
/// `None` marks them.
fn vectors(
    embedder: &Embedder,
    files: &[PathBuf],
) -> anyhow::Result<(Vec<Option<Vec<f32>>>, bool)> {
    let (vectors, report) = embedder.files(files)?;
    let ok = embedder.summary(&report, &[]);
    Ok((vectors, ok))
}

/// A probe reads `.npy` files as vectors of any width unless told otherwise: it needs no model
/// for them (they may come from another model than the one configured).
fn vectors_as_they_are(cache: &CacheArgs) -> CacheArgs {
    let mut cache = cache.clone();
    if cache.npy == NpyArg::Auto {
        cache.npy = NpyArg::Vector;
    }
    cache
}

fn examples(
    files: &[PathBuf],
    vectors: Vec<Option<Vec<f32>>>,
    index: &BTreeMap<String, usize>,
) -> anyhow::Result<Vec<Example>> {
    files
        .iter()
        .zip(vectors)
        .filter_map(|(f, v)| v.map(|v| (f, v)))
        .map(|(f, v)| {
            let label = label_of(f);
            let y = index.get(&label).with_context(|| {
                format!(
                    "{}: label {label:?} is not among the training labels",
                    f.display()
                )
            })?;
            Ok((v, *y))
        })
        .collect()
}

fn train(args: TrainArgs) -> anyhow::Result<ExitStatus> {
    let mut train_files = files(&args.features_dir)?;
    let eval_files = match &args.eval_dir {
        Some(dir) => files(dir)?,
        None => {
            if !(0.0..1.0).contains(&args.eval_split) {
                bail!("--eval-split must be in [0, 1)");
            }
            Rng::new(args.seed).shuffle(&mut train_files);
            let n_eval = (train_files.len() as f64 * args.eval_split).ceil() as usize;
            let rest = train_files.split_off(n_eval);
            std::mem::replace(&mut train_files, rest)
        }
    };
    let labels: Vec<String> = {
        let mut l: Vec<String> = train_files.iter().map(|f| label_of(f)).collect();
        l.sort();
        l.dedup();
        l
    };
    let index: BTreeMap<String, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.clone(), i))
        .collect();
    let embedder = Embedder::new(&args.model, &vectors_as_they_are(&args.cache))?;
    let (train_vectors, ok_t) = vectors(&embedder, &train_files)?;
    let (eval_vectors, ok_e) = vectors(&embedder, &eval_files)?;
    if !(ok_t && ok_e) {
        bail!("some files could not be read or embedded (listed above)");
    }
    let train_set = examples(&train_files, train_vectors, &index)?;
    let eval_set = examples(&eval_files, eval_vectors, &index)?;
    let options = TrainOptions {
        epochs: args.epochs,
        learning_rate: args.lr,
        balanced: args.balanced,
        seed: args.seed,
    };
    let json = args.json;
    let mut out = std::io::stdout().lock();
    if !json {
        writeln!(
            out,
            "{} labels, {} training and {} held-out files",
            labels.len(),
            train_set.len(),
            eval_set.len()
        )?;
    }
    // The first failed write (a closed pipe) stops the printing, and is reported after training.
    let mut printed: std::io::Result<()> = Ok(());
    let probe = probe::train(labels, &train_set, &eval_set, options, |r| {
        if printed.is_err() {
            return;
        }
        printed = if json {
            let value = serde_json::json!({
                "epoch": r.epoch, "train_loss": r.train_loss, "train_accuracy": r.train_accuracy,
                "eval_accuracy": r.eval_accuracy, "eval_f1_macro": r.eval_f1, "best": r.best,
            });
            writeln!(out, "{value}")
        } else {
            writeln!(
                out,
                "epoch {}: train loss {:.4}, train acc {:.4}, eval acc {:.4}, eval macro-F1 {:.4}{}",
                r.epoch,
                r.train_loss,
                r.train_accuracy,
                r.eval_accuracy,
                r.eval_f1,
                if r.best { " (best)" } else { "" }
            )
        };
    })?;
    write_atomic(&args.output, &probe.to_safetensors())?;
    printed?;
    if !json {
        writeln!(out, "probe saved to {}", args.output.display())?;
    }
    Ok(ExitStatus::Success)
}

fn predict(args: PredictArgs) -> anyhow::Result<ExitStatus> {
    let bytes =
        std::fs::read(&args.probe).with_context(|| format!("reading {}", args.probe.display()))?;
    let probe =
        Probe::from_safetensors(&bytes).with_context(|| format!("{}", args.probe.display()))?;
    let files = files(&args.input)?;
    let embedder = Embedder::new(&args.model, &vectors_as_they_are(&args.cache))?;
    let (vectors, ok) = vectors(&embedder, &files)?;
    let mut results = serde_json::Map::new();
    let mut failed = !ok;
    for (file, vector) in files.iter().zip(vectors) {
        let Some(vector) = vector else { continue };
        if vector.len() != probe.input_size {
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "error: {}: {} values, the probe expects {}",
                    file.display(),
                    vector.len(),
                    probe.input_size
                );
            }
            failed = true;
            continue;
        }
        let label = &probe.labels[probe.predict(&vector)];
        results.insert(
            file.display().to_string(),
            serde_json::Value::from(label.as_str()),
        );
    }
    let text = serde_json::to_string(&serde_json::Value::Object(results.clone()))?;
    write_atomic(&args.output, text.as_bytes())?;
    writeln!(
        std::io::stdout().lock(),
        "classified {} files, results saved to {}",
        results.len(),
        args.output.display()
    )?;
    Ok(ExitStatus::from_ok(!failed))
}
