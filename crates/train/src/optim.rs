//! AdamW exactly as `torch.optim.AdamW` (single-tensor CPU implementation, torch 2.4) and the
//! learning-rate schedule.
//!
//! Per parameter with a gradient, step `t` (1-based, counted in a float32 tensor upstream):
//!
//! ```text
//! p = p * (1 - lr * wd)                       decoupled decay, every parameter
//! m = m + (1 - β1) (g - m)                    lerp
//! v = v β2 + (1 - β2) g g
//! p = p - lr / (1 - β1^t) * m / (sqrt(v) / sqrt(1 - β2^t) + eps)
//! ```
//!
//! with the scalars computed in f64 and rounded to f32 where they meet a tensor. A parameter
//! that never got a gradient has no state and is not touched (not even decayed), as upstream.

use crate::params::ParamStore;
use crate::Result;
use candle_core::{DType, Tensor};

/// AdamW's hyper-parameters (the torch defaults the reference uses, lr aside).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// β1, β2.
    pub betas: (f64, f64),
    /// Added to the denominator.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// The moments of one parameter (`optimizer.state[i]`).
#[derive(Debug, Clone)]
pub struct AdamState {
    /// Steps taken (a float32 scalar upstream).
    pub step: f32,
    /// First moment.
    pub exp_avg: Tensor,
    /// Second moment.
    pub exp_avg_sq: Tensor,
}

/// AdamW over the trainable parameters of a [`ParamStore`], state indexed like
/// `optimizer.state_dict()`: by position among the trainable parameters.
#[derive(Debug, Clone)]
pub struct AdamW {
    /// Hyper-parameters.
    pub config: AdamWConfig,
    /// State per optimizer parameter (`None`: never had a gradient).
    pub state: Vec<Option<AdamState>>,
}

/// The gradient of every trainable parameter, in optimizer order (`None`: no gradient).
pub type Grads = Vec<Option<Tensor>>;

impl AdamW {
    /// A fresh optimizer for `n` parameters.
    pub fn new(config: AdamWConfig, n: usize) -> Self {
        Self {
            config,
            state: vec![None; n],
        }
    }

    /// One step with learning rate `lr`; `grads` in optimizer order.
    pub fn step(&mut self, params: &ParamStore, grads: &Grads, lr: f64) -> Result<()> {
        let c = self.config;
        let (beta1, beta2) = c.betas;
        for (slot, ((_, param), grad)) in params.trainable().zip(grads).enumerate() {
            let Some(g) = grad else { continue };
            let p = param.var.as_tensor();
            if self.state[slot].is_none() {
                self.state[slot] = Some(AdamState {
                    step: 0.0,
                    exp_avg: p.zeros_like()?,
                    exp_avg_sq: p.zeros_like()?,
                });
            }
            let Some(state) = self.state[slot].as_mut() else {
                continue;
            };
            state.step += 1.0;
            let t = f64::from(state.step);
            let scalar = |x: f64| Tensor::new(x as f32, p.device());
            let decayed = p.broadcast_mul(&scalar(1.0 - lr * c.weight_decay)?)?;
            let g = g.to_dtype(DType::F32)?;
            let m = (&state.exp_avg
                + (g.sub(&state.exp_avg)?).broadcast_mul(&scalar(1.0 - beta1)?)?)?;
            let v = (state.exp_avg_sq.broadcast_mul(&scalar(beta2)?)?
                + g.broadcast_mul(&scalar(1.0 - beta2)?)?.mul(&g)?)?;
            let bias_correction1 = 1.0 - beta1.powf(t);
            let bias_correction2_sqrt = (1.0 - beta2.powf(t)).sqrt();
            let step_size = lr / bias_correction1;
            let denom = v
                .sqrt()?
                .broadcast_div(&scalar(bias_correction2_sqrt)?)?
                .broadcast_add(&scalar(c.eps)?)?;
            let update = m.div(&denom)?.broadcast_mul(&scalar(-step_size)?)?;
            param.var.set(&(decayed + update)?)?;
            state.exp_avg = m;
            state.exp_avg_sq = v;
        }
        Ok(())
    }
}

/// The learning rate of optimizer step `k` (0-based).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LrSchedule {
    /// `lr` from the first step: what the reference actually does (its warm-up scheduler is
    /// attached to an optimizer it then replaces).
    Constant {
        /// The learning rate.
        lr: f64,
    },
    /// `get_constant_schedule_with_warmup` on the live optimizer: `lr * min(1, k / warmup)`.
    Warmup {
        /// The learning rate after warm-up.
        lr: f64,
        /// Warm-up steps (the reference configures 1000).
        warmup_steps: usize,
    },
}

impl LrSchedule {
    /// The learning rate used by step `k`.
    pub fn lr(&self, k: usize) -> f64 {
        match *self {
            LrSchedule::Constant { lr } => lr,
            LrSchedule::Warmup { lr, warmup_steps } => {
                if warmup_steps == 0 {
                    lr
                } else {
                    lr * (k as f64 / warmup_steps as f64).min(1.0)
                }
            }
        }
    }

    /// The base learning rate.
    pub fn base_lr(&self) -> f64 {
        match *self {
            LrSchedule::Constant { lr } | LrSchedule::Warmup { lr, .. } => lr,
        }
    }
}

/// The `lr_sched` entry of a checkpoint after `steps` steps: `LambdaLR.state_dict()` of
/// `get_constant_schedule_with_warmup(num_warmup_steps = warmup)`.
pub fn lambda_lr_state(base_lr: f64, warmup: usize, steps: usize) -> (f64, usize, usize) {
    let factor = if warmup == 0 {
        1.0
    } else {
        (steps as f64 / warmup as f64).min(1.0)
    };
    // (_last_lr, last_epoch, _step_count)
    (base_lr * factor, steps, steps + 1)
}

/// Gradients of the trainable parameters from a backward pass, in optimizer order.
pub fn collect_grads(params: &ParamStore, store: &candle_core::backprop::GradStore) -> Grads {
    params
        .trainable()
        .map(|(_, p)| store.get(p.var.as_tensor()).cloned())
        .collect()
}

/// Adds `more` into `acc` (gradient accumulation over micro-batches).
pub fn accumulate(acc: &mut Grads, more: Grads) -> Result<()> {
    for (a, m) in acc.iter_mut().zip(more) {
        *a = match (a.take(), m) {
            (Some(x), Some(y)) => Some((x + y)?),
            (x, y) => x.or(y),
        };
    }
    Ok(())
}

/// `sqrt(Σ g²)` over the parameters that have a gradient.
pub fn global_norm(grads: &Grads) -> Result<f64> {
    let mut total = 0f64;
    for g in grads.iter().flatten() {
        total += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
    }
    Ok(total.sqrt())
}
