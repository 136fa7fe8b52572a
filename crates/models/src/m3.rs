//! M3's patch encoder, CLaMP 3's sheet-music and MIDI encoder.
//!
//! Paper: Wu et al., *CLaMP 3: Universal Music Information Retrieval Across Unaligned Modalities
//! and Unseen Languages* (<https://arxiv.org/abs/2502.10362>), §3.1. Upstream: `M3PatchEncoder` in
//! `code/utils.py` of <https://github.com/sanderwood/clamp3/blob/9016d2b/code/utils.py>.
//!
//! A patch is `patch_size` byte ids below 128; upstream one-hot encodes it to `patch_size * 128`
//! floats and applies a Linear layer. A one-hot row times the weight is one weight column, so we
//! gather `patch_size` columns per patch and add them: the same numbers without the 8192-wide
//! one-hot matrix (64× less arithmetic and memory for the official sizes).

use crate::bert::BertModel;
use crate::config::BertConfig;
use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;

/// Distinct values of one patch position: the one-hot width (ASCII).
pub const PATCH_VOCAB: usize = 128;

/// `symbolic_model.patch_embedding`: Linear(`patch_size * vocab` → H), applied as a gather-sum.
/// `vocab` is the one-hot width of a patch position: 128 in M3 (CLaMP 2 and 3), 98 in CLaMP 1.
pub(crate) struct PatchEmbedding {
    /// The weight transposed to `[patch_size * vocab, H]`, so each one-hot column is a row.
    columns: Tensor,
    bias: Tensor,
    patch_size: usize,
    vocab: usize,
}

impl PatchEmbedding {
    pub(crate) fn load(
        vb: VarBuilder,
        patch_size: usize,
        vocab: usize,
        hidden: usize,
    ) -> Result<Self> {
        let weight = vb.get((hidden, patch_size * vocab), "weight")?;
        Ok(Self {
            columns: weight.t()?.contiguous()?,
            bias: vb.get(hidden, "bias")?,
            patch_size,
            vocab,
        })
    }

    /// `patches`: `[batch, seq, patch_size]` u32 → `[batch, seq, H]`.
    pub(crate) fn forward(&self, patches: &Tensor) -> Result<Tensor> {
        let (b, t, p) = patches.dims3()?;
        if p != self.patch_size {
            candle_core::bail!(
                "patches are {p} wide, the model expects {}",
                self.patch_size
            );
        }
        let max = patches.max_all()?.to_scalar::<u32>()?;
        if max as usize >= self.vocab {
            candle_core::bail!(
                "patch value {max} is outside the one-hot range 0..{}",
                self.vocab
            );
        }
        // One gather per patch position keeps the temporary at [batch * seq, H] instead of
        // [batch * seq * patch_size, H].
        let flat = patches.reshape((b * t, p))?;
        let mut sum = self.bias.unsqueeze(0)?.repeat((b * t, 1))?;
        for position in 0..p {
            let rows = (flat.narrow(1, position, 1)?.squeeze(1)? + (position * self.vocab) as f64)?;
            sum = (sum + self.columns.index_select(&rows, 0)?)?;
        }
        sum.reshape((b, t, ()))
    }
}

/// The M3 patch encoder (key prefix `symbolic_model`): patch embedding + BERT.
pub struct M3PatchEncoder {
    patch_embedding: PatchEmbedding,
    base: BertModel,
}

impl M3PatchEncoder {
    /// Loads the encoder from a `VarBuilder` positioned at `symbolic_model`.
    pub fn load(vb: VarBuilder, cfg: &BertConfig, patch_size: usize) -> Result<Self> {
        Ok(Self {
            patch_embedding: PatchEmbedding::load(
                vb.pp("patch_embedding"),
                patch_size,
                PATCH_VOCAB,
                cfg.hidden_size,
            )?,
            base: BertModel::load(vb.pp("base"), cfg)?,
        })
    }

    /// Stores the transformer's dense weights as `dtype` (see
    /// [`crate::linear::Linear::with_weight_dtype`]).
    pub fn store_weights_as(&mut self, dtype: DType) -> Result<()> {
        self.base.store_weights_as(dtype)
    }

    /// `patches`: `[batch, seq, patch_size]` u32; `mask`: optional `[batch, seq]`.
    /// Returns the last hidden state `[batch, seq, H]`.
    pub fn forward(&self, patches: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let patches = patches.to_dtype(DType::U32)?;
        let embeds = self.patch_embedding.forward(&patches)?;
        self.base.forward(&embeds, mask)
    }
}
