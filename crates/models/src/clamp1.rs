//! CLaMP 1 (CLaMP-S/512 and S/1024): a DistilRoBERTa text encoder and a BERT over bar patches.
//!
//! Paper: Wu et al., *CLaMP: Contrastive Language-Music Pre-training for Cross-Modal Symbolic
//! Music Information Retrieval* (ISMIR 2023, <https://arxiv.org/abs/2304.11029>). Upstream:
//! `MusicEncoder` and `CLaMP` in `clamp/utils.py` of <https://github.com/microsoft/muzic>.
//! A bar patch is 64 ids below 98 (printable ASCII shifted down by 31, 0 padding, 97 end); the
//! music encoder one-hot encodes it (applied here as a gather-sum, as for M3) and runs a BERT on
//! `inputs_embeds`. Both projections are `H → H`: there is no separate joint size.

use crate::config::{check_heads, check_positions, read_config, BertConfig, HiddenAct, TextConfig};
use crate::linear::{linear, Linear};
use crate::m3::PatchEmbedding;
use crate::xlm_roberta::XlmRobertaModel;
use crate::{bert::BertModel, EncoderInput};
use candle_core::{Device, Module, Result, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;
use std::path::Path;

/// Characters per bar patch (`PATCH_LENGTH` upstream, fixed in every CLaMP 1 model).
pub const BAR_PATCH_SIZE: usize = 64;
/// Distinct ids of a bar-patch position (`PATCH_FEATURES`): the one-hot width.
pub const BAR_PATCH_VOCAB: usize = 98;
/// Most text tokens the reference encodes (`TEXT_LENGTH`, truncation included `</s>`).
pub const TEXT_LENGTH: usize = 128;

/// The part of a CLaMP `config.json` (a Hugging Face `BertConfig`) beyond the music BERT's sizes.
#[derive(Deserialize)]
struct MaxLength {
    /// transformers' generation default when the file has none, which `clamp.py` would use.
    #[serde(default = "default_max_length")]
    max_length: usize,
}

fn default_max_length() -> usize {
    20
}

/// CLaMP 1 hyper-parameters: the model folder's `config.json` (music BERT and `max_length`) and
/// the text encoder's `config.json` (`distilroberta-base`).
#[derive(Debug, Clone, PartialEq)]
pub struct Clamp1Config {
    /// Most patches encoded (`model.config.max_length`, `music_length` in `clamp.py`); longer
    /// pieces are cut.
    pub max_length: usize,
    /// The music BERT.
    pub music_model: BertConfig,
    /// The RoBERTa text encoder.
    pub text_model: TextConfig,
}

impl Clamp1Config {
    /// The official `sander-wood/clamp-small-{max_length}` sizes (512 or 1024) with
    /// `distilroberta-base`.
    pub fn official(max_length: usize) -> Self {
        let mut music_model = BertConfig::official(max_length);
        music_model.num_hidden_layers = 6;
        Self {
            max_length,
            music_model,
            text_model: Self::distilroberta_base(),
        }
    }

    /// `distilroberta-base`: RoBERTa with 6 layers and a 50265-token vocabulary.
    pub fn distilroberta_base() -> TextConfig {
        TextConfig {
            model_type: "roberta".to_string(),
            vocab_size: 50_265,
            hidden_size: 768,
            num_hidden_layers: 6,
            num_attention_heads: 12,
            intermediate_size: 3072,
            max_position_embeddings: 514,
            type_vocab_size: 1,
            layer_norm_eps: 1e-5,
            pad_token_id: 1,
            hidden_act: HiddenAct::Gelu,
        }
    }

    /// Reads the CLaMP `config.json` and, when given, the text encoder's (else
    /// `distilroberta-base`'s sizes).
    pub fn from_files(clamp: &Path, text: Option<&Path>) -> crate::Result<Self> {
        let music_model: BertConfig = read_config(clamp, |_: &BertConfig| Ok(()))?;
        let MaxLength { max_length } = read_config(clamp, |_: &MaxLength| Ok(()))?;
        let text_model = match text {
            Some(path) => read_config(path, |_: &TextConfig| Ok(()))?,
            None => Self::distilroberta_base(),
        };
        let config = Self {
            max_length,
            music_model,
            text_model,
        };
        config.validate().map_err(|message| crate::Error::Config {
            path: clamp.to_path_buf(),
            message,
        })?;
        Ok(config)
    }

    /// Checks the relations between sizes that the model relies on.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let (music, text) = (&self.music_model, &self.text_model);
        check_heads("music model", music.hidden_size, music.num_attention_heads)?;
        check_heads("text model", text.hidden_size, text.num_attention_heads)?;
        if text.hidden_size != music.hidden_size {
            return Err(format!(
                "the text encoder is {} wide and the music encoder {}: CLaMP 1 projects both \
                 H → H, so they must be equal",
                text.hidden_size, music.hidden_size
            ));
        }
        check_positions(
            "music model",
            music.max_position_embeddings,
            self.max_length,
            "max_length",
        )?;
        check_positions(
            "text model",
            text.max_position_embeddings,
            TEXT_LENGTH + text.pad_token_id as usize + 1,
            "128 tokens + pad_token_id + 1",
        )?;
        if self.max_length == 0 {
            return Err("max_length must be positive".to_string());
        }
        Ok(())
    }
}

/// CLaMP 1 (`CLaMP`): field names are the checkpoint's key prefixes.
pub struct Clamp1Model {
    text_enc: XlmRobertaModel,
    text_proj: Linear,
    patch_embedding: PatchEmbedding,
    music_enc: BertModel,
    music_proj: Linear,
    config: Clamp1Config,
    device: Device,
}

impl Clamp1Model {
    /// Builds the model from a `VarBuilder` at the checkpoint's root.
    pub fn load(vb: VarBuilder, cfg: &Clamp1Config) -> Result<Self> {
        let h = cfg.music_model.hidden_size;
        Ok(Self {
            // RoBERTa's modules and keys are XLM-R's.
            text_enc: XlmRobertaModel::load(vb.pp("text_enc"), &cfg.text_model)?,
            text_proj: linear(cfg.text_model.hidden_size, h, vb.pp("text_proj"))?,
            patch_embedding: PatchEmbedding::load(
                vb.pp("music_enc.patch_embedding"),
                BAR_PATCH_SIZE,
                BAR_PATCH_VOCAB,
                h,
            )?,
            music_enc: BertModel::load(vb.pp("music_enc.enc"), &cfg.music_model)?,
            music_proj: linear(h, h, vb.pp("music_proj"))?,
            config: cfg.clone(),
            device: vb.device().clone(),
        })
    }

    /// Loads a weight file (`pytorch_model.bin` as published, or `.safetensors`) onto `device`.
    pub fn from_file(path: &Path, cfg: &Clamp1Config, device: &Device) -> crate::Result<Self> {
        crate::weights::load_model(path, device, cfg.validate(), |vb| Self::load(vb, cfg))
    }

    /// The configuration the model was built with.
    pub fn config(&self) -> &Clamp1Config {
        &self.config
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs the text or music encoder: the last hidden state `[batch, seq, H]`.
    pub fn encode(&self, input: EncoderInput, mask: Option<&Tensor>) -> Result<Tensor> {
        match input {
            EncoderInput::TokenIds(ids) => self.text_enc.forward(ids, mask),
            EncoderInput::Patches(patches) => {
                let embeds = self
                    .patch_embedding
                    .forward(&patches.to_dtype(candle_core::DType::U32)?)?;
                self.music_enc.forward(&embeds, mask)
            }
            EncoderInput::Features(_) => candle_core::bail!("CLaMP 1 has no audio encoder"),
        }
    }

    /// `text_proj`.
    pub fn project_text(&self, pooled: &Tensor) -> Result<Tensor> {
        self.text_proj.forward(pooled)
    }

    /// `music_proj`.
    pub fn project_music(&self, pooled: &Tensor) -> Result<Tensor> {
        self.music_proj.forward(pooled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_sizes_are_valid() {
        for n in [512, 1024] {
            let c = Clamp1Config::official(n);
            c.validate().unwrap();
            assert_eq!(c.music_model.num_hidden_layers, 6);
        }
        let mut c = Clamp1Config::official(512);
        c.text_model.hidden_size = 512;
        c.text_model.num_attention_heads = 8;
        assert!(c.validate().unwrap_err().contains("must be equal"));
    }
}
