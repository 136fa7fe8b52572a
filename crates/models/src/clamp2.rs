//! CLaMP 2 and its symbolic encoder M3: XLM-R text and M3 patches into one embedding space.
//!
//! Paper: Wu et al., *CLaMP 2: Multimodal Music Information Retrieval Across 101 Languages Using
//! Large Language Models* (<https://arxiv.org/abs/2410.13267>). Upstream: `CLaMP2Model`,
//! `M3PatchEncoder` and `M3Model` in `code/utils.py` of <https://github.com/sanderwood/clamp2>.
//! The encoders are CLaMP 3's text and symbolic ones under other key prefixes (`music_model`,
//! `music_proj`); M3's own checkpoint keeps its encoder under `encoder` (next to a GPT-2 token
//! decoder that features do not use).

use crate::config::{check_heads, check_positions, read_config, BertConfig, TextConfig};
use crate::linear::{linear, Linear};
use crate::m3::M3PatchEncoder;
use crate::xlm_roberta::XlmRobertaModel;
use crate::EncoderInput;
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// CLaMP 2 hyper-parameters (`config.json`; upstream they live in `code/config.py`). Unknown
/// keys are ignored, so a file that also describes M3's token decoder (`m3_decoder`) reads too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clamp2Config {
    /// Shared embedding size D (`CLAMP2_HIDDEN_SIZE`), the output width of both projections.
    pub hidden_size: usize,
    /// Text segment length L in token ids (`MAX_TEXT_LENGTH`).
    pub max_text_length: usize,
    /// Characters per patch (`PATCH_SIZE`).
    pub patch_size: usize,
    /// Symbolic segment length L in patches (`PATCH_LENGTH`).
    pub patch_length: usize,
    /// The XLM-R text encoder (`TEXT_MODEL_NAME`).
    pub text_model: TextConfig,
    /// The M3 patch encoder's BERT (`M3_HIDDEN_SIZE`, `PATCH_NUM_LAYERS`).
    pub music_model: BertConfig,
}

/// The official `sander-wood/clamp2` checkpoint and M3 (their encoders share these sizes).
impl Default for Clamp2Config {
    fn default() -> Self {
        Self {
            hidden_size: 768,
            max_text_length: 128,
            patch_size: 64,
            patch_length: 512,
            text_model: TextConfig::xlm_roberta_base(),
            music_model: BertConfig::official(512),
        }
    }
}

impl Clamp2Config {
    /// Reads and checks a `config.json`.
    pub fn from_file(path: &Path) -> crate::Result<Self> {
        read_config(path, Self::validate)
    }

    /// Checks the relations between sizes that the model relies on.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let text = &self.text_model;
        let music = &self.music_model;
        check_heads("text_model", text.hidden_size, text.num_attention_heads)?;
        check_heads("music_model", music.hidden_size, music.num_attention_heads)?;
        check_positions(
            "text_model",
            text.max_position_embeddings,
            self.max_text_length + text.pad_token_id as usize + 1,
            "max_text_length + pad_token_id + 1",
        )?;
        self.validate_m3()?;
        if self.max_text_length == 0 {
            return Err("max_text_length must be positive".to_string());
        }
        Ok(())
    }

    /// The checks that concern the M3 patch encoder alone (all an M3 checkpoint needs).
    pub fn validate_m3(&self) -> std::result::Result<(), String> {
        let music = &self.music_model;
        check_heads("music_model", music.hidden_size, music.num_attention_heads)?;
        check_positions(
            "music_model",
            music.max_position_embeddings,
            self.patch_length,
            "patch_length",
        )?;
        if self.patch_length == 0 {
            return Err("patch_length must be positive".to_string());
        }
        if self.patch_size < 2 {
            return Err(format!("patch_size {} is below 2", self.patch_size));
        }
        Ok(())
    }
}

/// CLaMP 2 (`CLaMP2Model`): field names are the checkpoint's key prefixes.
pub struct Clamp2Model {
    text_model: XlmRobertaModel,
    text_proj: Linear,
    music_model: M3PatchEncoder,
    music_proj: Linear,
    config: Clamp2Config,
    device: Device,
}

impl Clamp2Model {
    /// Builds the model from a `VarBuilder` at the checkpoint's root.
    pub fn load(vb: VarBuilder, cfg: &Clamp2Config) -> Result<Self> {
        let d = cfg.hidden_size;
        Ok(Self {
            text_model: XlmRobertaModel::load(vb.pp("text_model"), &cfg.text_model)?,
            text_proj: linear(cfg.text_model.hidden_size, d, vb.pp("text_proj"))?,
            music_model: M3PatchEncoder::load(
                vb.pp("music_model"),
                &cfg.music_model,
                cfg.patch_size,
            )?,
            music_proj: linear(cfg.music_model.hidden_size, d, vb.pp("music_proj"))?,
            config: cfg.clone(),
            device: vb.device().clone(),
        })
    }

    /// Loads a weight file (official `.pth` or `.safetensors`) onto `device`.
    pub fn from_file(path: &Path, cfg: &Clamp2Config, device: &Device) -> crate::Result<Self> {
        crate::weights::load_model(path, device, cfg.validate(), |vb| Self::load(vb, cfg))
    }

    /// The configuration the model was built with.
    pub fn config(&self) -> &Clamp2Config {
        &self.config
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs the text or music encoder: the last hidden state `[batch, seq, H]`. `mask`
    /// (`[batch, seq]`, 1 real / 0 padding) is only needed for ragged batches.
    pub fn encode(&self, input: EncoderInput, mask: Option<&Tensor>) -> Result<Tensor> {
        match input {
            EncoderInput::TokenIds(ids) => self.text_model.forward(ids, mask),
            EncoderInput::Patches(patches) => self.music_model.forward(patches, mask),
            EncoderInput::Features(_) => candle_core::bail!("CLaMP 2 has no audio encoder"),
        }
    }

    /// `text_proj` (`[batch, H_text]` → `[batch, D]`).
    pub fn project_text(&self, pooled: &Tensor) -> Result<Tensor> {
        self.text_proj.forward(pooled)
    }

    /// `music_proj` (`[batch, H_music]` → `[batch, D]`).
    pub fn project_music(&self, pooled: &Tensor) -> Result<Tensor> {
        self.music_proj.forward(pooled)
    }
}

/// M3's patch encoder on its own (`M3Model.encoder` of the M3 checkpoint), for the per-patch
/// features of `extract_m3.py`: no pooling, no projection.
pub struct M3Model {
    encoder: M3PatchEncoder,
    patch_length: usize,
    hidden_size: usize,
    device: Device,
}

impl M3Model {
    /// Builds the encoder from a `VarBuilder` at the checkpoint's root (it reads `encoder.*`;
    /// the token decoder is not loaded). Sizes come from the CLaMP 2 config's music part.
    pub fn load(vb: VarBuilder, cfg: &Clamp2Config) -> Result<Self> {
        Ok(Self {
            encoder: M3PatchEncoder::load(vb.pp("encoder"), &cfg.music_model, cfg.patch_size)?,
            patch_length: cfg.patch_length,
            hidden_size: cfg.music_model.hidden_size,
            device: vb.device().clone(),
        })
    }

    /// Loads an M3 weight file (official `.pth` or `.safetensors`) onto `device`.
    pub fn from_file(path: &Path, cfg: &Clamp2Config, device: &Device) -> crate::Result<Self> {
        crate::weights::load_model(path, device, cfg.validate_m3(), |vb| Self::load(vb, cfg))
    }

    /// Segment length L in patches.
    pub fn patch_length(&self) -> usize {
        self.patch_length
    }

    /// Width H of the features.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// `patches`: `[batch, seq, patch_size]`; the last hidden state `[batch, seq, H]`.
    pub fn encode(&self, patches: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        self.encoder.forward(&patches.to_dtype(DType::U32)?, mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_official() {
        let c = Clamp2Config::default();
        c.validate().unwrap();
        assert_eq!(c.text_model.vocab_size, 250_002);
        assert_eq!(c.music_model.max_position_embeddings, c.patch_length);
    }

    #[test]
    fn reads_a_config_with_the_m3_decoder() {
        let mut json = serde_json::to_value(Clamp2Config::default()).unwrap();
        json["m3_decoder"] = serde_json::json!({"n_layer": 3});
        let c: Clamp2Config = serde_json::from_value(json).unwrap();
        assert_eq!(c, Clamp2Config::default());
        let mut bad = c.clone();
        bad.patch_length = 600;
        assert!(bad.validate_m3().unwrap_err().contains("music_model"));
    }
}
