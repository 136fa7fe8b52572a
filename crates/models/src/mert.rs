//! MERT, the self-supervised music model whose hidden states are CLaMP 3's audio input.
//!
//! MERT (Li et al., 2023, "MERT: Acoustic Music Understanding Model with Large-Scale
//! Self-supervised Training", <https://arxiv.org/abs/2306.00107>) is a HuBERT: a stack of strided
//! 1-D convolutions turns 24 kHz samples into 75 frames per second, a transformer encodes them.
//! This file ports the reference's `MusicHubertModel`
//! (<https://github.com/sanderwood/clamp3/blob/main/preprocessing/audio/MusicHubert.py>, which
//! builds on Hugging Face `modeling_hubert.py` v4.40.0,
//! <https://github.com/huggingface/transformers/blob/v4.40.0/src/transformers/models/hubert/modeling_hubert.py>)
//! for the layout of `m-a-p/MERT-v1-95M`, and the feature reduction of the reference's
//! `preprocessing/audio/hf_pretrains.py` (`AudioBERTFeature.forward(layer=None,
//! reduction="mean")`): every hidden state averaged over time.
//!
//! ```no_run
//! use clamp3_models::mert::Mert;
//! use candle_core::Device;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mert = Mert::from_folder("MERT-v1-95M".as_ref(), &Device::Cpu)?;
//! let window = vec![0f32; 120_000]; // 5 s at 24 kHz, already normalised
//! let layers = mert.window_layers(&window)?; // [13, 768]: embedding output + 12 layers
//! let vector = layers.mean(0)?; // [768], what CLaMP 3 reads per window
//! # Ok(()) }
//! ```
//!
//! MERT-v1-95M's weights are licensed CC-BY-NC-4.0 (non-commercial), unlike CLaMP 3's (MIT).

use crate::bert::{activate, multi_head_attention};
use crate::config::HiddenAct;
use crate::linear::{linear, Linear};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A MERT (`MusicHubertConfig`) configuration: the `config.json` of a Hugging Face model folder.
/// Defaults are the reference's `MusicHubertConfig` defaults, which are MERT-v1-95M's sizes
/// (<https://huggingface.co/m-a-p/MERT-v1-95M/blob/main/config.json>). Keys that only matter for
/// training (dropouts, masking, CTC) are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Transformer width H.
    pub hidden_size: usize,
    /// Transformer layers; the model returns `num_hidden_layers + 1` hidden states.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Feed-forward inner width.
    pub intermediate_size: usize,
    /// Feed-forward activation.
    pub hidden_act: HiddenAct,
    /// LayerNorm epsilon of the projection and the transformer.
    pub layer_norm_eps: f64,
    /// `"group"`: GroupNorm (one group per channel) after the first conv only. `"layer"` is not
    /// supported.
    pub feat_extract_norm: String,
    /// Activation after each conv and after the positional conv.
    pub feat_extract_activation: HiddenAct,
    /// Output channels of each feature-encoder conv.
    pub conv_dim: Vec<usize>,
    /// Kernel size of each conv.
    pub conv_kernel: Vec<usize>,
    /// Stride of each conv (their product is the samples per frame, 320 for MERT).
    pub conv_stride: Vec<usize>,
    /// Whether the feature-encoder convs have biases.
    pub conv_bias: bool,
    /// Kernel size K of the positional convolution.
    pub num_conv_pos_embeddings: usize,
    /// Groups of the positional convolution.
    pub num_conv_pos_embedding_groups: usize,
    /// LayerNorm before the feature projection.
    pub feat_proj_layer_norm: bool,
    /// Pre-LN transformer (`HubertEncoderStableLayerNorm`); not supported, MERT-v1 is post-LN.
    pub do_stable_layer_norm: bool,
    /// CQT features concatenated to the conv features (MERT-v0 experiments); not supported.
    pub feature_extractor_cqt: bool,
    /// DeepNorm residual scaling `(2 * layers)^(1/4)` (`HubertEncoderLayerExtend`).
    pub deepnorm: bool,
    /// Attention "relax" trick; softmax is shift-invariant, so it changes nothing at inference.
    pub attention_relax: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: HiddenAct::Gelu,
            layer_norm_eps: 1e-5,
            feat_extract_norm: "group".to_string(),
            feat_extract_activation: HiddenAct::Gelu,
            conv_dim: vec![512; 7],
            conv_kernel: vec![10, 3, 3, 3, 3, 2, 2],
            conv_stride: vec![5, 2, 2, 2, 2, 2, 2],
            conv_bias: false,
            num_conv_pos_embeddings: 128,
            num_conv_pos_embedding_groups: 16,
            feat_proj_layer_norm: true,
            do_stable_layer_norm: false,
            feature_extractor_cqt: false,
            deepnorm: false,
            attention_relax: -1.0,
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

    /// Checks what this port supports and the relations between sizes.
    #[allow(
        clippy::manual_is_multiple_of,
        reason = "`is_multiple_of` needs Rust 1.87; the workspace's rust-version is 1.85"
    )]
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.feat_extract_norm != "group" {
            return Err(format!(
                "feat_extract_norm {:?} is not supported (MERT uses \"group\")",
                self.feat_extract_norm
            ));
        }
        if self.do_stable_layer_norm {
            return Err("do_stable_layer_norm = true is not supported (MERT-v1 is post-LN)".into());
        }
        if self.feature_extractor_cqt {
            return Err("feature_extractor_cqt = true is not supported".into());
        }
        let n = self.conv_dim.len();
        if n == 0 || self.conv_kernel.len() != n || self.conv_stride.len() != n {
            return Err(format!(
                "conv_dim, conv_kernel and conv_stride must have the same non-zero length \
                 (got {}, {}, {})",
                n,
                self.conv_kernel.len(),
                self.conv_stride.len()
            ));
        }
        if self.conv_kernel.contains(&0) || self.conv_stride.contains(&0) {
            return Err("conv kernels and strides must be positive".into());
        }
        if self.num_attention_heads == 0 || self.hidden_size % self.num_attention_heads != 0 {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        let groups = self.num_conv_pos_embedding_groups;
        if groups == 0 || self.hidden_size % groups != 0 || self.num_conv_pos_embeddings == 0 {
            return Err(format!(
                "hidden_size {} is not a multiple of num_conv_pos_embedding_groups {groups}",
                self.hidden_size
            ));
        }
        Ok(())
    }

    /// Samples that the conv stack turns into `frames` frames, at least.
    pub fn min_samples(&self) -> usize {
        self.conv_kernel
            .iter()
            .zip(&self.conv_stride)
            .rev()
            .fold(1, |len, (&k, &s)| (len - 1) * s + k)
    }

    /// Frames the conv stack produces from `samples` input samples.
    pub fn frames(&self, samples: usize) -> usize {
        self.conv_kernel
            .iter()
            .zip(&self.conv_stride)
            .fold(
                samples,
                |len, (&k, &s)| {
                    if len < k {
                        0
                    } else {
                        (len - k) / s + 1
                    }
                },
            )
    }
}

/// `nn.GroupNorm(C, C)`: each channel normalised over time, then scaled and shifted, on a
/// time-major `[B, T, C]` activation.
///
/// On a 5 s window this activation is 23999 x 512 floats (49 MB), the largest in the model; on
/// the CPU the statistics and the normalisation are one parallel pass each
/// ([`crate::cpu::channel_norm`]) rather than six single-threaded candle ops.
struct ChannelNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl ChannelNorm {
    fn load(vb: VarBuilder, channels: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: vb.get(channels, "weight")?,
            bias: vb.get(channels, "bias")?,
            eps,
        })
    }

    /// `x`: `[B, T, C]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, c) = x.dims3()?;
        let (weight, bias) = (self.weight.to_vec1::<f32>(), self.bias.to_vec1::<f32>());
        if let (Ok(weight), Ok(bias)) = (weight, bias) {
            let normed = crate::cpu::on_cpu_values(x, |values| {
                values
                    .chunks_exact(t * c)
                    .flat_map(|window| {
                        crate::cpu::channel_norm(window, c, &weight, &bias, self.eps as f32)
                    })
                    .collect::<Vec<f32>>()
            })?;
            if let Some(normed) = normed {
                return Tensor::from_vec(normed, (b, t, c), &Device::Cpu);
            }
        }
        let mean = x.mean_keepdim(1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(1)?;
        let scale = (var + self.eps)?
            .sqrt()?
            .recip()?
            .broadcast_mul(&self.weight.reshape((1, 1, c))?)?;
        let scaled = centred.broadcast_mul(&scale)?;
        drop(centred);
        scaled.broadcast_add(&self.bias.reshape((1, 1, c))?)
    }
}

/// One feature-encoder conv (`HubertGroupNormConvLayer` for the first,
/// `HubertNoLayerNormConvLayer` for the rest; modeling_hubert.py L60-L130), computed time-major.
///
/// PyTorch's `[B, C, T]` layout makes every conv an im2col plus a transpose of its output
/// (candle copies both on one thread). With `[B, T, C]`, the `K` input frames a strided output
/// frame reads are `K · C` consecutive floats, so the conv is one gather of those runs and one
/// matmul against the weight reordered once, at load, to `[C_out, K · C_in]`.
struct ConvLayer {
    /// `[C_out, K · C_in]`, taps outermost.
    taps: Linear,
    kernel: usize,
    stride: usize,
    layer_norm: Option<ChannelNorm>,
    act: HiddenAct,
}

impl ConvLayer {
    fn load(vb: VarBuilder, cfg: &Config, i: usize) -> Result<Self> {
        let c_in = if i == 0 { 1 } else { cfg.conv_dim[i - 1] };
        let c_out = cfg.conv_dim[i];
        let k = cfg.conv_kernel[i];
        let conv = vb.pp("conv");
        let weight = conv
            .get((c_out, c_in, k), "weight")?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((c_out, k * c_in))?;
        let bias = cfg.conv_bias.then(|| conv.get(c_out, "bias")).transpose()?;
        // nn.GroupNorm(num_groups=C, num_channels=C, affine=True): its default eps, not the config's.
        let layer_norm = (i == 0)
            .then(|| ChannelNorm::load(vb.pp("layer_norm"), c_out, 1e-5))
            .transpose()?;
        Ok(Self {
            taps: Linear::new(weight, bias),
            kernel: k,
            stride: cfg.conv_stride[i],
            layer_norm,
            act: cfg.feat_extract_activation,
        })
    }

    /// `x`: `[B, T, C_in]` → `[B, T_out, C_out]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, c) = x.dims3()?;
        let (k, s) = (self.kernel, self.stride);
        if t < k {
            candle_core::bail!("a conv of kernel {k} over {t} frames");
        }
        let frames = (t - k) / s + 1;
        let columns = im2col(x, frames, k, s)?.reshape((b, frames, k * c))?;
        // The first layer's output is the largest activation (samples/5 x C); free each
        // intermediate as soon as the next exists rather than at the end of the scope.
        let conv = self.taps.forward(&columns)?;
        drop(columns);
        let normed = match &self.layer_norm {
            Some(norm) => {
                let normed = norm.forward(&conv)?;
                drop(conv);
                normed
            }
            None => conv,
        };
        activate(self.act, &normed)
    }
}

/// `[B, T, C]` → `[B, frames, K, C]`: for each output frame `f`, input frames `f·s … f·s+K-1`.
fn im2col(x: &Tensor, frames: usize, k: usize, s: usize) -> Result<Tensor> {
    let (b, t, c) = x.dims3()?;
    let columns = crate::cpu::on_cpu_values(x, |values| {
        crate::cpu::gather_frames(values, b, t, c, frames, k, s)
    })?;
    if let Some(columns) = columns {
        return Tensor::from_vec(columns, (b, frames, k, c), &Device::Cpu);
    }
    // Any device: tap j is every s-th frame from j; padding makes each a whole number of strides.
    let padded = x.pad_with_zeros(1, 0, (frames * s + k).saturating_sub(t))?;
    let taps = (0..k)
        .map(|j| {
            padded
                .narrow(1, j, frames * s)?
                .reshape((b, frames, s, c))?
                .narrow(2, 0, 1)
        })
        .collect::<Result<Vec<_>>>()?;
    Tensor::cat(&taps, 2)
}

/// `HubertFeatureEncoder` (modeling_hubert.py L290): `[B, samples]` → `[B, frames, C]`
/// (time-major, where PyTorch returns `[B, C, frames]`).
struct FeatureExtractor {
    conv_layers: Vec<ConvLayer>,
}

impl FeatureExtractor {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let conv_layers = (0..cfg.conv_dim.len())
            .map(|i| ConvLayer::load(vb.pp(format!("conv_layers.{i}")), cfg, i))
            .collect::<Result<_>>()?;
        Ok(Self { conv_layers })
    }

    fn forward(&self, input_values: &Tensor) -> Result<Tensor> {
        let mut x = input_values.unsqueeze(2)?;
        for layer in &self.conv_layers {
            x = layer.forward(&x)?;
        }
        Ok(x)
    }
}

/// `MusicHubertFeatureProjection` (MusicHubert.py L25): LayerNorm(C), then Linear(C → H).
struct FeatureProjection {
    layer_norm: Option<LayerNorm>,
    projection: Linear,
}

impl FeatureProjection {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let c = *cfg.conv_dim.last().unwrap_or(&0);
        let layer_norm = cfg
            .feat_proj_layer_norm
            .then(|| layer_norm(c, cfg.layer_norm_eps, vb.pp("layer_norm")))
            .transpose()?;
        Ok(Self {
            layer_norm,
            projection: linear(c, cfg.hidden_size, vb.pp("projection"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = match &self.layer_norm {
            Some(norm) => norm.forward(x)?,
            None => x.clone(),
        };
        self.projection.forward(&x)
    }
}

/// `HubertPositionalConvEmbedding` (modeling_hubert.py L200) with weight norm resolved at load
/// time: `weight = g * v / ||v||`, the norm over the output and input channels for each kernel
/// tap (`weight_norm(dim=2)`).
struct PosConvEmbed {
    weight: Tensor,
    bias: Tensor,
    kernel: usize,
    groups: usize,
    act: HiddenAct,
}

impl PosConvEmbed {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let h = cfg.hidden_size;
        let k = cfg.num_conv_pos_embeddings;
        let groups = cfg.num_conv_pos_embedding_groups;
        let vb = vb.pp("conv");
        let v_shape = (h, h / groups, k);
        let weight = if vb.contains_tensor("weight_v") {
            // The official checkpoints (torch.nn.utils.weight_norm).
            weight_norm(
                &vb.get((1, 1, k), "weight_g")?,
                &vb.get(v_shape, "weight_v")?,
            )?
        } else if vb.contains_tensor("parametrizations.weight.original1") {
            // What newer torch writes (torch.nn.utils.parametrizations.weight_norm).
            weight_norm(
                &vb.get((1, 1, k), "parametrizations.weight.original0")?,
                &vb.get(v_shape, "parametrizations.weight.original1")?,
            )?
        } else {
            // Already folded.
            vb.get(v_shape, "weight")?
        };
        Ok(Self {
            weight,
            bias: vb.get(h, "bias")?,
            kernel: k,
            groups,
            act: cfg.feat_extract_activation,
        })
    }

    /// `x`: `[B, H, T]` → `[B, H, T]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let t = x.dim(2)?;
        let y = x.conv1d(&self.weight, self.kernel / 2, 1, 1, self.groups)?;
        let y = y.broadcast_add(&self.bias.reshape((1, (), 1))?)?;
        // HubertSamePadLayer: an even kernel gives one frame too many; drop the last.
        let y = y.narrow(2, 0, t)?;
        activate(self.act, &y)
    }
}

fn weight_norm(g: &Tensor, v: &Tensor) -> Result<Tensor> {
    let norm = v.sqr()?.sum_keepdim(0)?.sum_keepdim(1)?.sqrt()?;
    v.broadcast_mul(&g.broadcast_div(&norm)?)
}

/// `HubertAttention` (modeling_hubert.py L420): queries scaled before the product.
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    num_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(Self {
            q_proj: linear(h, h, vb.pp("q_proj"))?,
            k_proj: linear(h, h, vb.pp("k_proj"))?,
            v_proj: linear(h, h, vb.pp("v_proj"))?,
            out_proj: linear(h, h, vb.pp("out_proj"))?,
            num_heads: cfg.num_attention_heads,
            head_dim: h / cfg.num_attention_heads,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let scaling = (self.head_dim as f64).powf(-0.5);
        let out = multi_head_attention(
            &(self.q_proj.forward(x)? * scaling)?,
            &self.k_proj.forward(x)?,
            &self.v_proj.forward(x)?,
            self.num_heads,
            None,
        )?;
        self.out_proj.forward(&out)
    }
}

/// `HubertFeedForward` (modeling_hubert.py L560).
struct FeedForward {
    intermediate_dense: Linear,
    output_dense: Linear,
    act: HiddenAct,
}

impl FeedForward {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        Ok(Self {
            intermediate_dense: linear(
                cfg.hidden_size,
                cfg.intermediate_size,
                vb.pp("intermediate_dense"),
            )?,
            output_dense: linear(
                cfg.intermediate_size,
                cfg.hidden_size,
                vb.pp("output_dense"),
            )?,
            act: cfg.hidden_act,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = activate(self.act, &self.intermediate_dense.forward(x)?)?;
        self.output_dense.forward(&x)
    }
}

/// `HubertEncoderLayer` (modeling_hubert.py L590), post-LN; with DeepNorm the residual is scaled
/// (`HubertEncoderLayerExtend`, MusicHubert.py L201).
struct EncoderLayer {
    attention: Attention,
    layer_norm: LayerNorm,
    feed_forward: FeedForward,
    final_layer_norm: LayerNorm,
    residual_alpha: f64,
}

impl EncoderLayer {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let h = cfg.hidden_size;
        let residual_alpha = if cfg.deepnorm {
            (2.0 * cfg.num_hidden_layers as f64).powf(0.25)
        } else {
            1.0
        };
        Ok(Self {
            attention: Attention::load(vb.pp("attention"), cfg)?,
            layer_norm: layer_norm(h, cfg.layer_norm_eps, vb.pp("layer_norm"))?,
            feed_forward: FeedForward::load(vb.pp("feed_forward"), cfg)?,
            final_layer_norm: layer_norm(h, cfg.layer_norm_eps, vb.pp("final_layer_norm"))?,
            residual_alpha,
        })
    }

    fn residual(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        if self.residual_alpha == 1.0 {
            residual + x
        } else {
            (residual * self.residual_alpha)? + x
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let attended = self.residual(&self.attention.forward(x)?, x)?;
        let attended = self.layer_norm.forward(&attended)?;
        let ff = self.residual(&self.feed_forward.forward(&attended)?, &attended)?;
        self.final_layer_norm.forward(&ff)
    }
}

/// `HubertEncoder` (modeling_hubert.py L650).
struct Encoder {
    pos_conv_embed: PosConvEmbed,
    layer_norm: LayerNorm,
    layers: Vec<EncoderLayer>,
}

impl Encoder {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| EncoderLayer::load(vb.pp(format!("layers.{i}")), cfg))
            .collect::<Result<_>>()?;
        Ok(Self {
            pos_conv_embed: PosConvEmbed::load(vb.pp("pos_conv_embed"), cfg)?,
            layer_norm: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("layer_norm"))?,
            layers,
        })
    }

    /// `x`: `[B, T, H]`. Calls `each` with every hidden state (`num_hidden_layers + 1` of them:
    /// after the encoder LayerNorm, then after each layer), in order.
    fn forward(&self, x: &Tensor, mut each: impl FnMut(&Tensor) -> Result<()>) -> Result<()> {
        let pos = self
            .pos_conv_embed
            .forward(&x.transpose(1, 2)?.contiguous()?)?
            .transpose(1, 2)?;
        let mut x = self.layer_norm.forward(&(x + pos)?)?;
        each(&x)?;
        for layer in &self.layers {
            x = layer.forward(&x)?;
            each(&x)?;
        }
        Ok(())
    }
}

/// The MERT model (`MusicHubertModel`), loaded from a checkpoint whose keys have no prefix
/// (`feature_extractor.…`, `feature_projection.…`, `encoder.…`) as in `m-a-p/MERT-v1-95M`.
pub struct Mert {
    feature_extractor: FeatureExtractor,
    feature_projection: FeatureProjection,
    encoder: Encoder,
    config: Config,
    device: Device,
}

impl std::fmt::Debug for Mert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mert")
            .field("config", &self.config)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// Weight file names looked for in a model folder, in order of preference.
pub const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];

impl Mert {
    /// Builds the model from a `VarBuilder` at the checkpoint's root. A checkpoint saved from a
    /// wrapping model with a `music_hubert.` prefix is accepted too.
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let vb = if !vb.contains_tensor("feature_projection.projection.weight")
            && vb.contains_tensor("music_hubert.feature_projection.projection.weight")
        {
            vb.pp("music_hubert")
        } else {
            vb
        };
        Ok(Self {
            feature_extractor: FeatureExtractor::load(vb.pp("feature_extractor"), cfg)?,
            feature_projection: FeatureProjection::load(vb.pp("feature_projection"), cfg)?,
            encoder: Encoder::load(vb.pp("encoder"), cfg)?,
            config: cfg.clone(),
            device: vb.device().clone(),
        })
    }

    /// Loads a Hugging Face model folder: `config.json` and `model.safetensors` or
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
                    "no MERT weights found (looked for {})",
                    WEIGHT_FILES.join(", ")
                )),
            })?;
        Self::from_file(&weights, &config, device)
    }

    /// Loads a weight file (`.bin`/`.pth` PyTorch or `.safetensors`) with a given configuration.
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

    /// `input_values`: `[B, samples]`, normalised 24 kHz audio. Returns every hidden state
    /// averaged over time, `[num_hidden_layers + 1, B, H]` (`hidden_states` stacked, then
    /// `.mean(-2)`, as the reference's `AudioBERTFeature.forward(layer=None)`). Only one hidden
    /// state is alive at a time.
    pub fn forward(&self, input_values: &Tensor) -> Result<Tensor> {
        let frames = self.config.frames(input_values.dim(1)?);
        if frames == 0 {
            candle_core::bail!(
                "MERT input of {} samples is shorter than one frame ({} samples)",
                input_values.dim(1)?,
                self.config.min_samples()
            );
        }
        let features = self.feature_extractor.forward(input_values)?;
        let hidden = self.feature_projection.forward(&features)?;
        let mut means = Vec::with_capacity(self.config.num_hidden_layers + 1);
        self.encoder.forward(&hidden, |state| {
            means.push(state.mean(1)?);
            Ok(())
        })?;
        Tensor::stack(&means, 0)
    }

    /// One window of normalised 24 kHz samples → `[num_hidden_layers + 1, H]`, each hidden
    /// state averaged over time (one row of the reference's per-window features).
    pub fn window_layers(&self, samples: &[f32]) -> Result<Tensor> {
        let input = Tensor::from_slice(samples, (1, samples.len()), &self.device)?;
        self.forward(&input)?.squeeze(1)
    }

    /// One window → `[H]`: [`Mert::window_layers`] averaged over the layers, the value that
    /// `extract_mert.py --mean_features` stores per window.
    pub fn window_vector(&self, samples: &[f32]) -> Result<Tensor> {
        self.window_layers(samples)?.mean(0)
    }

    /// Runs every window and stacks their vectors into `[1, windows, H]` `f32` on the CPU: the
    /// array `extract_mert.py --mean_features` saves for a file. On the CPU windows run side by
    /// side, so that the ops candle runs on one thread (LayerNorm, softmax, the element-wise ones)
    /// still keep every core busy; on a GPU they run one after another.
    pub fn file_features<'a>(
        &self,
        windows: impl IntoIterator<Item = &'a [f32]>,
    ) -> Result<Tensor> {
        let windows: Vec<&[f32]> = windows.into_iter().collect();
        let vector = |w: &&[f32]| self.window_vector(w)?.to_device(&Device::Cpu);
        let rows = if matches!(self.device, Device::Cpu) {
            windows.par_iter().map(vector).collect::<Result<Vec<_>>>()?
        } else {
            windows.iter().map(vector).collect::<Result<Vec<_>>>()?
        };
        if rows.is_empty() {
            candle_core::bail!("no audio window to run MERT on");
        }
        Tensor::stack(&rows, 0)?.to_dtype(DType::F32)?.unsqueeze(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_per_window_match_hubert() {
        let cfg = Config::default();
        // 5 s at 24 kHz: 23999, 11999, 5999, 2999, 1499, 749, 374 frames.
        assert_eq!(cfg.frames(120_000), 374);
        assert_eq!(cfg.frames(24_000), 74);
        assert_eq!(cfg.min_samples(), 400);
        assert_eq!(cfg.frames(400), 1);
        assert_eq!(cfg.frames(399), 0);
    }

    #[test]
    fn weight_norm_is_per_tap() {
        let dev = Device::Cpu;
        let v = Tensor::new(&[[[3f32, 1.0]], [[4.0, 0.0]]], &dev).unwrap(); // [2, 1, 2]
        let g = Tensor::new(&[[[10f32, 2.0]]], &dev).unwrap(); // [1, 1, 2]
        let w = weight_norm(&g, &v).unwrap();
        assert_eq!(
            w.to_vec3::<f32>().unwrap(),
            vec![vec![vec![6.0, 2.0]], vec![vec![8.0, 0.0]]]
        );
    }

    #[test]
    fn unsupported_configs_are_refused() {
        let cfg = Config {
            do_stable_layer_norm: true,
            ..Config::default()
        };
        assert!(cfg.validate().unwrap_err().contains("do_stable_layer_norm"));
        let cfg = Config {
            conv_kernel: vec![10],
            ..Config::default()
        };
        assert!(cfg.validate().is_err());
        assert!(Config::default().validate().is_ok());
    }
}
