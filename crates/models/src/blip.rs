//! BLIP image captioning (`BlipForConditionalGeneration`), the model that turns an image query
//! into the text CLaMP 3 embeds.
//!
//! BLIP (Li et al., 2022, "BLIP: Bootstrapping Language-Image Pre-training",
//! <https://arxiv.org/abs/2201.12086>) captions with a ViT image encoder and a BERT text decoder
//! that cross-attends to the image. This file ports transformers v4.40.0's
//! `modeling_blip.py` (`BlipVisionModel`, `BlipForConditionalGeneration.generate`,
//! <https://github.com/huggingface/transformers/blob/v4.40.0/src/transformers/models/blip/modeling_blip.py>)
//! and `modeling_blip_text.py` (`BlipTextLMHeadModel`,
//! <https://github.com/huggingface/transformers/blob/v4.40.0/src/transformers/models/blip/modeling_blip_text.py>)
//! for the layout of `Salesforce/blip-image-captioning-base`, with the generation that the
//! reference's `generate(**inputs)` runs: greedy, from `[bos]`, until `[SEP]` or `max_length`
//! ids, with a key/value cache so each step costs one token.
//!
//! ```no_run
//! use clamp3_models::blip::Blip;
//! use candle_core::{Device, Tensor};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let blip = Blip::from_folder("blip-image-captioning-base".as_ref(), &Device::Cpu)?;
//! let pixel_values = Tensor::zeros((1, 3, 384, 384), candle_core::DType::F32, &Device::Cpu)?;
//! let ids = blip.generate(&pixel_values)?; // [bos, …, sep]: decode with the tokenizer
//! # let _ = ids; Ok(()) }
//! ```

use crate::bert::{activate, multi_head_attention};
use crate::config::HiddenAct;
use crate::linear::{linear, Linear};
use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{embedding, layer_norm, Embedding, LayerNorm, VarBuilder};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A `BlipConfig` (`config.json` of a BLIP captioning folder). transformers' `save_pretrained`
/// omits every value equal to its class default, so every key defaults to the value of
/// `BlipVisionConfig` / `BlipTextConfig` (the official base model's sizes).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// The image encoder.
    pub vision_config: VisionConfig,
    /// The text decoder and its generation settings.
    pub text_config: TextConfig,
}

/// `BlipVisionConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VisionConfig {
    /// Width Hv.
    pub hidden_size: usize,
    /// Feed-forward inner width.
    pub intermediate_size: usize,
    /// Transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Input side in pixels.
    pub image_size: usize,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Feed-forward activation.
    pub hidden_act: HiddenAct,
}

impl Default for VisionConfig {
    fn default() -> Self {
        VisionConfig {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            image_size: 384,
            patch_size: 16,
            layer_norm_eps: 1e-5,
            hidden_act: HiddenAct::Gelu,
        }
    }
}

/// `BlipTextConfig`, with the generation settings transformers reads from it
/// (`GenerationConfig.from_model_config`); those this port cannot honour are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TextConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width Ht.
    pub hidden_size: usize,
    /// Feed-forward inner width.
    pub intermediate_size: usize,
    /// Transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Rows of the position table: the longest caption.
    pub max_position_embeddings: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Feed-forward activation.
    pub hidden_act: HiddenAct,
    /// `[DEC]`, the first id of every caption.
    pub bos_token_id: u32,
    /// `[SEP]`: generation stops when it is produced (and keeps it).
    pub sep_token_id: u32,
    /// `[PAD]`.
    pub pad_token_id: u32,
    /// `eos_token_id` of the config; BLIP's `generate` never stops on it (it passes `sep`).
    pub eos_token_id: u32,
    /// The most ids a caption has, `bos` and `sep` included.
    pub max_length: usize,
    /// Fewest ids; only 0 (the default) is supported.
    pub min_length: usize,
    /// Beam count; only 1 (greedy) is supported.
    pub num_beams: usize,
    /// Sampling; only `false` is supported.
    pub do_sample: bool,
    /// Only 1.0 is supported.
    pub repetition_penalty: f64,
    /// Only 0 is supported.
    pub no_repeat_ngram_size: usize,
}

impl Default for TextConfig {
    fn default() -> Self {
        TextConfig {
            vocab_size: 30524,
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 512,
            layer_norm_eps: 1e-12,
            hidden_act: HiddenAct::Gelu,
            bos_token_id: 30522,
            sep_token_id: 102,
            pad_token_id: 0,
            eos_token_id: 2,
            max_length: 20,
            min_length: 0,
            num_beams: 1,
            do_sample: false,
            repetition_penalty: 1.0,
            no_repeat_ngram_size: 0,
        }
    }
}

impl Config {
    /// Reads and checks a `config.json`.
    pub fn from_file(path: &Path) -> crate::Result<Self> {
        let config_error = |message: String| crate::Error::Config {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|error| crate::Error::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let config: Config =
            serde_json::from_str(&text).map_err(|e| config_error(e.to_string()))?;
        config.validate().map_err(config_error)?;
        Ok(config)
    }

    /// Checks the sizes and that generation is the greedy search this port runs.
    #[allow(
        clippy::manual_is_multiple_of,
        reason = "`is_multiple_of` needs a newer Rust than the workspace's rust-version"
    )]
    pub fn validate(&self) -> std::result::Result<(), String> {
        let (v, t) = (&self.vision_config, &self.text_config);
        for (name, hidden, heads) in [
            ("vision_config", v.hidden_size, v.num_attention_heads),
            ("text_config", t.hidden_size, t.num_attention_heads),
        ] {
            if heads == 0 || hidden % heads != 0 {
                return Err(format!(
                    "{name}: hidden_size {hidden} is not a multiple of num_attention_heads {heads}"
                ));
            }
        }
        if v.patch_size == 0 || v.image_size % v.patch_size != 0 {
            return Err(format!(
                "vision_config: image_size {} is not a multiple of patch_size {}",
                v.image_size, v.patch_size
            ));
        }
        if t.max_length < 2 {
            return Err(format!(
                "text_config: max_length {} leaves no room for a word",
                t.max_length
            ));
        }
        if t.max_length > t.max_position_embeddings {
            return Err(format!(
                "text_config: max_length {} exceeds max_position_embeddings {}",
                t.max_length, t.max_position_embeddings
            ));
        }
        for (id, name) in [(t.bos_token_id, "bos"), (t.sep_token_id, "sep")] {
            if id as usize >= t.vocab_size {
                return Err(format!(
                    "text_config: {name}_token_id {id} is outside the vocabulary of {}",
                    t.vocab_size
                ));
            }
        }
        let unsupported = [
            (t.num_beams != 1, "num_beams other than 1"),
            (t.do_sample, "do_sample = true"),
            (
                t.repetition_penalty != 1.0,
                "repetition_penalty other than 1.0",
            ),
            (
                t.no_repeat_ngram_size != 0,
                "no_repeat_ngram_size other than 0",
            ),
            (t.min_length != 0, "min_length other than 0"),
        ];
        if let Some((_, what)) = unsupported.iter().find(|(bad, _)| *bad) {
            return Err(format!(
                "text_config: {what} is not supported (captions are generated greedily)"
            ));
        }
        Ok(())
    }

    /// Image tokens the decoder attends to: one per patch plus the class token.
    pub fn image_tokens(&self) -> usize {
        let side = self.vision_config.image_size / self.vision_config.patch_size;
        side * side + 1
    }
}

/// The patch, class and position embeddings (`BlipVisionEmbeddings`).
struct VisionEmbeddings {
    /// The patch convolution as a matrix, `[3 * p * p, Hv]`: a stride-p convolution with a p × p
    /// kernel is one matrix product per patch.
    patch_weight: Tensor,
    patch_bias: Tensor,
    class_embedding: Tensor,
    position_embedding: Tensor,
    patch_size: usize,
}

impl VisionEmbeddings {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let v = &cfg.vision_config;
        let (h, p) = (v.hidden_size, v.patch_size);
        let weight = vb.get((h, 3, p, p), "patch_embedding.weight")?;
        Ok(Self {
            patch_weight: weight.reshape((h, 3 * p * p))?.t()?.contiguous()?,
            patch_bias: vb.get(h, "patch_embedding.bias")?,
            class_embedding: vb.get((1, 1, h), "class_embedding")?,
            position_embedding: vb.get((1, cfg.image_tokens(), h), "position_embedding")?,
            patch_size: p,
        })
    }

    /// `pixel_values`: `[B, 3, S, S]` → `[B, 1 + (S/p)², Hv]`.
    fn forward(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let (b, c, height, width) = pixel_values.dims4()?;
        let p = self.patch_size;
        let (rows, cols) = (height / p, width / p);
        // [B, C, rows, p, cols, p] → [B, rows, cols, C, p, p]: each patch flattened in the
        // order of the conv kernel's (in_channel, y, x).
        let patches = pixel_values
            .reshape((b, c, rows, p, cols, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .contiguous()?
            .reshape((b, rows * cols, c * p * p))?;
        let embeds = patches
            .broadcast_matmul(&self.patch_weight)?
            .broadcast_add(&self.patch_bias)?;
        let h = self.class_embedding.dim(2)?;
        let class = self.class_embedding.broadcast_as((b, 1, h))?;
        Tensor::cat(&[&class, &embeds], 1)?.broadcast_add(&self.position_embedding)
    }
}

/// `BlipAttention`: one fused `qkv` projection, heads contiguous inside each of q, k, v.
struct VisionAttention {
    qkv: Linear,
    projection: Linear,
    num_heads: usize,
    scale: f64,
}

impl VisionAttention {
    fn load(vb: VarBuilder, v: &VisionConfig) -> Result<Self> {
        let h = v.hidden_size;
        Ok(Self {
            qkv: linear(h, 3 * h, vb.pp("qkv"))?,
            projection: linear(h, h, vb.pp("projection"))?,
            num_heads: v.num_attention_heads,
            scale: ((h / v.num_attention_heads) as f64).powf(-0.5),
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = x.dim(D::Minus1)?;
        let qkv = self.qkv.forward(x)?;
        let q = (qkv.narrow(D::Minus1, 0, h)? * self.scale)?;
        let k = qkv.narrow(D::Minus1, h, h)?;
        let v = qkv.narrow(D::Minus1, 2 * h, h)?;
        let context = multi_head_attention(&q, &k, &v, self.num_heads, None)?;
        self.projection.forward(&context)
    }
}

/// `BlipEncoderLayer`: pre-LayerNorm attention and MLP, each with a residual.
struct VisionLayer {
    layer_norm1: LayerNorm,
    self_attn: VisionAttention,
    layer_norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    act: HiddenAct,
}

impl VisionLayer {
    fn load(vb: VarBuilder, v: &VisionConfig) -> Result<Self> {
        let h = v.hidden_size;
        Ok(Self {
            layer_norm1: layer_norm(h, v.layer_norm_eps, vb.pp("layer_norm1"))?,
            self_attn: VisionAttention::load(vb.pp("self_attn"), v)?,
            layer_norm2: layer_norm(h, v.layer_norm_eps, vb.pp("layer_norm2"))?,
            fc1: linear(h, v.intermediate_size, vb.pp("mlp.fc1"))?,
            fc2: linear(v.intermediate_size, h, vb.pp("mlp.fc2"))?,
            act: v.hidden_act,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = (x + self.self_attn.forward(&self.layer_norm1.forward(x)?)?)?;
        let inner = activate(self.act, &self.fc1.forward(&self.layer_norm2.forward(&x)?)?)?;
        x + self.fc2.forward(&inner)?
    }
}

/// `BlipVisionModel` (key prefix `vision_model`).
struct VisionModel {
    embeddings: VisionEmbeddings,
    layers: Vec<VisionLayer>,
    post_layernorm: LayerNorm,
}

impl VisionModel {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let v = &cfg.vision_config;
        let layers = (0..v.num_hidden_layers)
            .map(|i| VisionLayer::load(vb.pp(format!("encoder.layers.{i}")), v))
            .collect::<Result<_>>()?;
        Ok(Self {
            embeddings: VisionEmbeddings::load(vb.pp("embeddings"), cfg)?,
            layers,
            post_layernorm: layer_norm(v.hidden_size, v.layer_norm_eps, vb.pp("post_layernorm"))?,
        })
    }

    fn forward(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let mut x = self.embeddings.forward(pixel_values)?;
        for layer in &self.layers {
            x = layer.forward(&x)?;
        }
        self.post_layernorm.forward(&x)
    }
}

/// A dense layer, a residual and LayerNorm (`BlipTextSelfOutput`, `BlipTextOutput`).
struct DenseResidualNorm {
    dense: Linear,
    layer_norm: LayerNorm,
}

impl DenseResidualNorm {
    fn load(vb: VarBuilder, input: usize, t: &TextConfig) -> Result<Self> {
        Ok(Self {
            dense: linear(input, t.hidden_size, vb.pp("dense"))?,
            layer_norm: layer_norm(t.hidden_size, t.layer_norm_eps, vb.pp("LayerNorm"))?,
        })
    }

    fn forward(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        self.layer_norm
            .forward(&(self.dense.forward(x)? + residual)?)
    }
}

/// `BlipTextSelfAttention` with its `BlipTextSelfOutput`; keys and values come from `input`
/// wide inputs (the decoder's own width, or the image's in cross-attention).
struct TextAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: DenseResidualNorm,
    num_heads: usize,
    scale: f64,
}

impl TextAttention {
    fn load(vb: VarBuilder, key_width: usize, t: &TextConfig) -> Result<Self> {
        let h = t.hidden_size;
        Ok(Self {
            query: linear(h, h, vb.pp("self.query"))?,
            key: linear(key_width, h, vb.pp("self.key"))?,
            value: linear(key_width, h, vb.pp("self.value"))?,
            output: DenseResidualNorm::load(vb.pp("output"), h, t)?,
            num_heads: t.num_attention_heads,
            scale: ((h / t.num_attention_heads) as f64).powf(-0.5),
        })
    }

    fn keys_values(&self, source: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((self.key.forward(source)?, self.value.forward(source)?))
    }

    fn forward(&self, x: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let q = (self.query.forward(x)? * self.scale)?;
        let context = multi_head_attention(&q, k, v, self.num_heads, mask)?;
        self.output.forward(&context, x)
    }
}

/// `BlipTextLayer` of the decoder: causal self-attention, cross-attention over the image, MLP;
/// each followed by a residual and LayerNorm (post-LN, as BERT).
struct TextLayer {
    attention: TextAttention,
    crossattention: TextAttention,
    intermediate: Linear,
    output: DenseResidualNorm,
    act: HiddenAct,
}

impl TextLayer {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let t = &cfg.text_config;
        Ok(Self {
            attention: TextAttention::load(vb.pp("attention"), t.hidden_size, t)?,
            crossattention: TextAttention::load(
                vb.pp("crossattention"),
                cfg.vision_config.hidden_size,
                t,
            )?,
            intermediate: linear(
                t.hidden_size,
                t.intermediate_size,
                vb.pp("intermediate.dense"),
            )?,
            output: DenseResidualNorm::load(vb.pp("output"), t.intermediate_size, t)?,
            act: t.hidden_act,
        })
    }
}

/// What one decoder layer keeps between generation steps: its self-attention keys and values so
/// far, and the cross-attention keys and values of the image (computed once).
struct LayerCache {
    keys: Tensor,
    values: Tensor,
    image_keys: Tensor,
    image_values: Tensor,
}

/// The decoder's state during one caption: a [`LayerCache`] per layer and the ids seen.
pub struct DecoderCache {
    layers: Vec<LayerCache>,
    length: usize,
}

/// `BlipTextLMHeadModel` (key prefix `text_decoder`): `bert` embeddings and layers, the `cls`
/// head. `cls.predictions.decoder.weight` is its own tensor (transformers 4.40 does not tie it
/// to the word embeddings), its bias is `cls.predictions.bias`.
struct TextDecoder {
    word_embeddings: Embedding,
    position_embeddings: Embedding,
    embeddings_norm: LayerNorm,
    layers: Vec<TextLayer>,
    transform: Linear,
    transform_norm: LayerNorm,
    decoder_weight: Tensor,
    decoder_bias: Tensor,
    act: HiddenAct,
}

impl TextDecoder {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let t = &cfg.text_config;
        let h = t.hidden_size;
        let bert = vb.pp("bert");
        let emb = bert.pp("embeddings");
        let layers = (0..t.num_hidden_layers)
            .map(|i| TextLayer::load(bert.pp(format!("encoder.layer.{i}")), cfg))
            .collect::<Result<_>>()?;
        let head = vb.pp("cls.predictions");
        Ok(Self {
            word_embeddings: embedding(t.vocab_size, h, emb.pp("word_embeddings"))?,
            position_embeddings: embedding(
                t.max_position_embeddings,
                h,
                emb.pp("position_embeddings"),
            )?,
            embeddings_norm: layer_norm(h, t.layer_norm_eps, emb.pp("LayerNorm"))?,
            layers,
            transform: linear(h, h, head.pp("transform.dense"))?,
            transform_norm: layer_norm(h, t.layer_norm_eps, head.pp("transform.LayerNorm"))?,
            decoder_weight: head.get((t.vocab_size, h), "decoder.weight")?,
            decoder_bias: head.get(t.vocab_size, "bias")?,
            act: t.hidden_act,
        })
    }

    /// An empty cache for one image's `image_embeds` (`[1, tokens, Hv]`).
    fn start(&self, image_embeds: &Tensor) -> Result<DecoderCache> {
        let layers = self
            .layers
            .iter()
            .map(|layer| {
                let (image_keys, image_values) = layer.crossattention.keys_values(image_embeds)?;
                let h = image_keys.dim(2)?;
                let empty = Tensor::zeros((1, 0, h), DType::F32, image_embeds.device())?;
                Ok(LayerCache {
                    keys: empty.clone(),
                    values: empty,
                    image_keys,
                    image_values,
                })
            })
            .collect::<Result<_>>()?;
        Ok(DecoderCache { layers, length: 0 })
    }

    /// Runs `ids` (`[1, n]`, the ids after those in `cache`) and returns the logits of the last
    /// one, `[vocab]`; the cache grows by `n`.
    fn step(&self, ids: &Tensor, cache: &mut DecoderCache) -> Result<Tensor> {
        let n = ids.dim(1)?;
        let device = ids.device();
        let start = cache.length as u32;
        let positions = Tensor::arange(start, start + n as u32, device)?.unsqueeze(0)?;
        let x =
            (self.word_embeddings.forward(ids)? + self.position_embeddings.forward(&positions)?)?;
        let mut x = self.embeddings_norm.forward(&x)?;
        let mask = causal_mask(cache.length, n, device)?;
        for (layer, kv) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let (k, v) = layer.attention.keys_values(&x)?;
            kv.keys = Tensor::cat(&[&kv.keys, &k], 1)?;
            kv.values = Tensor::cat(&[&kv.values, &v], 1)?;
            let attended = layer
                .attention
                .forward(&x, &kv.keys, &kv.values, mask.as_ref())?;
            let crossed =
                layer
                    .crossattention
                    .forward(&attended, &kv.image_keys, &kv.image_values, None)?;
            let inner = activate(layer.act, &layer.intermediate.forward(&crossed)?)?;
            x = layer.output.forward(&inner, &crossed)?;
        }
        cache.length += n;
        let last = x.narrow(1, n - 1, 1)?.squeeze(1)?.squeeze(0)?;
        let hidden = activate(self.act, &self.transform.forward(&last.unsqueeze(0)?)?)?;
        let hidden = self.transform_norm.forward(&hidden)?;
        hidden
            .matmul(&self.decoder_weight.t()?)?
            .squeeze(0)?
            .add(&self.decoder_bias)
    }
}

/// The additive causal mask of `n` new positions after `past` cached ones, `[1, 1, n, past + n]`;
/// `None` for one new position, which sees everything.
fn causal_mask(past: usize, n: usize, device: &Device) -> Result<Option<Tensor>> {
    if n == 1 {
        return Ok(None);
    }
    let total = past + n;
    let data: Vec<f32> = (0..n)
        .flat_map(|i| (0..total).map(move |j| if j <= past + i { 0.0 } else { f32::MIN }))
        .collect();
    Tensor::from_vec(data, (1, 1, n, total), device).map(Some)
}

/// Weight file names looked for in a model folder, in order of preference.
pub const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];

/// `BlipForConditionalGeneration`: the image encoder and the caption decoder.
pub struct Blip {
    vision_model: VisionModel,
    text_decoder: TextDecoder,
    config: Config,
    device: Device,
}

impl std::fmt::Debug for Blip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blip")
            .field("config", &self.config)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl Blip {
    /// Builds the model from a `VarBuilder` at the checkpoint's root (`vision_model.…`,
    /// `text_decoder.…`).
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        Ok(Self {
            vision_model: VisionModel::load(vb.pp("vision_model"), cfg)?,
            text_decoder: TextDecoder::load(vb.pp("text_decoder"), cfg)?,
            config: cfg.clone(),
            device: vb.device().clone(),
        })
    }

    /// Loads a Hugging Face folder: `config.json` and `model.safetensors` or
    /// `pytorch_model.bin`.
    pub fn from_folder(dir: &Path, device: &Device) -> crate::Result<Self> {
        let config = Config::from_file(&dir.join("config.json"))?;
        let weights = WEIGHT_FILES
            .iter()
            .map(|name| dir.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| crate::Error::Weights {
                path: dir.to_path_buf(),
                error: candle_core::Error::Msg(format!(
                    "no BLIP weights found (looked for {})",
                    WEIGHT_FILES.join(", ")
                )),
            })?;
        Self::from_file(&weights, &config, device)
    }

    /// Loads a weight file (PyTorch or safetensors) with a given configuration.
    pub fn from_file(path: &Path, cfg: &Config, device: &Device) -> crate::Result<Self> {
        crate::weights::load_model(path, device, cfg.validate(), |vb| Self::load(vb, cfg))
    }

    /// The configuration the model was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The image encoder's last hidden state (after `post_layernorm`), `[B, tokens, Hv]`, of
    /// `pixel_values` `[B, 3, S, S]`.
    pub fn vision(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let (_, c, height, width) = pixel_values.dims4()?;
        let side = self.config.vision_config.image_size;
        if (c, height, width) != (3, side, side) {
            candle_core::bail!(
                "BLIP takes [B, 3, {side}, {side}] pixel values, got [{c}, {height}, {width}] per image"
            );
        }
        self.vision_model.forward(pixel_values)
    }

    /// A fresh decoder state over one image's encoder output (`[1, tokens, Hv]`).
    pub fn start_caption(&self, image_embeds: &Tensor) -> Result<DecoderCache> {
        self.text_decoder.start(image_embeds)
    }

    /// The decoder's logits `[vocab]` for the next id after `ids` (`[1, n]`, the ids not yet
    /// in `cache`).
    pub fn next_logits(&self, ids: &Tensor, cache: &mut DecoderCache) -> Result<Tensor> {
        self.text_decoder.step(ids, cache)
    }

    /// The caption ids of one image (`pixel_values` `[1, 3, S, S]`): `[bos, …]` ending with
    /// `[SEP]` or cut at `max_length` ids, as the reference's `generate()`. `on_step` sees the
    /// logits of every step (step `i` predicts id `i + 1`).
    pub fn generate_with(
        &self,
        pixel_values: &Tensor,
        mut on_step: impl FnMut(&Tensor) -> Result<()>,
    ) -> Result<Vec<u32>> {
        if pixel_values.dim(0)? != 1 {
            candle_core::bail!("BLIP captions one image at a time");
        }
        let t = &self.config.text_config;
        let image_embeds = self.vision(pixel_values)?;
        let mut cache = self.start_caption(&image_embeds)?;
        let mut ids = vec![t.bos_token_id];
        while ids.len() < t.max_length {
            let last = Tensor::new(&[[ids[ids.len() - 1]]], &self.device)?;
            let logits = self.next_logits(&last, &mut cache)?;
            on_step(&logits)?;
            // torch.argmax: the first index of the maximum.
            let next = first_argmax(&logits.to_dtype(DType::F32)?.to_vec1::<f32>()?);
            ids.push(next);
            if next == t.sep_token_id {
                break;
            }
        }
        Ok(ids)
    }

    /// [`Blip::generate_with`] without looking at the logits.
    pub fn generate(&self, pixel_values: &Tensor) -> Result<Vec<u32>> {
        self.generate_with(pixel_values, |_| Ok(()))
    }
}

/// The index of the first maximum (NaN never wins).
fn first_argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_of_ties() {
        assert_eq!(first_argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(first_argmax(&[5.0]), 0);
    }

    #[test]
    fn saved_configs_fill_the_class_defaults() {
        let cfg: Config = serde_json::from_str(
            r#"{"text_config": {"hidden_size": 24, "num_attention_heads": 3, "sep_token_id": 3},
                "vision_config": {"hidden_size": 32}}"#,
        )
        .unwrap();
        assert_eq!(cfg.text_config.max_length, 20);
        assert_eq!(cfg.text_config.bos_token_id, 30522);
        assert_eq!(cfg.vision_config.num_attention_heads, 12);
        assert_eq!(cfg.image_tokens(), 577);
        assert!(cfg.validate().is_err(), "32 is not a multiple of 12 heads");
        let beams: Config = serde_json::from_str(r#"{"text_config": {"num_beams": 3}}"#).unwrap();
        assert!(beams.validate().unwrap_err().contains("num_beams"));
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn causal_mask_hides_the_future_only() {
        assert!(causal_mask(4, 1, &Device::Cpu).unwrap().is_none());
        let mask = causal_mask(1, 2, &Device::Cpu).unwrap().unwrap();
        let rows = mask
            .squeeze(0)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(rows[0][..2], [0.0, 0.0]);
        assert_eq!(rows[0][2], f32::MIN);
        assert_eq!(rows[1], vec![0.0; 3]);
    }
}
