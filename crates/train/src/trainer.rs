//! The training loop: epochs of shuffled batches, one AdamW step per logical batch, an eval pass,
//! checkpoints and a JSONL log, for CLaMP 3 ([`Clamp3Task`]) and M3 ([`M3Task`]).
//!
//! Upstream: `train_epoch`, `eval_epoch` and the `__main__` loop of the three training scripts.
//! Differences, each on purpose: the learning rate follows the configured warm-up (upstream's
//! scheduler drives an optimizer it replaced, so its LR is constant: [`LrChoice::Reference`]
//! reproduces that); a resumed run keeps Adam's moments (upstream re-creates the optimizer:
//! `reset_optimizer_on_resume`); bad items are skipped and counted instead of crashing; an empty
//! eval split is reported (no eval loss) instead of a ZeroDivisionError; every epoch draws a new
//! permutation of all items and drops only that epoch's last partial batch.
//!
//! **Large logical batches** (`micro_batch` < `batch_size`): the contrastive loss couples every
//! pair of the batch, so it cannot be summed over micro-batches. The trainer uses gradient
//! caching (Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited
//! Setup"): (1) embed every micro-batch without a graph, (2) compute the loss over the whole
//! batch on those embeddings and its gradient with respect to them, (3) re-run each micro-batch
//! with a graph (same dropout masks) and back-propagate `Σ embedding · cached gradient`. The
//! parameter gradient is the full-batch gradient; memory is one micro-batch's graph of one
//! tower (step 1 records no graph; step 3 back-propagates every music tower, then every text
//! tower, each micro-batch and tower with its own dropout stream). M3's loss is
//! a token mean, so its micro-batches are weighted by their token counts.

use crate::arch::{clip_loss, m3_loss, Clamp3Arch, Clamp3Batch, Clamp3Forward, M3Arch};
use crate::checkpoint::{self, Checkpoint, LrSchedState};
use crate::data::{self, Clamp3Item, Clamp3Shapes, Mode, MusicKind, PreparedItem};
use crate::layers::Ctx;
use crate::optim::{
    accumulate, collect_grads, lambda_lr_state, AdamW, AdamWConfig, Grads, LrSchedule,
};
use crate::params::ParamStore;
use crate::rng::{streams, Rng};
use crate::{Error, Result};
use candle_core::{Device, Tensor, Var};
use clamp3_features::TextTokenizer;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How the learning rate moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LrChoice {
    /// Linear warm-up over `warmup_steps`, then constant (what upstream configures).
    Warmup,
    /// Constant from the first step (what upstream actually does).
    Reference,
}

/// Settings shared by both trainers (the reference's `config.py` names in brackets).
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Peak learning rate (CLAMP3_LEARNING_RATE 1e-5, M3_LEARNING_RATE 1e-4).
    pub lr: f64,
    /// Items per optimizer step (CLAMP3_BATCH_SIZE 256, M3_BATCH_SIZE 16).
    pub batch_size: usize,
    /// Items per forward pass; smaller than `batch_size` accumulates (see the module doc).
    pub micro_batch: Option<usize>,
    /// Last epoch (NUM_EPOCH 100).
    pub epochs: usize,
    /// Warm-up steps of the intended schedule (1000).
    pub warmup_steps: usize,
    /// Warm-up or the reference's constant LR.
    pub lr_choice: LrChoice,
    /// Also save `epoch_<n>` every this many epochs (SAVE_EVERY 5; 0 never).
    pub save_every: usize,
    /// The run's seed.
    pub seed: u64,
    /// Dropout as configured in train mode (off: deterministic, as the goldens).
    pub dropout: bool,
    /// Reproduce upstream's resume: Adam's moments start from zero.
    pub reset_optimizer_on_resume: bool,
    /// AdamW settings.
    pub adam: AdamWConfig,
    /// Where checkpoints and the log go.
    pub out_dir: PathBuf,
}

impl TrainConfig {
    fn schedule(&self) -> LrSchedule {
        match self.lr_choice {
            LrChoice::Reference => LrSchedule::Constant { lr: self.lr },
            LrChoice::Warmup => LrSchedule::Warmup {
                lr: self.lr,
                warmup_steps: self.warmup_steps,
            },
        }
    }
}

/// What one training job is: how a batch becomes a loss and gradients.
pub trait Task {
    /// One data item before preparation.
    type Item;
    /// `"symbolic"` / `"audio"` for CLaMP 3 checkpoints, none for M3.
    fn modality(&self) -> Option<&'static str>;
    /// Loss and gradients of one logical batch; `keys` seed its random draws. Items that cannot
    /// be prepared are skipped and returned as errors.
    fn train_batch(
        &self,
        store: &ParamStore,
        items: &[&Self::Item],
        cfg: &TrainConfig,
        keys: &[u64],
    ) -> Result<BatchOutcome>;
    /// Eval-mode loss of one batch (none when no item could be prepared), plus the features for
    /// retrieval metrics when the task has them.
    fn eval_batch(&self, store: &ParamStore, items: &[&Self::Item]) -> Result<EvalOutcome>;
}

/// The result of one eval batch.
pub struct EvalOutcome {
    /// Eval-mode loss (none when no item could be prepared).
    pub loss: Option<f64>,
    /// Text and music features, for retrieval metrics (CLaMP 3).
    pub features: Option<(Tensor, Tensor)>,
    /// Items skipped.
    pub skipped: Vec<Error>,
}

/// The result of one training batch.
pub struct BatchOutcome {
    /// The loss back-propagated (none when no item was usable).
    pub loss: Option<f64>,
    /// Gradients in optimizer order.
    pub grads: Grads,
    /// Items skipped.
    pub skipped: Vec<Error>,
    /// Items used.
    pub used: usize,
}

/// CLaMP 3 contrastive fine-tuning.
pub struct Clamp3Task {
    /// Architecture.
    pub arch: Clamp3Arch,
    /// Symbolic or audio.
    pub kind: MusicKind,
    /// XLM-R tokenizer.
    pub tokenizer: TextTokenizer,
    /// Constant logit scale (LOGIT_SCALE 1).
    pub logit_scale: f64,
    /// TEXT_DROPOUT: random texts in train mode (else `analysis`).
    pub text_dropout: bool,
}

impl Clamp3Task {
    /// The padded shapes of this model.
    pub fn shapes(&self) -> Clamp3Shapes {
        let c = &self.arch.config;
        Clamp3Shapes {
            max_text_length: c.max_text_length,
            patch_length: c.patch_length,
            max_audio_length: c.max_audio_length,
            audio_width: c.audio_model.hidden_size,
        }
    }

    fn prepare(
        &self,
        items: &[&Clamp3Item],
        mode: Mode,
        keys: &[u64],
        seed: u64,
    ) -> (Vec<PreparedItem>, Vec<Error>) {
        let shapes = self.shapes();
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let mut k = vec![streams::ITEM];
            k.extend_from_slice(keys);
            k.push(i as u64);
            let mut rng = Rng::stream(seed, &k);
            match data::prepare_item(
                item,
                self.kind,
                mode,
                self.text_dropout,
                &self.tokenizer,
                &shapes,
                &mut rng,
            ) {
                Ok(p) => ok.push(p),
                Err(e) => bad.push(e),
            }
        }
        (ok, bad)
    }

    fn features(&self, ctx: &Ctx, batch: &Clamp3Batch) -> candle_core::Result<(Tensor, Tensor)> {
        let f = Clamp3Forward { arch: &self.arch };
        let t = f.text_features(ctx, &batch.text_ids, &batch.text_masks)?;
        let m = f.music_features(ctx, &batch.music, &batch.music_masks)?;
        Ok((t, m))
    }

    /// Full-batch loss and gradients, with gradient caching over micro-batches.
    pub fn loss_and_grads(
        &self,
        store: &ParamStore,
        batch: &Clamp3Batch,
        micro_batch: Option<usize>,
        dropout_seed: Option<(u64, &[u64])>,
    ) -> Result<(f64, Grads)> {
        let b = batch.len();
        let mb = micro_batch.unwrap_or(b).clamp(1, b.max(1));
        // The dropout stream of a forward pass: the step's keys plus `extra`.
        let ctx_for = |extra: &[u64]| match dropout_seed {
            Some((seed, keys)) => Ctx::train(store, seed, &[keys, extra].concat()),
            None => Ctx::eval(store),
        };
        if mb >= b {
            let ctx = ctx_for(&[0]);
            let (t, m) = self.features(&ctx, batch)?;
            let loss = clip_loss(&t, &m, self.logit_scale)?;
            let grads = collect_grads(store, &loss.backward()?);
            return Ok((f64::from(loss.to_scalar::<f32>()?), grads));
        }
        // Each tower of each micro-batch draws its own dropout stream, so the recomputation
        // below can run the towers in any order and still draw the masks of the first pass.
        const TEXT: u64 = 0;
        const MUSIC: u64 = 1;
        let chunks: Vec<(u64, Clamp3Batch, usize, usize)> = (0..b)
            .step_by(mb)
            .enumerate()
            .map(|(c, start)| {
                let len = mb.min(b - start);
                Ok((c as u64, batch.narrow(start, len)?, start, len))
            })
            .collect::<Result<_>>()?;
        let f = Clamp3Forward { arch: &self.arch };
        let mut texts = Vec::new();
        let mut musics = Vec::new();
        for (c, chunk, _, _) in &chunks {
            let ctx = ctx_for(&[*c, TEXT]).without_grad();
            texts.push(f.text_features(&ctx, &chunk.text_ids, &chunk.text_masks)?);
            let ctx = ctx_for(&[*c, MUSIC]).without_grad();
            musics.push(f.music_features(&ctx, &chunk.music, &chunk.music_masks)?);
        }
        let t_all = Var::from_tensor(&Tensor::cat(&texts, 0)?)?;
        let m_all = Var::from_tensor(&Tensor::cat(&musics, 0)?)?;
        let loss = clip_loss(t_all.as_tensor(), m_all.as_tensor(), self.logit_scale)?;
        let cached = loss.backward()?;
        let zeros_t = t_all.as_tensor().zeros_like()?;
        let zeros_m = m_all.as_tensor().zeros_like()?;
        let g_t = cached.get(t_all.as_tensor()).unwrap_or(&zeros_t).clone();
        let g_m = cached.get(m_all.as_tensor()).unwrap_or(&zeros_m).clone();
        let mut grads: Grads = vec![None; store.trainable().count()];
        // The towers share no parameter, so each is back-propagated alone: one tower's graph
        // is alive at a time. Music first: while its graphs (the large ones) are alive, the
        // accumulated gradients hold no text-side tensor (the XLM-R embedding table's is 768 MB
        // at full size). Each parameter still sums its micro-batches in order.
        for (c, chunk, start, len) in &chunks {
            let ctx = ctx_for(&[*c, MUSIC]);
            let m = f.music_features(&ctx, &chunk.music, &chunk.music_masks)?;
            let surrogate = (m * g_m.narrow(0, *start, *len)?)?.sum_all()?;
            accumulate(&mut grads, collect_grads(store, &surrogate.backward()?))?;
        }
        for (c, chunk, start, len) in &chunks {
            let ctx = ctx_for(&[*c, TEXT]);
            let t = f.text_features(&ctx, &chunk.text_ids, &chunk.text_masks)?;
            let surrogate = (t * g_t.narrow(0, *start, *len)?)?.sum_all()?;
            accumulate(&mut grads, collect_grads(store, &surrogate.backward()?))?;
        }
        Ok((f64::from(loss.to_scalar::<f32>()?), grads))
    }
}

impl Task for Clamp3Task {
    type Item = Clamp3Item;

    fn modality(&self) -> Option<&'static str> {
        Some(match self.kind {
            MusicKind::Symbolic => "symbolic",
            MusicKind::Audio => "audio",
        })
    }

    fn train_batch(
        &self,
        store: &ParamStore,
        items: &[&Clamp3Item],
        cfg: &TrainConfig,
        keys: &[u64],
    ) -> Result<BatchOutcome> {
        let (prepared, skipped) = self.prepare(items, Mode::Train, keys, cfg.seed);
        if prepared.is_empty() {
            return Ok(BatchOutcome {
                loss: None,
                grads: vec![None; store.trainable().count()],
                skipped,
                used: 0,
            });
        }
        let batch = data::collate(&prepared, &self.shapes(), store.device())?;
        let dropout = cfg.dropout.then_some((cfg.seed, keys));
        let (loss, grads) = self.loss_and_grads(store, &batch, cfg.micro_batch, dropout)?;
        Ok(BatchOutcome {
            loss: Some(loss),
            grads,
            skipped,
            used: prepared.len(),
        })
    }

    fn eval_batch(&self, store: &ParamStore, items: &[&Clamp3Item]) -> Result<EvalOutcome> {
        let (prepared, skipped) = self.prepare(items, Mode::Eval, &[], 0);
        if prepared.is_empty() {
            return Ok(EvalOutcome {
                loss: None,
                features: None,
                skipped,
            });
        }
        let batch = data::collate(&prepared, &self.shapes(), store.device())?;
        let ctx = Ctx::eval(store);
        let (t, m) = self.features(&ctx, &batch)?;
        let loss = clip_loss(&t, &m, self.logit_scale)?.to_scalar::<f32>()?;
        Ok(EvalOutcome {
            loss: Some(f64::from(loss)),
            features: Some((t, m)),
            skipped,
        })
    }
}

/// M3 masked-patch pre-training.
pub struct M3Task {
    /// Architecture.
    pub arch: M3Arch,
    /// M3_MASK_RATIO (0.45).
    pub mask_ratio: f64,
}

impl M3Task {
    fn items(
        &self,
        files: &[&PathBuf],
        mode: Mode,
        keys: &[u64],
        seed: u64,
    ) -> (Vec<data::M3Item>, Vec<Error>) {
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for (i, path) in files.iter().enumerate() {
            let mut k = vec![streams::ITEM];
            k.extend_from_slice(keys);
            k.push(i as u64);
            let mut rng = Rng::stream(seed, &k);
            match data::m3_item(
                path,
                self.arch.patch_length,
                self.mask_ratio,
                mode,
                &mut rng,
            ) {
                Ok(item) => ok.push(item),
                Err(e) => bad.push(e),
            }
        }
        (ok, bad)
    }
}

/// Tokens an M3 item contributes to the loss (non-zero characters 1..64 of selected patches).
fn m3_tokens(item: &data::M3Item) -> usize {
    item.target
        .iter()
        .zip(&item.selected)
        .filter(|(_, &s)| s)
        .map(|(p, _)| p[1..].iter().filter(|&&c| c != 0).count())
        .sum()
}

impl Task for M3Task {
    type Item = PathBuf;

    fn modality(&self) -> Option<&'static str> {
        None
    }

    fn train_batch(
        &self,
        store: &ParamStore,
        items: &[&PathBuf],
        cfg: &TrainConfig,
        keys: &[u64],
    ) -> Result<BatchOutcome> {
        let (prepared, skipped) = self.items(items, Mode::Train, keys, cfg.seed);
        let mut grads: Grads = vec![None; store.trainable().count()];
        let total: usize = prepared.iter().map(m3_tokens).sum();
        if prepared.is_empty() || total == 0 {
            return Ok(BatchOutcome {
                loss: None,
                grads,
                skipped,
                used: 0,
            });
        }
        let mb = cfg.micro_batch.unwrap_or(prepared.len()).max(1);
        let mut loss_sum = 0f64;
        for (c, chunk) in prepared.chunks(mb).enumerate() {
            let tokens = chunk.iter().map(m3_tokens).sum::<usize>();
            if tokens == 0 {
                continue;
            }
            let batch = data::collate_m3(chunk, store.device())?;
            let mut k = keys.to_vec();
            k.push(c as u64);
            let ctx = if cfg.dropout {
                Ctx::train(store, cfg.seed, &k)
            } else {
                Ctx::eval(store)
            };
            let loss = m3_loss(&ctx, &self.arch, &batch)?;
            let weight = tokens as f64 / total as f64;
            loss_sum += f64::from(loss.to_scalar::<f32>()?) * weight;
            let weighted = if mb >= prepared.len() {
                loss
            } else {
                (loss * weight)?
            };
            accumulate(&mut grads, collect_grads(store, &weighted.backward()?))?;
        }
        Ok(BatchOutcome {
            loss: Some(loss_sum),
            grads,
            skipped,
            used: prepared.len(),
        })
    }

    fn eval_batch(&self, store: &ParamStore, items: &[&PathBuf]) -> Result<EvalOutcome> {
        let (prepared, skipped) = self.items(items, Mode::Eval, &[], 0);
        if prepared.is_empty() || prepared.iter().map(m3_tokens).sum::<usize>() == 0 {
            return Ok(EvalOutcome {
                loss: None,
                features: None,
                skipped,
            });
        }
        let batch = data::collate_m3(&prepared, store.device())?;
        let loss = m3_loss(&Ctx::eval(store), &self.arch, &batch)?.to_scalar::<f32>()?;
        Ok(EvalOutcome {
            loss: Some(f64::from(loss)),
            features: None,
            skipped,
        })
    }
}

/// One line of the training log (`log.jsonl`), one per epoch.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct EpochLog {
    /// The epoch (1-based).
    pub epoch: usize,
    /// Mean training loss of its batches.
    pub train_loss: Option<f64>,
    /// Mean eval loss of the eval batches (none without an eval split).
    pub eval_loss: Option<f64>,
    /// Text → music mean reciprocal rank on the eval split (CLaMP 3 only).
    pub eval_mrr: Option<f64>,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Optimizer steps so far.
    pub global_step: usize,
    /// Training items per second.
    pub items_per_s: f64,
    /// Items skipped this epoch (bad data).
    pub skipped: usize,
}

/// Progress reported after every optimizer step.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// The epoch.
    pub epoch: usize,
    /// Steps done in this epoch.
    pub step: usize,
    /// Steps in this epoch.
    pub steps: usize,
    /// Running mean training loss of the epoch.
    pub loss: f64,
    /// Learning rate of the step.
    pub lr: f64,
    /// Items per second so far in this epoch.
    pub items_per_s: f64,
}

/// A training run: the task, parameters, optimizer, data and progress.
pub struct Trainer<T: Task> {
    /// What is trained.
    pub task: T,
    /// The parameters.
    pub store: ParamStore,
    /// The optimizer.
    pub adam: AdamW,
    /// Settings.
    pub cfg: TrainConfig,
    /// Training items.
    pub train: Vec<T::Item>,
    /// Eval items (may be empty).
    pub eval: Vec<T::Item>,
    /// Last finished epoch.
    pub epoch: usize,
    /// Best epoch so far.
    pub best_epoch: usize,
    /// Its eval loss.
    pub min_eval_loss: f64,
    /// Optimizer steps taken.
    pub global_step: usize,
    /// Every item skipped so far.
    pub skipped: Vec<Error>,
}

/// The checkpoint files of a run directory.
pub mod files {
    /// The best checkpoint (lowest eval loss; every epoch without an eval split), `.pth`.
    pub const BEST_PTH: &str = "best.pth";
    /// The same as safetensors.
    pub const BEST_SAFETENSORS: &str = "best.safetensors";
    /// The latest epoch, for `--resume`.
    pub const LAST: &str = "last.safetensors";
    /// The log.
    pub const LOG: &str = "log.jsonl";
}

impl<T: Task> Trainer<T> {
    /// A run starting at epoch 1 from the parameters in `store`.
    pub fn new(
        task: T,
        store: ParamStore,
        cfg: TrainConfig,
        train: Vec<T::Item>,
        eval: Vec<T::Item>,
    ) -> Self {
        let n = store.trainable().count();
        Self {
            task,
            adam: AdamW::new(cfg.adam, n),
            store,
            cfg,
            train,
            eval,
            epoch: 0,
            best_epoch: 0,
            min_eval_loss: f64::INFINITY,
            global_step: 0,
            skipped: Vec::new(),
        }
    }

    /// Continues from a checkpoint of this trainer (or the reference): weights, epoch, best
    /// epoch and loss, step count, and (unless `reset_optimizer_on_resume`) Adam's moments.
    pub fn resume(&mut self, path: &Path) -> Result<()> {
        let ckpt = checkpoint::read(path)?;
        self.store.assign(&checkpoint::model_map(&ckpt), path)?;
        let n = self.store.trainable().count();
        if !self.cfg.reset_optimizer_on_resume && ckpt.n_params > 0 {
            if ckpt.n_params != n {
                return Err(Error::Checkpoint {
                    path: path.to_path_buf(),
                    reason: format!(
                        "its optimizer has {} parameters, this run trains {n} (another freeze setting?)",
                        ckpt.n_params
                    ),
                });
            }
            let device = self.store.device().clone();
            self.adam.state = ckpt
                .state
                .iter()
                .map(|s| {
                    s.as_ref()
                        .map(|s| -> Result<_> {
                            Ok(crate::optim::AdamState {
                                step: s.step,
                                exp_avg: s.exp_avg.to_device(&device)?,
                                exp_avg_sq: s.exp_avg_sq.to_device(&device)?,
                            })
                        })
                        .transpose()
                })
                .collect::<Result<_>>()?;
        }
        let same_task = ckpt.modality.as_deref() == self.task.modality();
        if same_task {
            self.epoch = ckpt.epoch;
            self.best_epoch = ckpt.best_epoch;
            self.min_eval_loss = ckpt.min_eval_loss;
            self.global_step = if ckpt.global_step > 0 {
                ckpt.global_step
            } else {
                ckpt.lr_sched.last_epoch
            };
        }
        Ok(())
    }

    /// The checkpoint of the current state.
    pub fn checkpoint(&self) -> Checkpoint {
        let (last_lr, last_epoch, step_count) =
            lambda_lr_state(self.cfg.lr, self.cfg.warmup_steps, self.global_step);
        Checkpoint {
            model: self.store.state_dict(),
            adam: self.cfg.adam,
            lr: self.cfg.schedule().lr(self.global_step.saturating_sub(1)),
            n_params: self.store.trainable().count(),
            state: self.adam.state.clone(),
            lr_sched: LrSchedState {
                base_lr: self.cfg.lr,
                last_epoch,
                step_count,
                last_lr,
            },
            epoch: self.epoch,
            best_epoch: self.best_epoch,
            min_eval_loss: self.min_eval_loss,
            modality: self.task.modality().map(str::to_string),
            global_step: self.global_step,
            seed: self.cfg.seed,
        }
    }

    /// Trains one epoch (`self.epoch + 1`), evaluates, writes checkpoints and the log line.
    pub fn run_epoch(&mut self, progress: &mut dyn FnMut(&Progress)) -> Result<EpochLog> {
        let epoch = self.epoch + 1;
        let b = self.cfg.batch_size.max(1);
        let mut order = Rng::stream(self.cfg.seed, &[streams::SAMPLER, epoch as u64])
            .permutation(self.train.len());
        // Drop this epoch's last partial batch unless it is the only one.
        if order.len() > b {
            order.truncate(order.len() / b * b);
        }
        let steps = order.len().div_ceil(b);
        let schedule = self.cfg.schedule();
        let start = Instant::now();
        let (mut loss_sum, mut loss_n, mut items, mut skipped) = (0f64, 0usize, 0usize, 0usize);
        let mut lr = schedule.lr(self.global_step);
        for (s, chunk) in order.chunks(b).enumerate() {
            let batch: Vec<&T::Item> = chunk.iter().map(|&i| &self.train[i]).collect();
            let keys = [epoch as u64, s as u64];
            let outcome = self
                .task
                .train_batch(&self.store, &batch, &self.cfg, &keys)?;
            skipped += outcome.skipped.len();
            self.skipped.extend(outcome.skipped);
            if let Some(loss) = outcome.loss {
                lr = schedule.lr(self.global_step);
                self.adam.step(&self.store, &outcome.grads, lr)?;
                self.global_step += 1;
                loss_sum += loss;
                loss_n += 1;
                items += outcome.used;
            }
            let elapsed = start.elapsed().as_secs_f64().max(1e-9);
            progress(&Progress {
                epoch,
                step: s + 1,
                steps,
                loss: if loss_n > 0 {
                    loss_sum / loss_n as f64
                } else {
                    f64::NAN
                },
                lr,
                items_per_s: items as f64 / elapsed,
            });
        }
        let items_per_s = items as f64 / start.elapsed().as_secs_f64().max(1e-9);
        let (eval_loss, eval_mrr) = self.evaluate()?;
        self.epoch = epoch;
        let improved = match eval_loss {
            Some(l) => l < self.min_eval_loss,
            None => true,
        };
        if improved {
            self.best_epoch = epoch;
            if let Some(l) = eval_loss {
                self.min_eval_loss = l;
            }
        }
        let ckpt = self.checkpoint();
        let out = &self.cfg.out_dir;
        if improved {
            checkpoint::write_pth(&out.join(files::BEST_PTH), &ckpt)?;
            checkpoint::write_safetensors(&out.join(files::BEST_SAFETENSORS), &ckpt)?;
        }
        if self.cfg.save_every > 0 && epoch.is_multiple_of(self.cfg.save_every) {
            checkpoint::write_pth(&out.join(format!("epoch_{epoch}.pth")), &ckpt)?;
        }
        checkpoint::write_safetensors(&out.join(files::LAST), &ckpt)?;
        let log = EpochLog {
            epoch,
            train_loss: (loss_n > 0).then(|| loss_sum / loss_n as f64),
            eval_loss,
            eval_mrr,
            lr,
            global_step: self.global_step,
            items_per_s,
            skipped,
        };
        append_log(&out.join(files::LOG), &log)?;
        Ok(log)
    }

    /// Mean eval loss over batches of `batch_size`, and the text → music MRR when the task has
    /// features. `None` when the eval split is empty.
    pub fn evaluate(&mut self) -> Result<(Option<f64>, Option<f64>)> {
        if self.eval.is_empty() {
            return Ok((None, None));
        }
        let b = self.cfg.batch_size.max(1);
        let (mut sum, mut n) = (0f64, 0usize);
        let (mut texts, mut musics) = (Vec::new(), Vec::new());
        for chunk in self.eval.chunks(b) {
            let refs: Vec<&T::Item> = chunk.iter().collect();
            let outcome = self.task.eval_batch(&self.store, &refs)?;
            self.skipped.extend(outcome.skipped);
            if let Some(l) = outcome.loss {
                sum += l;
                n += 1;
            }
            if let Some((t, m)) = outcome.features {
                texts.push(t);
                musics.push(m);
            }
        }
        let mrr = if texts.is_empty() {
            None
        } else {
            Some(mean_reciprocal_rank(
                &Tensor::cat(&texts, 0)?,
                &Tensor::cat(&musics, 0)?,
            )?)
        };
        Ok(((n > 0).then(|| sum / n as f64), mrr))
    }

    /// Runs the remaining epochs up to `cfg.epochs`.
    pub fn run(
        &mut self,
        progress: &mut dyn FnMut(&Progress),
        on_epoch: &mut dyn FnMut(&EpochLog),
    ) -> Result<()> {
        while self.epoch < self.cfg.epochs {
            let log = self.run_epoch(progress)?;
            on_epoch(&log);
        }
        Ok(())
    }
}

/// Text → music mean reciprocal rank by cosine similarity: item `i`'s text should retrieve item
/// `i`'s music.
pub fn mean_reciprocal_rank(texts: &Tensor, musics: &Tensor) -> Result<f64> {
    let norm = |x: &Tensor| -> candle_core::Result<Tensor> {
        x.broadcast_div(&x.sqr()?.sum_keepdim(1)?.sqrt()?.affine(1.0, 1e-12)?)
    };
    let sims = norm(texts)?.matmul(&norm(musics)?.t()?)?.to_vec2::<f32>()?;
    let n = sims.len();
    let total: f64 = sims
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let better = row.iter().filter(|&&s| s > row[i]).count();
            1.0 / (better + 1) as f64
        })
        .sum();
    Ok(total / n.max(1) as f64)
}

fn append_log(path: &Path, log: &EpochLog) -> Result<()> {
    let mut text = std::fs::read_to_string(path).unwrap_or_default();
    text.push_str(&serde_json::to_string(log).map_err(|e| Error::Setup(e.to_string()))?);
    text.push('\n');
    clamp3_io::write_atomic(path, text.as_bytes()).map_err(crate::error::io_error(path))
}

/// The eval split: the given items, or (when none are given) `fraction` of the training items
/// drawn with the run's seed (`split_data`).
pub fn split_eval<I>(
    train: Vec<I>,
    eval: Option<Vec<I>>,
    fraction: f64,
    seed: u64,
) -> (Vec<I>, Vec<I>) {
    match eval {
        Some(eval) if !eval.is_empty() => (train, eval),
        _ => data::split(train, fraction, &mut Rng::stream(seed, &[streams::SPLIT])),
    }
}

/// Builds the CLaMP 3 parameter store from an initial checkpoint, optionally replacing the
/// symbolic encoder by an M3 checkpoint's encoder (CLAMP3_LOAD_M3), and freezes as the
/// reference's script does.
pub fn clamp3_store(
    arch: &Clamp3Arch,
    init: &Path,
    load_m3: Option<&Path>,
    kind: MusicKind,
    freeze_text: bool,
    device: &Device,
) -> Result<ParamStore> {
    let mut tensors = checkpoint::model_map(&checkpoint::read(init)?);
    drop_buffers(&mut tensors);
    if let Some(m3) = load_m3 {
        let m3_tensors = checkpoint::model_map(&checkpoint::read(m3)?);
        let mut replaced = 0;
        for (name, t) in m3_tensors {
            if let Some(rest) = name.strip_prefix("encoder.") {
                tensors.insert(format!("symbolic_model.{rest}"), t);
                replaced += 1;
            }
        }
        if replaced == 0 {
            return Err(Error::Checkpoint {
                path: m3.to_path_buf(),
                reason: "no encoder.* tensor: not an M3 checkpoint".to_string(),
            });
        }
    }
    let mut store = ParamStore::from_state_dict(&arch.param_spec(), &tensors, init, device)?;
    store.set_frozen(&crate::arch::clamp3_frozen_modules(
        kind == MusicKind::Audio,
        freeze_text,
    ));
    Ok(store)
}

/// The M3 parameter store from a checkpoint.
pub fn m3_store(arch: &M3Arch, init: &Path, device: &Device) -> Result<ParamStore> {
    let mut tensors = checkpoint::model_map(&checkpoint::read(init)?);
    drop_buffers(&mut tensors);
    ParamStore::from_state_dict(&arch.param_spec(), &tensors, init, device)
}

/// Older transformers saved the non-parameter buffers `position_ids` / `token_type_ids`.
fn drop_buffers(tensors: &mut std::collections::HashMap<String, Tensor>) {
    tensors
        .retain(|name, _| !name.ends_with(".position_ids") && !name.ends_with(".token_type_ids"));
}
