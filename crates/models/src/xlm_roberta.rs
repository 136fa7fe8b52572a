//! XLM-RoBERTa, CLaMP 3's text encoder (`FacebookAI/xlm-roberta-base`).
//!
//! Paper: Conneau et al., *Unsupervised Cross-lingual Representation Learning at Scale*
//! (<https://arxiv.org/abs/1911.02116>). Upstream: Hugging Face `modeling_xlm_roberta.py`
//! (transformers v4.40.0,
//! <https://github.com/huggingface/transformers/blob/v4.40.0/src/transformers/models/xlm_roberta/modeling_xlm_roberta.py>).
//! The transformer layers are BERT's (`bert.rs`); what is specific is the embedding block
//! (`XLMRobertaEmbeddings`, L68): position ids count only non-padding tokens and start after the
//! padding index (`create_position_ids_from_input_ids`, L1563), and one token-type row is added.

use crate::bert::{additive_attention_mask, Encoder, EncoderDims};
use crate::config::TextConfig;
use crate::weights::MappedRows;
use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{embedding, layer_norm, Embedding, LayerNorm, VarBuilder};

/// The token table: loaded whole, or rows read from the mapped weight file as ids ask for them.
enum TokenEmbeddings {
    Loaded(Embedding),
    Mapped(MappedRows),
}

impl TokenEmbeddings {
    /// `ids` `[batch, seq]` → `[batch, seq, hidden]`.
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        match self {
            TokenEmbeddings::Loaded(table) => table.forward(ids),
            TokenEmbeddings::Mapped(rows) => {
                let (batch, seq) = ids.dims2()?;
                let flat = ids.flatten_all()?.to_vec1::<u32>()?;
                let width = rows.dims().1;
                Tensor::from_vec(
                    rows.gather(&flat)?,
                    (batch, seq, width),
                    &candle_core::Device::Cpu,
                )?
                .to_device(ids.device())
            }
        }
    }
}

/// The XLM-R encoder (key prefix `text_model`); the unused pooler is not loaded.
pub struct XlmRobertaModel {
    word_embeddings: TokenEmbeddings,
    position_embeddings: Embedding,
    token_type_row: Tensor,
    layer_norm: LayerNorm,
    encoder: Encoder,
    pad_token_id: u32,
    max_position: usize,
}

impl XlmRobertaModel {
    /// Loads the model from a `VarBuilder` positioned at its prefix.
    pub fn load(vb: VarBuilder, cfg: &TextConfig) -> Result<Self> {
        Self::load_with_token_rows(vb, cfg, None)
    }

    /// Like [`Self::load`], with the token table read row by row from `token_rows` (the same
    /// tensor, memory-mapped) instead of loaded whole.
    pub fn load_with_token_rows(
        vb: VarBuilder,
        cfg: &TextConfig,
        token_rows: Option<MappedRows>,
    ) -> Result<Self> {
        let h = cfg.hidden_size;
        let emb = vb.pp("embeddings");
        let token_type = emb.get((cfg.type_vocab_size, h), "token_type_embeddings.weight")?;
        let word_embeddings = match token_rows {
            Some(rows) if rows.dims() == (cfg.vocab_size, h) => TokenEmbeddings::Mapped(rows),
            Some(rows) => candle_core::bail!(
                "the token table is {:?}, the configuration says ({}, {h})",
                rows.dims(),
                cfg.vocab_size
            ),
            None => {
                TokenEmbeddings::Loaded(embedding(cfg.vocab_size, h, emb.pp("word_embeddings"))?)
            }
        };
        Ok(Self {
            word_embeddings,
            position_embeddings: embedding(
                cfg.max_position_embeddings,
                h,
                emb.pp("position_embeddings"),
            )?,
            token_type_row: token_type.get(0)?,
            layer_norm: layer_norm(h, cfg.layer_norm_eps, emb.pp("LayerNorm"))?,
            encoder: Encoder::load(vb.pp("encoder"), &EncoderDims::from(cfg))?,
            pad_token_id: cfg.pad_token_id,
            max_position: cfg.max_position_embeddings,
        })
    }

    /// Position ids as Hugging Face computes them from the ids: every non-padding token gets
    /// `pad + (its rank among non-padding tokens)`, every padding id gets `pad`. A literal `<pad>`
    /// inside a text is therefore treated as padding here even though it is attended to.
    fn position_ids(&self, ids: &Tensor) -> Result<Tensor> {
        // f32 holds these small integers exactly, and candle's cumsum needs a float dtype.
        let not_pad = ids.ne(self.pad_token_id)?.to_dtype(DType::F32)?;
        let ranks = not_pad.cumsum(D::Minus1)?;
        let positions =
            ((ranks * &not_pad)? + f64::from(self.pad_token_id))?.to_dtype(DType::U32)?;
        let max = positions.max_all()?.to_scalar::<u32>()? as usize;
        if max >= self.max_position {
            candle_core::bail!(
                "sequence needs position {max} but the model has {} positions",
                self.max_position
            );
        }
        Ok(positions)
    }

    /// Stores the transformer's dense weights as `dtype` (see
    /// [`crate::linear::Linear::with_weight_dtype`]).
    pub fn store_weights_as(&mut self, dtype: DType) -> Result<()> {
        self.encoder.store_weights_as(dtype)
    }

    /// `ids`: `[batch, seq]` u32; `mask`: optional `[batch, seq]` of 1 (attend) / 0 (padding).
    /// Returns the last hidden state `[batch, seq, hidden]`.
    pub fn forward(&self, ids: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let positions = self.position_ids(ids)?;
        let x = (self.word_embeddings.forward(ids)?
            + self.position_embeddings.forward(&positions)?)?
        .broadcast_add(&self.token_type_row)?;
        let x = self.layer_norm.forward(&x)?;
        let mask = mask.map(additive_attention_mask).transpose()?;
        self.encoder.forward(&x, mask.as_ref())
    }
}
