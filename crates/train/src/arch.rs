//! The trained architectures: CLaMP 3 (XLM-R text encoder, M3 patch encoder, audio BERT, three
//! projections) and M3 (patch encoder + GPT-2 patch decoder), as forward functions over a
//! [`ParamStore`].
//!
//! Upstream: `CLaMP3Model`, `M3PatchEncoder`, `M3TokenDecoder`, `M3Model` in
//! <https://github.com/sanderwood/clamp3/blob/9016d2b/code/utils.py>; the layers are Hugging Face
//! transformers v4.40 `modeling_bert.py` (post-LN, GELU erf), `modeling_xlm_roberta.py`
//! (embeddings) and `modeling_gpt2.py` (pre-LN, `gelu_new`, Conv1D), with their dropout sites.
//! The inference model in `clamp3-models` computes the same forward in eval mode (a test checks
//! it); this one adds dropout and keeps every op differentiable.

use crate::layers::{self, Ctx};
use candle_core::{DType, Result, Tensor};
use clamp3_models::config::{BertConfig, HiddenAct, TextConfig};
use serde::{Deserialize, Serialize};

/// Distinct values of one patch position: the one-hot width (ASCII).
pub const PATCH_VOCAB: usize = 128;

/// Dropout probabilities of one encoder (`hidden_dropout_prob`, `attention_probs_dropout_prob`;
/// 0.1 in every official configuration).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Dropout {
    /// After the embeddings and every dense sub-layer.
    pub hidden: f32,
    /// On the attention probabilities.
    pub attention: f32,
}

impl Default for Dropout {
    fn default() -> Self {
        Self {
            hidden: 0.1,
            attention: 0.1,
        }
    }
}

impl Dropout {
    /// No dropout (the goldens' tiny configurations).
    pub const NONE: Dropout = Dropout {
        hidden: 0.0,
        attention: 0.0,
    };

    /// Reads `hidden_dropout_prob` / `attention_probs_dropout_prob` from an encoder's JSON
    /// config (each 0.1 when absent, the BertConfig default).
    pub fn from_json(v: &serde_json::Value) -> Self {
        let get = |key: &str| v.get(key).and_then(|x| x.as_f64()).unwrap_or(0.1) as f32;
        Self {
            hidden: get("hidden_dropout_prob"),
            attention: get("attention_probs_dropout_prob"),
        }
    }
}

/// Names and shapes of a model's parameters in `model.parameters()` order, plus tied names.
#[derive(Debug, Clone, Default)]
pub struct ParamSpec {
    /// `(name, shape)` in order.
    pub params: Vec<(String, Vec<usize>)>,
    /// `(alias, target)`: state-dict names that are the same tensor as `target`.
    pub aliases: Vec<(String, String)>,
}

impl ParamSpec {
    fn add(&mut self, name: String, shape: &[usize]) {
        self.params.push((name, shape.to_vec()));
    }
}

/// The sizes of a BERT-style stack.
#[derive(Debug, Clone, Copy)]
struct Dims {
    hidden: usize,
    layers: usize,
    heads: usize,
    intermediate: usize,
    positions: usize,
    type_vocab: usize,
    vocab: usize,
    eps: f64,
    act: HiddenAct,
}

impl Dims {
    fn bert(c: &BertConfig) -> Self {
        Self {
            hidden: c.hidden_size,
            layers: c.num_hidden_layers,
            heads: c.num_attention_heads,
            intermediate: c.intermediate_size,
            positions: c.max_position_embeddings,
            type_vocab: c.type_vocab_size,
            // `BertModel(vocab_size=1)`: inputs come as embeddings, the table is unused.
            vocab: 1,
            eps: c.layer_norm_eps,
            act: c.hidden_act,
        }
    }

    fn text(c: &TextConfig) -> Self {
        Self {
            hidden: c.hidden_size,
            layers: c.num_hidden_layers,
            heads: c.num_attention_heads,
            intermediate: c.intermediate_size,
            positions: c.max_position_embeddings,
            type_vocab: c.type_vocab_size,
            vocab: c.vocab_size,
            eps: c.layer_norm_eps,
            act: c.hidden_act,
        }
    }
}

fn bert_spec(spec: &mut ParamSpec, prefix: &str, d: &Dims) {
    let (h, i) = (d.hidden, d.intermediate);
    let e = format!("{prefix}.embeddings");
    spec.add(format!("{e}.word_embeddings.weight"), &[d.vocab, h]);
    spec.add(format!("{e}.position_embeddings.weight"), &[d.positions, h]);
    spec.add(
        format!("{e}.token_type_embeddings.weight"),
        &[d.type_vocab, h],
    );
    spec.add(format!("{e}.LayerNorm.weight"), &[h]);
    spec.add(format!("{e}.LayerNorm.bias"), &[h]);
    for l in 0..d.layers {
        let p = format!("{prefix}.encoder.layer.{l}");
        for qkv in ["query", "key", "value"] {
            spec.add(format!("{p}.attention.self.{qkv}.weight"), &[h, h]);
            spec.add(format!("{p}.attention.self.{qkv}.bias"), &[h]);
        }
        spec.add(format!("{p}.attention.output.dense.weight"), &[h, h]);
        spec.add(format!("{p}.attention.output.dense.bias"), &[h]);
        spec.add(format!("{p}.attention.output.LayerNorm.weight"), &[h]);
        spec.add(format!("{p}.attention.output.LayerNorm.bias"), &[h]);
        spec.add(format!("{p}.intermediate.dense.weight"), &[i, h]);
        spec.add(format!("{p}.intermediate.dense.bias"), &[i]);
        spec.add(format!("{p}.output.dense.weight"), &[h, i]);
        spec.add(format!("{p}.output.dense.bias"), &[h]);
        spec.add(format!("{p}.output.LayerNorm.weight"), &[h]);
        spec.add(format!("{p}.output.LayerNorm.bias"), &[h]);
    }
    spec.add(format!("{prefix}.pooler.dense.weight"), &[h, h]);
    spec.add(format!("{prefix}.pooler.dense.bias"), &[h]);
}

fn linear_spec(spec: &mut ParamSpec, prefix: &str, input: usize, output: usize) {
    spec.add(format!("{prefix}.weight"), &[output, input]);
    spec.add(format!("{prefix}.bias"), &[output]);
}

fn patch_encoder_spec(spec: &mut ParamSpec, prefix: &str, cfg: &BertConfig, patch_size: usize) {
    linear_spec(
        spec,
        &format!("{prefix}.patch_embedding"),
        patch_size * PATCH_VOCAB,
        cfg.hidden_size,
    );
    bert_spec(spec, &format!("{prefix}.base"), &Dims::bert(cfg));
}

fn apply_act(act: HiddenAct, x: &Tensor) -> Result<Tensor> {
    match act {
        HiddenAct::Gelu => x.gelu_erf(),
        HiddenAct::GeluNew => x.gelu(),
        HiddenAct::Relu => x.relu(),
    }
}

/// The post-LN transformer layers of BERT / XLM-R (`BertEncoder`) on embeddings `x`.
fn bert_layers(
    ctx: &Ctx,
    prefix: &str,
    d: &Dims,
    drop: Dropout,
    x: Tensor,
    bias: &Tensor,
) -> Result<Tensor> {
    let mut x = x;
    for l in 0..d.layers {
        let p = format!("{prefix}.encoder.layer.{l}");
        let q = layers::linear(ctx, &format!("{p}.attention.self.query"), &x)?;
        let k = layers::linear(ctx, &format!("{p}.attention.self.key"), &x)?;
        let v = layers::linear(ctx, &format!("{p}.attention.self.value"), &x)?;
        let attended = layers::attention(ctx, &q, &k, &v, d.heads, &[bias], drop.attention)?;
        let out = layers::linear(ctx, &format!("{p}.attention.output.dense"), &attended)?;
        let out = ctx.dropout(&out, drop.hidden)?;
        let x1 = layers::layer_norm(
            ctx,
            &format!("{p}.attention.output.LayerNorm"),
            &(out + &x)?,
            d.eps,
        )?;
        let inner = apply_act(
            d.act,
            &layers::linear(ctx, &format!("{p}.intermediate.dense"), &x1)?,
        )?;
        let out = layers::linear(ctx, &format!("{p}.output.dense"), &inner)?;
        let out = ctx.dropout(&out, drop.hidden)?;
        x = layers::layer_norm(ctx, &format!("{p}.output.LayerNorm"), &(out + &x1)?, d.eps)?;
    }
    Ok(x)
}

/// `BertModel(inputs_embeds=x, attention_mask=mask).last_hidden_state`.
fn bert_from_embeds(
    ctx: &Ctx,
    prefix: &str,
    d: &Dims,
    drop: Dropout,
    embeds: &Tensor,
    mask: &Tensor,
) -> Result<Tensor> {
    let (_, t, _) = embeds.dims3()?;
    let e = format!("{prefix}.embeddings");
    let token_type = ctx
        .p(&format!("{e}.token_type_embeddings.weight"))?
        .get(0)?;
    let positions = ctx
        .p(&format!("{e}.position_embeddings.weight"))?
        .narrow(0, 0, t)?;
    let x = embeds
        .broadcast_add(&token_type)?
        .broadcast_add(&positions)?;
    let x = layers::layer_norm(ctx, &format!("{e}.LayerNorm"), &x, d.eps)?;
    let x = ctx.dropout(&x, drop.hidden)?;
    bert_layers(ctx, prefix, d, drop, x, &layers::padding_bias(mask)?)
}

/// The CLaMP 3 model's configuration for training: the inference config plus dropout.
#[derive(Debug, Clone)]
pub struct Clamp3Arch {
    /// Sizes (the `config.json` schema of `clamp3-models`).
    pub config: clamp3_models::Config,
    /// Dropout of the text encoder.
    pub text_dropout: Dropout,
    /// Dropout of the symbolic encoder.
    pub symbolic_dropout: Dropout,
    /// Dropout of the audio encoder.
    pub audio_dropout: Dropout,
}

impl Clamp3Arch {
    /// The official sizes with the configs' default dropout (0.1 everywhere).
    pub fn official() -> Self {
        Self::with_dropout(clamp3_models::Config::default(), Dropout::default())
    }

    /// `config` with the same dropout in every encoder.
    pub fn with_dropout(config: clamp3_models::Config, dropout: Dropout) -> Self {
        Self {
            config,
            text_dropout: dropout,
            symbolic_dropout: dropout,
            audio_dropout: dropout,
        }
    }

    /// Reads a `config.json` of the `clamp3-models` schema; dropout keys inside the encoder
    /// objects are read when present (else 0.1).
    pub fn from_json(text: &str) -> std::result::Result<Self, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let config: clamp3_models::Config =
            serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(Self {
            config,
            text_dropout: Dropout::from_json(&value["text_model"]),
            symbolic_dropout: Dropout::from_json(&value["symbolic_model"]),
            audio_dropout: Dropout::from_json(&value["audio_model"]),
        })
    }

    /// Every parameter of `CLaMP3Model` in `model.parameters()` order.
    pub fn param_spec(&self) -> ParamSpec {
        let c = &self.config;
        let mut spec = ParamSpec::default();
        bert_spec(&mut spec, "text_model", &Dims::text(&c.text_model));
        linear_spec(
            &mut spec,
            "text_proj",
            c.text_model.hidden_size,
            c.hidden_size,
        );
        patch_encoder_spec(&mut spec, "symbolic_model", &c.symbolic_model, c.patch_size);
        linear_spec(
            &mut spec,
            "symbolic_proj",
            c.symbolic_model.hidden_size,
            c.hidden_size,
        );
        bert_spec(&mut spec, "audio_model", &Dims::bert(&c.audio_model));
        linear_spec(
            &mut spec,
            "audio_proj",
            c.audio_model.hidden_size,
            c.hidden_size,
        );
        spec
    }
}

/// The music side of a CLaMP 3 batch.
#[derive(Debug, Clone)]
pub enum MusicInput {
    /// `[batch, patch_length, patch_size]` u32 patch ids (symbolic).
    Patches(Tensor),
    /// `[batch, max_audio_length, H_audio]` f32 MERT features (audio).
    Features(Tensor),
}

/// One CLaMP 3 batch, shaped as the reference's `collate_batch` makes it.
#[derive(Debug, Clone)]
pub struct Clamp3Batch {
    /// `[batch, max_text_length]` u32 token ids.
    pub text_ids: Tensor,
    /// `[batch, max_text_length]` f32 1/0.
    pub text_masks: Tensor,
    /// Patches or features.
    pub music: MusicInput,
    /// `[batch, L]` f32 1/0.
    pub music_masks: Tensor,
}

impl Clamp3Batch {
    /// Items in the batch.
    pub fn len(&self) -> usize {
        self.text_ids.dims().first().copied().unwrap_or(0)
    }

    /// Whether the batch has no item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rows `start..start + len` of every tensor (a micro-batch).
    pub fn narrow(&self, start: usize, len: usize) -> Result<Self> {
        Ok(Self {
            text_ids: self.text_ids.narrow(0, start, len)?,
            text_masks: self.text_masks.narrow(0, start, len)?,
            music: match &self.music {
                MusicInput::Patches(t) => MusicInput::Patches(t.narrow(0, start, len)?),
                MusicInput::Features(t) => MusicInput::Features(t.narrow(0, start, len)?),
            },
            music_masks: self.music_masks.narrow(0, start, len)?,
        })
    }
}

/// XLM-R position ids: `pad + rank among non-pad tokens` for real tokens, `pad` for padding.
fn xlmr_positions(ids: &Tensor, pad: u32) -> Result<Tensor> {
    let (b, t) = ids.dims2()?;
    let ids = ids.to_dtype(DType::U32)?.to_vec2::<u32>()?;
    let mut out = Vec::with_capacity(b * t);
    for row in ids {
        let mut rank = 0;
        for id in row {
            if id == pad {
                out.push(pad);
            } else {
                rank += 1;
                out.push(pad + rank);
            }
        }
    }
    Tensor::from_vec(out, (b, t), &candle_core::Device::Cpu)
}

/// `[batch, seq, patch_size]` patch ids → the reference's one-hot `[batch, seq, patch_size*128]`
/// (built on the CPU, then moved). One matmul with it is exactly the reference's Linear, which
/// keeps the weight gradient the same sum PyTorch computes.
fn one_hot_patches(patches: &Tensor, patch_size: usize) -> Result<Tensor> {
    let (b, t, p) = patches.dims3()?;
    if p != patch_size {
        candle_core::bail!("patches are {p} wide, the model expects {patch_size}");
    }
    let ids = patches
        .to_dtype(DType::U32)?
        .flatten_all()?
        .to_vec1::<u32>()?;
    let width = p * PATCH_VOCAB;
    let mut hot = vec![0f32; b * t * width];
    for (i, &id) in ids.iter().enumerate() {
        if id as usize >= PATCH_VOCAB {
            candle_core::bail!("patch value {id} is outside the one-hot range 0..{PATCH_VOCAB}");
        }
        let (row, position) = (i / p, i % p);
        hot[row * width + position * PATCH_VOCAB + id as usize] = 1.0;
    }
    Tensor::from_vec(hot, (b, t, width), patches.device())
}

/// `M3PatchEncoder.forward`: one-hot → `patch_embedding` → BERT → last hidden state.
pub fn patch_encoder(
    ctx: &Ctx,
    prefix: &str,
    cfg: &BertConfig,
    patch_size: usize,
    drop: Dropout,
    patches: &Tensor,
    mask: &Tensor,
) -> Result<Tensor> {
    let hot = one_hot_patches(patches, patch_size)?;
    let embeds = layers::linear(ctx, &format!("{prefix}.patch_embedding"), &hot)?;
    bert_from_embeds(
        ctx,
        &format!("{prefix}.base"),
        &Dims::bert(cfg),
        drop,
        &embeds,
        mask,
    )
}

/// CLaMP 3's forward passes over a [`ParamStore`].
pub struct Clamp3Forward<'a> {
    /// The architecture.
    pub arch: &'a Clamp3Arch,
}

impl Clamp3Forward<'_> {
    /// `get_text_features`: XLM-R → masked mean → `text_proj`, `[batch, D]`.
    pub fn text_features(&self, ctx: &Ctx, ids: &Tensor, masks: &Tensor) -> Result<Tensor> {
        let c = &self.arch.config.text_model;
        let d = Dims::text(c);
        let device = ctx.params.device();
        let ids = ids.to_dtype(DType::U32)?;
        let positions = xlmr_positions(&ids, c.pad_token_id)?.to_device(device)?;
        if positions.max_all()?.to_scalar::<u32>()? as usize >= c.max_position_embeddings {
            candle_core::bail!(
                "a text needs more than the model's {} positions",
                c.max_position_embeddings
            );
        }
        let e = "text_model.embeddings";
        let words = ctx
            .p(&format!("{e}.word_embeddings.weight"))?
            .embedding(&ids.flatten_all()?)?;
        let pos = ctx
            .p(&format!("{e}.position_embeddings.weight"))?
            .embedding(&positions.flatten_all()?)?;
        let (b, t) = ids.dims2()?;
        let token_type = ctx
            .p(&format!("{e}.token_type_embeddings.weight"))?
            .get(0)?;
        let x = words
            .reshape((b, t, d.hidden))?
            .broadcast_add(&token_type)?
            .add(&pos.reshape((b, t, d.hidden))?)?;
        let x = layers::layer_norm(ctx, &format!("{e}.LayerNorm"), &x, d.eps)?;
        let x = ctx.dropout(&x, self.arch.text_dropout.hidden)?;
        let h = bert_layers(
            ctx,
            "text_model",
            &d,
            self.arch.text_dropout,
            x,
            &layers::padding_bias(masks)?,
        )?;
        layers::linear(ctx, "text_proj", &layers::masked_mean(&h, masks)?)
    }

    /// `get_symbolic_features` / `get_audio_features`, `[batch, D]`.
    pub fn music_features(&self, ctx: &Ctx, music: &MusicInput, masks: &Tensor) -> Result<Tensor> {
        let c = &self.arch.config;
        match music {
            MusicInput::Patches(patches) => {
                let h = patch_encoder(
                    ctx,
                    "symbolic_model",
                    &c.symbolic_model,
                    c.patch_size,
                    self.arch.symbolic_dropout,
                    patches,
                    masks,
                )?;
                layers::linear(ctx, "symbolic_proj", &layers::masked_mean(&h, masks)?)
            }
            MusicInput::Features(features) => {
                let h = bert_from_embeds(
                    ctx,
                    "audio_model",
                    &Dims::bert(&c.audio_model),
                    self.arch.audio_dropout,
                    &features.to_dtype(DType::F32)?,
                    masks,
                )?;
                layers::linear(ctx, "audio_proj", &layers::masked_mean(&h, masks)?)
            }
        }
    }
}

/// The reference's `ClipLoss` as CLaMP 3 uses it: no L2 normalisation, a constant logit scale,
/// `(CE(s T Mᵀ, arange) + CE(s M Tᵀ, arange)) / 2`.
pub fn clip_loss(text: &Tensor, music: &Tensor, logit_scale: f64) -> Result<Tensor> {
    let n = text.dim(0)?;
    let labels: Vec<Option<u32>> = (0..n as u32).map(Some).collect();
    let logits_text = (text.matmul(&music.t()?)? * logit_scale)?;
    let logits_music = (music.matmul(&text.t()?)? * logit_scale)?;
    let a = layers::cross_entropy(&logits_text, &labels)?;
    let b = layers::cross_entropy(&logits_music, &labels)?;
    (a + b)? / 2.0
}

/// GPT-2 configuration of M3's patch decoder (`GPT2Config` keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gpt2Config {
    /// Token vocabulary (128, ASCII).
    pub vocab_size: usize,
    /// Positions (PATCH_SIZE).
    pub n_positions: usize,
    /// Width.
    pub n_embd: usize,
    /// Blocks.
    pub n_layer: usize,
    /// Heads.
    pub n_head: usize,
    /// MLP width.
    pub n_inner: usize,
    /// LayerNorm epsilon.
    #[serde(default = "default_gpt2_eps")]
    pub layer_norm_epsilon: f64,
    /// Residual dropout.
    #[serde(default = "default_p")]
    pub resid_pdrop: f32,
    /// Embedding dropout.
    #[serde(default = "default_p")]
    pub embd_pdrop: f32,
    /// Attention dropout.
    #[serde(default = "default_p")]
    pub attn_pdrop: f32,
}

fn default_gpt2_eps() -> f64 {
    1e-5
}
fn default_p() -> f32 {
    0.1
}

/// M3 (`M3Model`): the patch encoder and the GPT-2 patch decoder.
#[derive(Debug, Clone)]
pub struct M3Arch {
    /// Encoder sizes (CLaMP 3's `symbolic_model`).
    pub encoder: BertConfig,
    /// Encoder dropout.
    pub encoder_dropout: Dropout,
    /// Decoder.
    pub decoder: Gpt2Config,
    /// Characters per patch (64).
    pub patch_size: usize,
    /// Patches per sequence (512).
    pub patch_length: usize,
}

impl M3Arch {
    /// The official M3: BERT 768/12/12/3072 over 512 patches, GPT-2 768/3 layers/12 heads/3072.
    pub fn official() -> Self {
        Self {
            encoder: BertConfig::official(512),
            encoder_dropout: Dropout::default(),
            decoder: Gpt2Config {
                vocab_size: PATCH_VOCAB,
                n_positions: 64,
                n_embd: 768,
                n_layer: 3,
                n_head: 12,
                n_inner: 3072,
                layer_norm_epsilon: 1e-5,
                resid_pdrop: 0.1,
                embd_pdrop: 0.1,
                attn_pdrop: 0.1,
            },
            patch_size: 64,
            patch_length: 512,
        }
    }

    /// Every parameter of `M3Model` in `model.parameters()` order; `lm_head.weight` is tied to
    /// `wte.weight`.
    pub fn param_spec(&self) -> ParamSpec {
        let mut spec = ParamSpec::default();
        patch_encoder_spec(&mut spec, "encoder", &self.encoder, self.patch_size);
        let g = &self.decoder;
        let (e, i) = (g.n_embd, g.n_inner);
        let t = "decoder.base.transformer";
        spec.add(format!("{t}.wte.weight"), &[g.vocab_size, e]);
        spec.add(format!("{t}.wpe.weight"), &[g.n_positions, e]);
        for l in 0..g.n_layer {
            let p = format!("{t}.h.{l}");
            spec.add(format!("{p}.ln_1.weight"), &[e]);
            spec.add(format!("{p}.ln_1.bias"), &[e]);
            spec.add(format!("{p}.attn.c_attn.weight"), &[e, 3 * e]);
            spec.add(format!("{p}.attn.c_attn.bias"), &[3 * e]);
            spec.add(format!("{p}.attn.c_proj.weight"), &[e, e]);
            spec.add(format!("{p}.attn.c_proj.bias"), &[e]);
            spec.add(format!("{p}.ln_2.weight"), &[e]);
            spec.add(format!("{p}.ln_2.bias"), &[e]);
            spec.add(format!("{p}.mlp.c_fc.weight"), &[e, i]);
            spec.add(format!("{p}.mlp.c_fc.bias"), &[i]);
            spec.add(format!("{p}.mlp.c_proj.weight"), &[i, e]);
            spec.add(format!("{p}.mlp.c_proj.bias"), &[e]);
        }
        spec.add(format!("{t}.ln_f.weight"), &[e]);
        spec.add(format!("{t}.ln_f.bias"), &[e]);
        spec.aliases.push((
            "decoder.base.lm_head.weight".to_string(),
            format!("{t}.wte.weight"),
        ));
        spec
    }
}

/// One M3 batch, as the reference's `collate_batch` pads it (to the longest item).
#[derive(Debug, Clone)]
pub struct M3Batch {
    /// `[batch, n, patch_size]` u32, after masking.
    pub input_patches: Tensor,
    /// `[batch, n]` f32 1/0.
    pub input_masks: Tensor,
    /// `[batch, n]` whether the patch is in the loss.
    pub selected: Vec<Vec<bool>>,
    /// `[batch, n, patch_size]` u32 ids, the unmasked patches.
    pub target_patches: Vec<Vec<Vec<u32>>>,
}

/// `M3Model.forward` + `M3TokenDecoder`: the mean next-token cross-entropy of the selected
/// patches' characters, each patch decoded from its encoder feature.
pub fn m3_loss(ctx: &Ctx, arch: &M3Arch, batch: &M3Batch) -> Result<Tensor> {
    let h = patch_encoder(
        ctx,
        "encoder",
        &arch.encoder,
        arch.patch_size,
        arch.encoder_dropout,
        &batch.input_patches,
        &batch.input_masks,
    )?;
    let (b, n, width) = h.dims3()?;
    // `outputs[selected.bool()]`: row-major over [batch, n].
    let mut rows = Vec::new();
    let mut targets: Vec<&[u32]> = Vec::new();
    for (i, sel) in batch.selected.iter().enumerate() {
        for (j, &s) in sel.iter().enumerate() {
            if s {
                rows.push((i * n + j) as u32);
                targets.push(&batch.target_patches[i][j]);
            }
        }
    }
    let device = ctx.params.device();
    let s = rows.len();
    if s == 0 {
        candle_core::bail!("no patch is selected for the loss");
    }
    let rows = Tensor::from_vec(rows, s, device)?;
    let features = h.reshape((b * n, width))?.index_select(&rows, 0)?;
    patch_decoder_loss(ctx, &arch.decoder, arch.patch_size, &features, &targets)
}

/// `M3TokenDecoder.forward`: GPT-2 over `[feature, wte[t_1], …, wte[t_63]]` per patch, labels the
/// patch's characters with 0 ignored, shifted by one.
fn patch_decoder_loss(
    ctx: &Ctx,
    g: &Gpt2Config,
    patch_size: usize,
    features: &Tensor,
    targets: &[&[u32]],
) -> Result<Tensor> {
    let device = ctx.params.device();
    let s = targets.len();
    let t = "decoder.base.transformer";
    let wte = ctx.p(&format!("{t}.wte.weight"))?;
    let tail: Vec<u32> = targets
        .iter()
        .flat_map(|p| p[1..patch_size].iter().copied())
        .collect();
    let tail = Tensor::from_vec(tail, s * (patch_size - 1), device)?;
    let tail = wte
        .embedding(&tail)?
        .reshape((s, patch_size - 1, g.n_embd))?;
    let x = Tensor::cat(&[&features.unsqueeze(1)?, &tail], 1)?;
    let wpe = ctx
        .p(&format!("{t}.wpe.weight"))?
        .narrow(0, 0, patch_size)?;
    let x = ctx.dropout(&x.broadcast_add(&wpe)?, g.embd_pdrop)?;

    let mask: Vec<f32> = targets
        .iter()
        .flat_map(|p| p.iter().map(|&c| if c != 0 { 1.0 } else { 0.0 }))
        .collect();
    let padding = layers::padding_bias(&Tensor::from_vec(mask, (s, patch_size), device)?)?;
    let causal: Vec<f32> = (0..patch_size)
        .flat_map(|q| (0..patch_size).map(move |k| if k <= q { 0.0 } else { f32::MIN }))
        .collect();
    let causal = Tensor::from_vec(causal, (1, 1, patch_size, patch_size), device)?;

    let mut x = x;
    for l in 0..g.n_layer {
        let p = format!("{t}.h.{l}");
        let normed = layers::layer_norm(ctx, &format!("{p}.ln_1"), &x, g.layer_norm_epsilon)?;
        let qkv = layers::conv1d(ctx, &format!("{p}.attn.c_attn"), &normed)?;
        let e = g.n_embd;
        let (q, k, v) = (
            qkv.narrow(2, 0, e)?,
            qkv.narrow(2, e, e)?,
            qkv.narrow(2, 2 * e, e)?,
        );
        let attended = layers::attention(
            ctx,
            &q,
            &k,
            &v,
            g.n_head,
            &[&causal, &padding],
            g.attn_pdrop,
        )?;
        let out = layers::conv1d(ctx, &format!("{p}.attn.c_proj"), &attended)?;
        x = (x + ctx.dropout(&out, g.resid_pdrop)?)?;
        let normed = layers::layer_norm(ctx, &format!("{p}.ln_2"), &x, g.layer_norm_epsilon)?;
        let inner = layers::conv1d(ctx, &format!("{p}.mlp.c_fc"), &normed)?.gelu()?;
        let out = layers::conv1d(ctx, &format!("{p}.mlp.c_proj"), &inner)?;
        x = (x + ctx.dropout(&out, g.resid_pdrop)?)?;
    }
    let x = layers::layer_norm(ctx, &format!("{t}.ln_f"), &x, g.layer_norm_epsilon)?;
    // Positions 0..patch_size-1 predict characters 1..patch_size.
    let x = x.narrow(1, 0, patch_size - 1)?;
    let logits = x
        .reshape((s * (patch_size - 1), g.n_embd))?
        .matmul(&wte.t()?)?;
    let labels: Vec<Option<u32>> = targets
        .iter()
        .flat_map(|p| p[1..patch_size].iter().map(|&c| (c != 0).then_some(c)))
        .collect();
    layers::cross_entropy(&logits, &labels)
}

/// The parameters a frozen CLaMP 3 run leaves out, as the reference's scripts choose them.
pub fn clamp3_frozen_modules(audio: bool, freeze_text: bool) -> Vec<&'static str> {
    let mut frozen = if audio {
        vec!["symbolic_model", "symbolic_proj"]
    } else {
        vec!["audio_model", "audio_proj"]
    };
    if freeze_text {
        frozen.extend(["text_model", "text_proj"]);
    }
    frozen
}
