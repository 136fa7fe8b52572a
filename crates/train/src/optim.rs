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
use candle_core::{CpuStorage, DType, InplaceOp2, InplaceOp3, Layout, Tensor};

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
            let scalars = StepScalars {
                decay: (1.0 - lr * c.weight_decay) as f32,
                one_minus_beta1: (1.0 - beta1) as f32,
                beta2: beta2 as f32,
                one_minus_beta2: (1.0 - beta2) as f32,
                bias_correction2_sqrt: (1.0 - beta2.powf(t)).sqrt() as f32,
                eps: c.eps as f32,
                neg_step_size: (-(lr / (1.0 - beta1.powf(t)))) as f32,
            };
            let g = g.to_dtype(DType::F32)?.contiguous()?;
            if in_place_ok(&[p, &g, &state.exp_avg, &state.exp_avg_sq]) {
                state.exp_avg.inplace_op2(&g, &FirstMoment(scalars))?;
                state.exp_avg_sq.inplace_op2(&g, &SecondMoment(scalars))?;
                p.inplace_op3(&state.exp_avg, &state.exp_avg_sq, &Update(scalars))?;
            } else {
                let (m, v, new_p) = step_with_tensor_ops(p, &g, state, scalars)?;
                param.var.set(&new_p)?;
                state.exp_avg = m;
                state.exp_avg_sq = v;
            }
        }
        Ok(())
    }
}

/// The scalars of one AdamW step, rounded to f32 where they meet a tensor.
#[derive(Debug, Clone, Copy)]
struct StepScalars {
    decay: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    bias_correction2_sqrt: f32,
    eps: f32,
    neg_step_size: f32,
}

/// The step as tensor ops (any device): returns the new moments and parameter. Every op
/// allocates a parameter-sized tensor, so [`AdamW::step`] uses the in-place kernels on the CPU,
/// which compute the same f32 operations in the same order.
fn step_with_tensor_ops(
    p: &Tensor,
    g: &Tensor,
    state: &AdamState,
    s: StepScalars,
) -> Result<(Tensor, Tensor, Tensor)> {
    let scalar = |x: f32| Tensor::new(x, p.device());
    let decayed = p.broadcast_mul(&scalar(s.decay)?)?;
    let m =
        (&state.exp_avg + (g.sub(&state.exp_avg)?).broadcast_mul(&scalar(s.one_minus_beta1)?)?)?;
    let v = (state.exp_avg_sq.broadcast_mul(&scalar(s.beta2)?)?
        + g.broadcast_mul(&scalar(s.one_minus_beta2)?)?.mul(g)?)?;
    let denom = v
        .sqrt()?
        .broadcast_div(&scalar(s.bias_correction2_sqrt)?)?
        .broadcast_add(&scalar(s.eps)?)?;
    let update = m.div(&denom)?.broadcast_mul(&scalar(s.neg_step_size)?)?;
    let new_p = (decayed + update)?;
    Ok((m, v, new_p))
}

/// Whether the in-place kernels apply: f32 CPU tensors, contiguous from their start.
fn in_place_ok(tensors: &[&Tensor]) -> bool {
    tensors.iter().all(|t| {
        t.device().is_cpu() && t.dtype() == DType::F32 && t.layout().contiguous_offsets().is_some()
    })
}

/// The contiguous f32 values of a CPU storage under `layout`.
fn values<'a>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("AdamW: a non-contiguous tensor".into()))?;
    Ok(&storage.as_slice::<f32>()?[start..end])
}

/// [`values`], mutable.
fn values_mut<'a>(
    storage: &'a mut CpuStorage,
    layout: &Layout,
) -> candle_core::Result<&'a mut [f32]> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("AdamW: a non-contiguous tensor".into()))?;
    match storage {
        CpuStorage::F32(data) => Ok(&mut data[start..end]),
        _ => Err(candle_core::Error::Msg("AdamW: not an f32 tensor".into())),
    }
}

/// `m = m + (g - m) (1 - β1)` in place (`exp_avg.lerp_(grad, 1 - β1)`).
struct FirstMoment(StepScalars);

impl InplaceOp2 for FirstMoment {
    fn name(&self) -> &'static str {
        "adamw-first-moment"
    }

    fn cpu_fwd(
        &self,
        m: &mut CpuStorage,
        m_layout: &Layout,
        g: &CpuStorage,
        g_layout: &Layout,
    ) -> candle_core::Result<()> {
        let w = self.0.one_minus_beta1;
        let g = values(g, g_layout)?;
        for (m, &g) in values_mut(m, m_layout)?.iter_mut().zip(g) {
            *m += (g - *m) * w;
        }
        Ok(())
    }
}

/// `v = v β2 + (g (1 - β2)) g` in place.
struct SecondMoment(StepScalars);

impl InplaceOp2 for SecondMoment {
    fn name(&self) -> &'static str {
        "adamw-second-moment"
    }

    fn cpu_fwd(
        &self,
        v: &mut CpuStorage,
        v_layout: &Layout,
        g: &CpuStorage,
        g_layout: &Layout,
    ) -> candle_core::Result<()> {
        let (beta2, w) = (self.0.beta2, self.0.one_minus_beta2);
        let g = values(g, g_layout)?;
        for (v, &g) in values_mut(v, v_layout)?.iter_mut().zip(g) {
            *v = *v * beta2 + g * w * g;
        }
        Ok(())
    }
}

/// `p = p decay + m / (sqrt(v) / bc2 + eps) · (-step)` in place.
struct Update(StepScalars);

impl InplaceOp3 for Update {
    fn name(&self) -> &'static str {
        "adamw-update"
    }

    fn cpu_fwd(
        &self,
        p: &mut CpuStorage,
        p_layout: &Layout,
        m: &CpuStorage,
        m_layout: &Layout,
        v: &CpuStorage,
        v_layout: &Layout,
    ) -> candle_core::Result<()> {
        let s = self.0;
        let (m, v) = (values(m, m_layout)?, values(v, v_layout)?);
        for ((p, &m), &v) in values_mut(p, p_layout)?.iter_mut().zip(m).zip(v) {
            let denom = v.sqrt() / s.bias_correction2_sqrt + s.eps;
            *p = *p * s.decay + m / denom * s.neg_step_size;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::ParamSpec;
    use candle_core::Device;

    /// The in-place CPU kernels against the tensor ops they replace, bit for bit, over steps
    /// with a transposed (non-contiguous) gradient among them.
    #[test]
    fn in_place_step_equals_tensor_ops_bit_for_bit() {
        let device = Device::Cpu;
        let spec = ParamSpec {
            params: vec![("w.weight".into(), vec![3, 5]), ("w.bias".into(), vec![7])],
            aliases: Vec::new(),
        };
        let store = ParamStore::random(&spec, 0.5, 7, &device).expect("store");
        let mut adam = AdamW::new(AdamWConfig::default(), 2);
        let mut expected: Vec<Tensor> = store
            .params()
            .iter()
            .map(|p| p.var.as_tensor().copy().expect("copy"))
            .collect();
        let mut states: Vec<Option<AdamState>> = vec![None, None];
        for step in 0..4u64 {
            let lr = 1e-3 * (step + 1) as f64;
            let grads: Grads = vec![
                Some(
                    Tensor::randn(0f32, 1.0, (5, 3), &device)
                        .and_then(|g| g.t())
                        .expect("grad"),
                ),
                Some(Tensor::randn(0f32, 1e-3, 7, &device).expect("grad")),
            ];
            for ((p, g), state) in expected.iter_mut().zip(&grads).zip(&mut states) {
                let g = g.as_ref().expect("grad");
                let state = state.get_or_insert_with(|| AdamState {
                    step: 0.0,
                    exp_avg: p.zeros_like().expect("zeros"),
                    exp_avg_sq: p.zeros_like().expect("zeros"),
                });
                state.step += 1.0;
                let t = f64::from(state.step);
                let c = AdamWConfig::default();
                let scalars = StepScalars {
                    decay: (1.0 - lr * c.weight_decay) as f32,
                    one_minus_beta1: (1.0 - c.betas.0) as f32,
                    beta2: c.betas.1 as f32,
                    one_minus_beta2: (1.0 - c.betas.1) as f32,
                    bias_correction2_sqrt: (1.0 - c.betas.1.powf(t)).sqrt() as f32,
                    eps: c.eps as f32,
                    neg_step_size: (-(lr / (1.0 - c.betas.0.powf(t)))) as f32,
                };
                let (m, v, new_p) = step_with_tensor_ops(p, g, state, scalars).expect("step");
                (state.exp_avg, state.exp_avg_sq, *p) = (m, v, new_p);
            }
            adam.step(&store, &grads, lr).expect("adam");
            let bits = |t: &Tensor| -> Vec<u32> {
                t.flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .expect("values")
                    .iter()
                    .map(|x| x.to_bits())
                    .collect()
            };
            for (i, p) in store.params().iter().enumerate() {
                assert_eq!(bits(p.var.as_tensor()), bits(&expected[i]), "step {step}");
                let (got, want) = (
                    adam.state[i].as_ref().expect("state"),
                    states[i].as_ref().expect("state"),
                );
                assert_eq!(bits(&got.exp_avg), bits(&want.exp_avg));
                assert_eq!(bits(&got.exp_avg_sq), bits(&want.exp_avg_sq));
            }
        }
    }
}
