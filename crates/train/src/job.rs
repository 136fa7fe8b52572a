//! Setting a run up from what a user names: data files, checkpoints, a configuration. The CLI's
//! `clamp3 train clamp3|m3` is this plus a progress bar.

use crate::arch::{Clamp3Arch, Gpt2Config, M3Arch};
use crate::data::{self, MusicKind};
use crate::params::ParamStore;
use crate::trainer::{self, Clamp3Task, M3Task, TrainConfig, Trainer};
use crate::{Error, Result};
use candle_core::Device;
use std::path::{Path, PathBuf};

/// A CLaMP 3 fine-tuning job.
#[derive(Debug, Clone)]
pub struct Clamp3Job {
    /// Symbolic (ABC/MTF) or audio (MERT `.npy`).
    pub kind: MusicKind,
    /// Training JSONL.
    pub data: PathBuf,
    /// Eval JSONL (else `eval_split` of the training items).
    pub eval: Option<PathBuf>,
    /// Fraction of the training items held out when no eval file is given (EVAL_SPLIT 0.01).
    pub eval_split: f64,
    /// Starting weights (a CLaMP 3 checkpoint).
    pub init: PathBuf,
    /// An M3 checkpoint whose encoder replaces the symbolic encoder (CLAMP3_LOAD_M3).
    pub load_m3: Option<PathBuf>,
    /// A `config.json` (else the official sizes).
    pub config: Option<PathBuf>,
    /// `tokenizer.json` of XLM-R.
    pub tokenizer: PathBuf,
    /// LOGIT_SCALE.
    pub logit_scale: f64,
    /// TEXT_DROPOUT.
    pub text_dropout: bool,
    /// FREEZE_TEXT.
    pub freeze_text: bool,
    /// A bad line or file fails the run instead of being skipped.
    pub strict: bool,
    /// Continue from this checkpoint.
    pub resume: Option<PathBuf>,
    /// Loop settings.
    pub train: TrainConfig,
}

/// A prepared run and the data lines it skipped while loading.
pub struct Prepared<T: trainer::Task> {
    /// The run.
    pub trainer: Trainer<T>,
    /// Lines or files left out, each with its reason.
    pub skipped: Vec<Error>,
}

fn read_config(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(crate::error::io_error(path))
}

impl Clamp3Job {
    /// Loads data, weights and tokenizer and builds the trainer.
    pub fn prepare(&self, device: &Device) -> Result<Prepared<Clamp3Task>> {
        let mut arch = match &self.config {
            Some(path) => {
                Clamp3Arch::from_json(&read_config(path)?).map_err(|message| Error::Checkpoint {
                    path: path.clone(),
                    reason: message,
                })?
            }
            None => Clamp3Arch::official(),
        };
        if !self.train.dropout {
            arch = Clamp3Arch::with_dropout(arch.config, crate::arch::Dropout::NONE);
        }
        let train = data::load_jsonl(&self.data, self.strict)?;
        let mut skipped = train.skipped;
        let eval = match &self.eval {
            Some(path) => {
                let loaded = data::load_jsonl(path, self.strict)?;
                skipped.extend(loaded.skipped);
                Some(loaded.items)
            }
            None => None,
        };
        let (train_items, eval_items) =
            trainer::split_eval(train.items, eval, self.eval_split, self.train.seed);
        if train_items.is_empty() {
            return Err(Error::Setup(format!(
                "{}: no usable training item",
                self.data.display()
            )));
        }
        let store = trainer::clamp3_store(
            &arch,
            &self.init,
            self.load_m3.as_deref(),
            self.kind,
            self.freeze_text,
            device,
        )?;
        let tokenizer = clamp3_features::text::load_tokenizer(&self.tokenizer)
            .map_err(|e| Error::Setup(e.to_string()))?;
        let task = Clamp3Task {
            arch,
            kind: self.kind,
            tokenizer,
            logit_scale: self.logit_scale,
            text_dropout: self.text_dropout,
        };
        let mut trainer = Trainer::new(task, store, self.train.clone(), train_items, eval_items);
        if let Some(resume) = &self.resume {
            trainer.resume(resume)?;
        }
        Ok(Prepared { trainer, skipped })
    }
}

/// An M3 pre-training job.
#[derive(Debug, Clone)]
pub struct M3Job {
    /// Folders of `.abc` / `.mtf` files.
    pub data: Vec<PathBuf>,
    /// Eval folders (else `eval_split` of the training files).
    pub eval: Vec<PathBuf>,
    /// EVAL_SPLIT.
    pub eval_split: f64,
    /// Starting weights (else a fresh initialisation, as upstream pre-training starts).
    pub init: Option<PathBuf>,
    /// A JSON `{"encoder": BertConfig, "decoder": GPT2Config, "patch_size", "patch_length"}`
    /// (else the official M3).
    pub config: Option<PathBuf>,
    /// M3_MASK_RATIO.
    pub mask_ratio: f64,
    /// Continue from this checkpoint.
    pub resume: Option<PathBuf>,
    /// Loop settings.
    pub train: TrainConfig,
}

#[derive(serde::Deserialize)]
struct M3ConfigFile {
    encoder: clamp3_models::config::BertConfig,
    decoder: Gpt2Config,
    patch_size: usize,
    patch_length: usize,
    #[serde(default)]
    encoder_dropout: Option<crate::arch::Dropout>,
}

impl M3Job {
    /// Lists the files, loads or initialises the weights and builds the trainer.
    pub fn prepare(&self, device: &Device) -> Result<Prepared<M3Task>> {
        let mut arch = match &self.config {
            Some(path) => {
                let file: M3ConfigFile =
                    serde_json::from_str(&read_config(path)?).map_err(|e| Error::Checkpoint {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                M3Arch {
                    encoder: file.encoder,
                    encoder_dropout: file.encoder_dropout.unwrap_or_default(),
                    decoder: file.decoder,
                    patch_size: file.patch_size,
                    patch_length: file.patch_length,
                }
            }
            None => M3Arch::official(),
        };
        if !self.train.dropout {
            arch.encoder_dropout = crate::arch::Dropout::NONE;
            arch.decoder.attn_pdrop = 0.0;
            arch.decoder.embd_pdrop = 0.0;
            arch.decoder.resid_pdrop = 0.0;
        }
        let files = data::list_m3_files(&self.data)?;
        let eval = if self.eval.is_empty() {
            None
        } else {
            Some(data::list_m3_files(&self.eval)?)
        };
        let (train, eval) = trainer::split_eval(files, eval, self.eval_split, self.train.seed);
        if train.is_empty() {
            return Err(Error::Setup(
                "no .abc or .mtf file in the training folders".to_string(),
            ));
        }
        let store = match &self.init {
            Some(init) => trainer::m3_store(&arch, init, device)?,
            None => ParamStore::random(&arch.param_spec(), 0.02, self.train.seed, device)?,
        };
        let task = M3Task {
            arch,
            mask_ratio: self.mask_ratio,
        };
        let mut trainer = Trainer::new(task, store, self.train.clone(), train, eval);
        if let Some(resume) = &self.resume {
            trainer.resume(resume)?;
        }
        Ok(Prepared {
            trainer,
            skipped: Vec::new(),
        })
    }
}
