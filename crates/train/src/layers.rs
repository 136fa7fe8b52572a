//! Training-mode building blocks written with differentiable candle ops only.
//!
//! candle-nn's fused `layer_norm` and `softmax_last_dim` kernels have no backward pass, so
//! LayerNorm and (log-)softmax are composed here from elementary ops. Dropout draws its masks
//! from the run's seeded streams (see [`crate::rng`]) so that a run, and a resumed run, are
//! reproducible; with probability 0 or in eval mode it is the identity.

use crate::params::ParamStore;
use crate::rng::{streams, Rng};
use candle_core::{DType, Result, Tensor, D};
use std::cell::RefCell;

/// What a forward pass needs besides the parameters: train or eval mode and the dropout stream.
pub struct Ctx<'a> {
    /// The model's parameters.
    pub params: &'a ParamStore,
    /// Train mode: dropout active.
    pub train: bool,
    /// Parameters as constants: no graph is recorded, so every activation is freed as soon as
    /// the next op has read it (the first pass of gradient caching needs only the outputs).
    constant: bool,
    dropout: RefCell<Rng>,
}

impl<'a> Ctx<'a> {
    /// An eval-mode context (no dropout).
    pub fn eval(params: &'a ParamStore) -> Self {
        Self {
            params,
            train: false,
            constant: false,
            dropout: RefCell::new(Rng::stream(0, &[])),
        }
    }

    /// A train-mode context whose dropout masks come from stream `keys` of `seed` (callers use
    /// the optimizer step and micro-batch, so a recomputed forward draws the same masks).
    pub fn train(params: &'a ParamStore, seed: u64, keys: &[u64]) -> Self {
        let mut all = vec![streams::DROPOUT];
        all.extend_from_slice(keys);
        Self {
            params,
            train: true,
            constant: false,
            dropout: RefCell::new(Rng::stream(seed, &all)),
        }
    }

    /// The same context with every parameter read as a constant (no gradients): the same
    /// values and dropout masks, without the memory of a graph.
    pub fn without_grad(self) -> Self {
        Self {
            constant: true,
            ..self
        }
    }

    /// A parameter by name.
    pub fn p(&self, name: &str) -> Result<Tensor> {
        let p = self.params.get(name)?;
        Ok(if self.constant { p.detach() } else { p })
    }

    /// `torch.nn.functional.dropout`: zero each element with probability `prob` and scale the
    /// rest by `1 / (1 - prob)`; the identity in eval mode or for `prob == 0`.
    pub fn dropout(&self, x: &Tensor, prob: f32) -> Result<Tensor> {
        if !self.train || prob <= 0.0 {
            return Ok(x.clone());
        }
        let scale = 1.0 / (1.0 - prob);
        let mut rng = self.dropout.borrow_mut();
        let mask: Vec<f32> = (0..x.elem_count())
            .map(|_| if rng.uniform_f32() < prob { 0.0 } else { scale })
            .collect();
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        x * mask
    }
}

/// `nn.Linear` with PyTorch's `[out, in]` weight: `x @ W^T + b` over the last axis.
pub fn linear(ctx: &Ctx, prefix: &str, x: &Tensor) -> Result<Tensor> {
    let w = ctx.p(&format!("{prefix}.weight"))?;
    let b = ctx.p(&format!("{prefix}.bias"))?;
    matmul_last(x, &w.t()?)?.broadcast_add(&b)
}

/// GPT-2's `Conv1D`, weight `[in, out]`: `x @ W + b`.
pub fn conv1d(ctx: &Ctx, prefix: &str, x: &Tensor) -> Result<Tensor> {
    let w = ctx.p(&format!("{prefix}.weight"))?;
    let b = ctx.p(&format!("{prefix}.bias"))?;
    matmul_last(x, &w)?.broadcast_add(&b)
}

/// `x [.., in] @ w [in, out]`, flattening the leading axes into one matmul.
fn matmul_last(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let inner = dims[dims.len() - 1];
    let rows = x.elem_count() / inner;
    let y = x.reshape((rows, inner))?.matmul(w)?;
    let mut out = dims;
    let last = out.len() - 1;
    out[last] = w.dim(1)?;
    y.reshape(out)
}

/// `nn.LayerNorm` over the last axis (biased variance, as PyTorch).
pub fn layer_norm(ctx: &Ctx, prefix: &str, x: &Tensor, eps: f64) -> Result<Tensor> {
    let w = ctx.p(&format!("{prefix}.weight"))?;
    let b = ctx.p(&format!("{prefix}.bias"))?;
    let mean = x.mean_keepdim(D::Minus1)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centred.broadcast_div(&(var + eps)?.sqrt()?)?;
    normed.broadcast_mul(&w)?.broadcast_add(&b)
}

/// Softmax over the last axis. The row maximum is subtracted for stability as a constant: its
/// gradient contributions cancel exactly in theory, and detaching keeps them from adding noise.
pub fn softmax(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// Log-softmax over the last axis (stabilised as [`softmax`]).
pub fn log_softmax(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let shifted = x.broadcast_sub(&max)?;
    shifted.broadcast_sub(&shifted.exp()?.sum_keepdim(D::Minus1)?.log()?)
}

/// Mean cross-entropy of `logits [N, C]` against `labels` (class per row); rows whose label is
/// `None` are ignored (`ignore_index=-100`). Returns a scalar; NaN-free when every row is ignored
/// (then 0, where PyTorch gives NaN).
pub fn cross_entropy(logits: &Tensor, labels: &[Option<u32>]) -> Result<Tensor> {
    let n = labels.len();
    let targets: Vec<u32> = labels.iter().map(|l| l.unwrap_or(0)).collect();
    let weights: Vec<f32> = labels
        .iter()
        .map(|l| if l.is_some() { 1.0 } else { 0.0 })
        .collect();
    let count = weights.iter().filter(|&&w| w > 0.0).count().max(1);
    let device = logits.device();
    let targets = Tensor::from_vec(targets, (n, 1), device)?;
    let weights = Tensor::from_vec(weights, n, device)?;
    let picked = log_softmax(logits)?.gather(&targets, 1)?.squeeze(1)?;
    let total = (picked * weights)?.sum_all()?;
    total.affine(-1.0 / count as f64, 0.0)
}

/// The additive attention bias of a `[batch, seq]` 1/0 mask: `(1 - mask) * f32::MIN`, shaped
/// `[batch, 1, 1, seq]` (Hugging Face `get_extended_attention_mask`).
pub fn padding_bias(mask: &Tensor) -> Result<Tensor> {
    let (b, t) = mask.dims2()?;
    let inverted = (1.0 - mask.to_dtype(DType::F32)?)?;
    (inverted * f64::from(f32::MIN))?.reshape((b, 1, 1, t))
}

/// Multi-head attention core: `q`, `k`, `v` `[batch, seq, hidden]`, scores scaled by
/// `1/sqrt(head_dim)`, an optional additive bias, softmax, attention dropout. Returns
/// `[batch, seq, hidden]` before the output projection.
pub fn attention(
    ctx: &Ctx,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    num_heads: usize,
    bias: &[&Tensor],
    dropout: f32,
) -> Result<Tensor> {
    let (b, t, h) = q.dims3()?;
    let head_dim = h / num_heads;
    let split = |x: &Tensor| {
        x.reshape((b, t, num_heads, head_dim))?
            .transpose(1, 2)?
            .contiguous()
    };
    let (q, k, v) = (split(q)?, split(k)?, split(v)?);
    let mut scores = (q.matmul(&k.t()?.contiguous()?)? / (head_dim as f64).sqrt())?;
    for bias in bias {
        scores = scores.broadcast_add(bias)?;
    }
    let probs = ctx.dropout(&softmax(&scores)?, dropout)?;
    probs
        .matmul(&v)?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((b, t, h))
}

/// Mean over the sequence counting only rows whose `mask` `[batch, seq]` is 1 (`avg_pooling`).
pub fn masked_mean(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let mask = mask.to_dtype(hidden.dtype())?.unsqueeze(2)?;
    hidden
        .broadcast_mul(&mask)?
        .sum(1)?
        .broadcast_div(&mask.sum(1)?)
}
