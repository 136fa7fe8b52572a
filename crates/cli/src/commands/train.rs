//! `clamp3 train clamp3|m3`: fine-tune CLaMP 3 on text–music pairs, or pre-train M3, with the
//! reference scripts' algorithm and defaults (`train_clamp3_symbolic.py`,
//! `train_clamp3_audio.py`, `train_m3.py`).

use super::ExitStatus;
use crate::args::DeviceArg;
use anyhow::Context;
use clamp3_engine::DeviceChoice;
use clamp3_train::data::MusicKind;
use clamp3_train::job::{Clamp3Job, M3Job, Prepared};
use clamp3_train::optim::AdamWConfig;
use clamp3_train::trainer::{EpochLog, LrChoice, Task, TrainConfig};
use clap::{Args, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

/// What to train.
#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// Contrastive fine-tuning of CLaMP 3: texts against sheet music / MIDI or audio features.
    Clamp3(Clamp3Args),
    /// M3 masked-patch pre-training on folders of interleaved ABC and MTF files.
    M3(M3Args),
}

/// The music side of a CLaMP 3 run.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModalityArg {
    /// `.abc` / `.mtf` files (train_clamp3_symbolic.py).
    Symbolic,
    /// `.npy` MERT features (train_clamp3_audio.py).
    Audio,
}

/// Settings every training run has.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Folder for checkpoints (`best.pth`, `best.safetensors`, `last.safetensors`,
    /// `epoch_<n>.pth`) and `log.jsonl`.
    #[arg(long)]
    out: PathBuf,
    /// Learning rate (reference: 1e-5 for CLaMP 3, 1e-4 for M3).
    #[arg(long)]
    lr: Option<f64>,
    /// Items per optimizer step (reference: 256 for CLaMP 3, 16 for M3, per GPU).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Items per forward pass: a smaller value accumulates gradients; CLaMP 3's contrastive
    /// loss still covers the whole batch (gradient caching).
    #[arg(long)]
    micro_batch: Option<usize>,
    /// Last epoch.
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    /// Linear warm-up steps. The reference configures 1000 but, because of a bug, trains at a
    /// constant rate; this warm-up is the default, `--reference-lr` reproduces the bug.
    #[arg(long, default_value_t = 1000)]
    warmup_steps: usize,
    /// Constant learning rate from the first step, exactly as the reference trains.
    #[arg(long)]
    reference_lr: bool,
    /// Fraction of the training data held out when no eval data is given.
    #[arg(long, default_value_t = 0.01)]
    eval_split: f64,
    /// Also keep `epoch_<n>.pth` every this many epochs (0: never).
    #[arg(long, default_value_t = 5)]
    save_every: usize,
    /// Seed of every random draw (data order, texts, truncation, masking, dropout).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Turn dropout off (deterministic forward passes).
    #[arg(long)]
    no_dropout: bool,
    /// Continue from a checkpoint (`last.safetensors`, or any `.pth` of this or the reference).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// On `--resume`, restart Adam's moments from zero as the reference does (default: keep them).
    #[arg(long)]
    reset_optimizer_on_resume: bool,
    /// Where to compute.
    #[arg(long, value_enum, default_value_t)]
    device: DeviceArg,
}

/// `clamp3 train clamp3`.
#[derive(Debug, Args)]
pub struct Clamp3Args {
    /// Sheet music / MIDI or audio features.
    #[arg(long, value_enum)]
    modality: ModalityArg,
    /// Training JSONL (`filepaths` relative to its folder, text fields, `translations`,
    /// `analysis`).
    #[arg(long)]
    data: PathBuf,
    /// Eval JSONL (default: `--eval-split` of the training items).
    #[arg(long)]
    eval: Option<PathBuf>,
    /// Starting checkpoint (`.pth` or `.safetensors`; default: the official SAAS weights from
    /// the Hub).
    #[arg(long)]
    init: Option<PathBuf>,
    /// Replace the symbolic encoder by this M3 checkpoint's encoder (CLAMP3_LOAD_M3).
    #[arg(long)]
    load_m3: Option<PathBuf>,
    /// Model configuration (`config.json`; default: the official sizes).
    #[arg(long)]
    config: Option<PathBuf>,
    /// XLM-R `tokenizer.json` (default: from the Hub).
    #[arg(long, env = "CLAMP3_TOKENIZER")]
    tokenizer: Option<PathBuf>,
    /// Constant logit scale of the contrastive loss.
    #[arg(long, default_value_t = 1.0)]
    logit_scale: f64,
    /// Train on `analysis` only instead of random texts (TEXT_DROPOUT = False).
    #[arg(long)]
    no_text_dropout: bool,
    /// Freeze the text encoder and its projection.
    #[arg(long)]
    freeze_text: bool,
    /// Fail on the first bad JSONL line or music file instead of skipping it.
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    common: CommonArgs,
}

/// `clamp3 train m3`.
#[derive(Debug, Args)]
pub struct M3Args {
    /// Folders of `.abc` / `.mtf` files.
    #[arg(long, required = true, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Eval folders (default: `--eval-split` of the training files).
    #[arg(long, num_args = 1..)]
    eval: Vec<PathBuf>,
    /// Starting checkpoint (default: a fresh initialisation).
    #[arg(long)]
    init: Option<PathBuf>,
    /// M3 configuration JSON (`encoder`, `decoder`, `patch_size`, `patch_length`; default: the
    /// official M3).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Fraction of patches in the loss.
    #[arg(long, default_value_t = 0.45)]
    mask_ratio: f64,
    #[command(flatten)]
    common: CommonArgs,
}

fn train_config(c: &CommonArgs, lr: f64, batch: usize) -> TrainConfig {
    TrainConfig {
        lr: c.lr.unwrap_or(lr),
        batch_size: c.batch_size.unwrap_or(batch),
        micro_batch: c.micro_batch,
        epochs: c.epochs,
        warmup_steps: c.warmup_steps,
        lr_choice: if c.reference_lr {
            LrChoice::Reference
        } else {
            LrChoice::Warmup
        },
        save_every: c.save_every,
        seed: c.seed,
        dropout: !c.no_dropout,
        reset_optimizer_on_resume: c.reset_optimizer_on_resume,
        adam: AdamWConfig::default(),
        out_dir: c.out.clone(),
    }
}

/// Runs the command.
pub fn run(command: TrainCommand) -> anyhow::Result<ExitStatus> {
    match command {
        TrainCommand::Clamp3(a) => {
            let device = DeviceChoice::from(a.common.device).device()?;
            let init = match a.init {
                Some(path) => path,
                None => {
                    clamp3_features::hub::clamp3_weights(clamp3_features::hub::Variant::Saas, true)?
                }
            };
            let tokenizer = match a.tokenizer {
                Some(path) => path,
                None => clamp3_features::hub::xlm_roberta_tokenizer(true)?,
            };
            let job = Clamp3Job {
                kind: match a.modality {
                    ModalityArg::Symbolic => MusicKind::Symbolic,
                    ModalityArg::Audio => MusicKind::Audio,
                },
                data: a.data,
                eval: a.eval,
                eval_split: a.common.eval_split,
                init,
                load_m3: a.load_m3,
                config: a.config,
                tokenizer,
                logit_scale: a.logit_scale,
                text_dropout: !a.no_text_dropout,
                freeze_text: a.freeze_text,
                strict: a.strict,
                resume: a.common.resume.clone(),
                train: train_config(&a.common, 1e-5, 256),
            };
            let prepared = job.prepare(&device).context("cannot set up the run")?;
            drive(prepared)
        }
        TrainCommand::M3(a) => {
            let device = DeviceChoice::from(a.common.device).device()?;
            let job = M3Job {
                data: a.data,
                eval: a.eval,
                eval_split: a.common.eval_split,
                init: a.init,
                config: a.config,
                mask_ratio: a.mask_ratio,
                resume: a.common.resume.clone(),
                train: train_config(&a.common, 1e-4, 16),
            };
            let prepared = job.prepare(&device).context("cannot set up the run")?;
            drive(prepared)
        }
    }
}

/// Trains with a progress bar and one line per epoch, then lists what was skipped.
fn drive<T: Task>(prepared: Prepared<T>) -> anyhow::Result<ExitStatus> {
    let Prepared {
        mut trainer,
        skipped,
    } = prepared;
    let stderr = std::io::stderr();
    for e in &skipped {
        writeln!(stderr.lock(), "skipped: {e}")?;
    }
    if trainer.eval.is_empty() {
        writeln!(
            stderr.lock(),
            "warning: the eval split is empty; no eval loss, every epoch is kept as best"
        )?;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut on_step = |p: &clamp3_train::trainer::Progress| {
        bar.set_length(p.steps as u64);
        bar.set_position(p.step as u64);
        bar.set_prefix(p.epoch.to_string());
        bar.set_message(format!(
            "loss {:.4} lr {:.2e} {:.1} items/s",
            p.loss, p.lr, p.items_per_s
        ));
    };
    let stdout = std::io::stdout();
    let mut on_epoch = |log: &EpochLog| {
        bar.suspend(|| {
            let _ = writeln!(
                stdout.lock(),
                "{}",
                serde_json::to_string(log).unwrap_or_default()
            );
        });
    };
    trainer.run(&mut on_step, &mut on_epoch)?;
    bar.finish_and_clear();
    let later = trainer.skipped.len();
    for e in &trainer.skipped {
        writeln!(stderr.lock(), "skipped: {e}")?;
    }
    let total = skipped.len() + later;
    if total > 0 {
        writeln!(stderr.lock(), "{total} items skipped (bad data)")?;
    }
    Ok(ExitStatus::from_ok(total == 0))
}
