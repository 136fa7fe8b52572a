//! The post-LayerNorm BERT transformer shared by all three CLaMP 3 encoders.
//!
//! Follows Hugging Face `modeling_bert.py` (transformers v4.40.0,
//! <https://github.com/huggingface/transformers/blob/v4.40.0/src/transformers/models/bert/modeling_bert.py>):
//! `BertSelfAttention` (L221), `BertSelfOutput` (L359), `BertLayer` (L465), `BertEmbeddings`
//! (L180) with `inputs_embeds`. XLM-R's layers are the same code (`modeling_xlm_roberta.py`
//! copies them), only its embeddings differ (see `xlm_roberta.rs`).

use crate::config::{BertConfig, HiddenAct, TextConfig};
use crate::linear::{linear, Linear};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

/// The sizes a transformer stack needs, whichever config they come from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EncoderDims {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: HiddenAct,
}

impl From<&BertConfig> for EncoderDims {
    fn from(c: &BertConfig) -> Self {
        Self {
            hidden_size: c.hidden_size,
            num_hidden_layers: c.num_hidden_layers,
            num_attention_heads: c.num_attention_heads,
            intermediate_size: c.intermediate_size,
            layer_norm_eps: c.layer_norm_eps,
            hidden_act: c.hidden_act,
        }
    }
}

impl From<&TextConfig> for EncoderDims {
    fn from(c: &TextConfig) -> Self {
        Self {
            hidden_size: c.hidden_size,
            num_hidden_layers: c.num_hidden_layers,
            num_attention_heads: c.num_attention_heads,
            intermediate_size: c.intermediate_size,
            layer_norm_eps: c.layer_norm_eps,
            hidden_act: c.hidden_act,
        }
    }
}

/// Applies a feed-forward activation (shared with MERT).
pub(crate) fn activate(act: HiddenAct, x: &Tensor) -> Result<Tensor> {
    match act {
        HiddenAct::Gelu => gelu_erf(x),
        HiddenAct::GeluNew => x.gelu(),
        HiddenAct::Relu => x.relu(),
    }
}

/// The exact GELU: clamp3's vectorised kernel for f32 on the CPU outside training, candle's
/// otherwise.
fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    match crate::cpu::on_cpu_values(x, crate::cpu::gelu_erf)? {
        Some(y) => Tensor::from_vec(y, x.shape(), &Device::Cpu),
        None => x.gelu_erf(),
    }
}

/// Turns a `[batch, seq]` mask of ones (real) and zeros (padding) into the additive
/// `[batch, 1, 1, seq]` bias Hugging Face adds to the attention scores: `(1 - mask) * f32::MIN`.
pub(crate) fn additive_attention_mask(mask: &Tensor) -> Result<Tensor> {
    let (b, t) = mask.dims2()?;
    let mask = mask.to_dtype(DType::F32)?;
    let inverted = (1.0 - mask)?;
    (inverted * f64::from(f32::MIN))?.reshape((b, 1, 1, t))
}

struct SelfAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    num_heads: usize,
    head_dim: usize,
}

impl SelfAttention {
    fn load(vb: VarBuilder, dims: &EncoderDims) -> Result<Self> {
        let h = dims.hidden_size;
        Ok(Self {
            query: linear(h, h, vb.pp("query"))?,
            key: linear(h, h, vb.pp("key"))?,
            value: linear(h, h, vb.pp("value"))?,
            num_heads: dims.num_attention_heads,
            head_dim: h / dims.num_attention_heads,
        })
    }

    fn store_weights_as(&mut self, dtype: DType) -> Result<()> {
        for layer in [&mut self.query, &mut self.key, &mut self.value] {
            *layer = layer.with_weight_dtype(dtype)?;
        }
        Ok(())
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let scale = (self.head_dim as f64).powf(-0.5);
        multi_head_attention(
            &(self.query.forward(x)? * scale)?,
            &self.key.forward(x)?,
            &self.value.forward(x)?,
            self.num_heads,
            mask,
        )
    }
}

/// Scaled dot-product attention over `num_heads` heads: `q` (already scaled) is the projected
/// `[batch, seq, hidden]` query, `k` and `v` the projected `[batch, kv_seq, hidden]` keys and
/// values (the same sequence, or another one in cross-attention); `mask` is an optional additive
/// bias broadcast to `[batch, heads, seq, kv_seq]`. Returns the heads merged back to
/// `[batch, seq, hidden]`, before the output projection.
pub(crate) fn multi_head_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    num_heads: usize,
    mask: Option<&Tensor>,
) -> Result<Tensor> {
    let (b, t, h) = q.dims3()?;
    let split = |x: &Tensor| {
        let (b, t, h) = x.dims3()?;
        x.reshape((b, t, num_heads, h / num_heads))?
            .transpose(1, 2)?
            .contiguous()
    };
    let scores = split(q)?.matmul(&split(k)?.t()?)?;
    let scores = match mask {
        Some(mask) => scores.broadcast_add(mask)?,
        None => scores,
    };
    candle_nn::ops::softmax_last_dim(&scores)?
        .matmul(&split(v)?)?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((b, t, h))
}

/// A dense layer followed by a residual connection and LayerNorm (`BertSelfOutput`,
/// `BertOutput`).
struct DenseResidualNorm {
    dense: Linear,
    layer_norm: LayerNorm,
}

impl DenseResidualNorm {
    fn load(vb: VarBuilder, input: usize, dims: &EncoderDims) -> Result<Self> {
        Ok(Self {
            dense: linear(input, dims.hidden_size, vb.pp("dense"))?,
            layer_norm: layer_norm(dims.hidden_size, dims.layer_norm_eps, vb.pp("LayerNorm"))?,
        })
    }

    fn store_weights_as(&mut self, dtype: DType) -> Result<()> {
        self.dense = self.dense.with_weight_dtype(dtype)?;
        Ok(())
    }

    fn forward(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        self.layer_norm
            .forward(&(self.dense.forward(x)? + residual)?)
    }
}

struct Layer {
    attention: SelfAttention,
    attention_output: DenseResidualNorm,
    intermediate: Linear,
    output: DenseResidualNorm,
    act: HiddenAct,
}

impl Layer {
    fn load(vb: VarBuilder, dims: &EncoderDims) -> Result<Self> {
        Ok(Self {
            attention: SelfAttention::load(vb.pp("attention.self"), dims)?,
            attention_output: DenseResidualNorm::load(
                vb.pp("attention.output"),
                dims.hidden_size,
                dims,
            )?,
            intermediate: linear(
                dims.hidden_size,
                dims.intermediate_size,
                vb.pp("intermediate.dense"),
            )?,
            output: DenseResidualNorm::load(vb.pp("output"), dims.intermediate_size, dims)?,
            act: dims.hidden_act,
        })
    }

    fn store_weights_as(&mut self, dtype: DType) -> Result<()> {
        self.attention.store_weights_as(dtype)?;
        self.attention_output.store_weights_as(dtype)?;
        self.intermediate = self.intermediate.with_weight_dtype(dtype)?;
        self.output.store_weights_as(dtype)
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let attended = self
            .attention_output
            .forward(&self.attention.forward(x, mask)?, x)?;
        let inner = activate(self.act, &self.intermediate.forward(&attended)?)?;
        self.output.forward(&inner, &attended)
    }
}

/// The stack of transformer layers (`BertEncoder`, key prefix `encoder`).
pub(crate) struct Encoder {
    layers: Vec<Layer>,
}

impl Encoder {
    pub(crate) fn load(vb: VarBuilder, dims: &EncoderDims) -> Result<Self> {
        let layers = (0..dims.num_hidden_layers)
            .map(|i| Layer::load(vb.pp(format!("layer.{i}")), dims))
            .collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    /// Stores every dense layer's weight as `dtype` (see [`Linear::with_weight_dtype`]).
    pub(crate) fn store_weights_as(&mut self, dtype: DType) -> Result<()> {
        self.layers
            .iter_mut()
            .try_for_each(|layer| layer.store_weights_as(dtype))
    }

    /// `x`: `[batch, seq, hidden]`; `mask`: optional additive `[batch, 1, 1, seq]` bias.
    pub(crate) fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let mut x = x.clone();
        for layer in &self.layers {
            x = layer.forward(&x, mask)?;
        }
        Ok(x)
    }
}

/// A Hugging Face `BertModel` driven by `inputs_embeds`, as CLaMP 3's symbolic (`M3PatchEncoder.base`)
/// and audio encoders use it. The checkpoint's unused `word_embeddings` (vocab 1) and `pooler` are
/// not loaded.
pub struct BertModel {
    position_embeddings: Tensor,
    token_type_row: Tensor,
    layer_norm: LayerNorm,
    encoder: Encoder,
}

impl BertModel {
    /// Loads the model from a `VarBuilder` positioned at its prefix (e.g. `audio_model`).
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        let dims = EncoderDims::from(cfg);
        let h = cfg.hidden_size;
        let emb = vb.pp("embeddings");
        let position_embeddings = emb.get(
            (cfg.max_position_embeddings, h),
            "position_embeddings.weight",
        )?;
        // Every position uses token type 0.
        let token_type_row = emb
            .get((cfg.type_vocab_size, h), "token_type_embeddings.weight")?
            .get(0)?;
        Ok(Self {
            position_embeddings,
            token_type_row,
            layer_norm: layer_norm(h, cfg.layer_norm_eps, emb.pp("LayerNorm"))?,
            encoder: Encoder::load(vb.pp("encoder"), &dims)?,
        })
    }

    /// Stores the transformer's dense weights as `dtype` (see [`Linear::with_weight_dtype`]).
    pub fn store_weights_as(&mut self, dtype: DType) -> Result<()> {
        self.encoder.store_weights_as(dtype)
    }

    /// `inputs_embeds`: `[batch, seq, hidden]`; `mask`: optional `[batch, seq]` of 1 (real) / 0
    /// (padding). Returns the last hidden state `[batch, seq, hidden]`.
    pub fn forward(&self, inputs_embeds: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (_, t, _) = inputs_embeds.dims3()?;
        let positions = self.position_embeddings.narrow(0, 0, t)?;
        let x = inputs_embeds
            .broadcast_add(&positions)?
            .broadcast_add(&self.token_type_row)?;
        let x = self.layer_norm.forward(&x)?;
        let mask = mask.map(additive_attention_mask).transpose()?;
        self.encoder.forward(&x, mask.as_ref())
    }
}
