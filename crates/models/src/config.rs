//! CLaMP 3 hyper-parameters: the `config.json` schema, with the official checkpoint's values as
//! the default so users of the published weights need no file.
//!
//! The encoders' sizes are always read, never derived: the reference's extraction script computes
//! heads as `H / 64` and the intermediate size as `4 H`, which only holds for the official sizes.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Top-level CLaMP 3 configuration (`config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Shared embedding size D, the output width of every `*_proj` layer.
    pub hidden_size: usize,
    /// Text segment length L in token ids.
    pub max_text_length: usize,
    /// Characters per patch.
    pub patch_size: usize,
    /// Symbolic segment length L in patches.
    pub patch_length: usize,
    /// Audio segment length L in MERT feature rows.
    pub max_audio_length: usize,
    /// The XLM-R text encoder.
    pub text_model: TextConfig,
    /// The M3 patch encoder's BERT.
    pub symbolic_model: BertConfig,
    /// The audio BERT over MERT features.
    pub audio_model: BertConfig,
}

/// Hidden activation of the transformer feed-forward layers (Hugging Face `hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HiddenAct {
    /// Exact GELU, `x * Φ(x)` with the error function (Hugging Face `"gelu"`).
    #[default]
    Gelu,
    /// Tanh approximation of GELU (Hugging Face `"gelu_new"`).
    #[serde(rename = "gelu_new")]
    GeluNew,
    /// ReLU.
    Relu,
}

/// An XLM-RoBERTa encoder configuration (the subset of Hugging Face's `XLMRobertaConfig` that
/// inference needs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    /// Hugging Face model type; informative only.
    #[serde(default = "default_text_model_type")]
    pub model_type: String,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden size H.
    pub hidden_size: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads.
    pub num_attention_heads: usize,
    /// Feed-forward inner size.
    pub intermediate_size: usize,
    /// Rows of the position embedding table.
    pub max_position_embeddings: usize,
    /// Rows of the token-type embedding table.
    #[serde(default = "default_text_type_vocab")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[serde(default = "default_text_eps")]
    pub layer_norm_eps: f64,
    /// Id of `<pad>`, also the padding index of the position ids.
    #[serde(default = "default_pad_token_id")]
    pub pad_token_id: u32,
    /// Feed-forward activation.
    #[serde(default)]
    pub hidden_act: HiddenAct,
}

/// A BERT encoder configuration fed with `inputs_embeds` (the symbolic and audio encoders).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// Hidden size H.
    pub hidden_size: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads.
    pub num_attention_heads: usize,
    /// Feed-forward inner size.
    pub intermediate_size: usize,
    /// Rows of the position embedding table.
    pub max_position_embeddings: usize,
    /// Rows of the token-type table; only row 0 is used (`BertConfig`'s default is 2).
    #[serde(default = "default_bert_type_vocab")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[serde(default = "default_bert_eps")]
    pub layer_norm_eps: f64,
    /// Feed-forward activation.
    #[serde(default)]
    pub hidden_act: HiddenAct,
}

fn default_text_model_type() -> String {
    "xlm-roberta".to_string()
}
fn default_text_type_vocab() -> usize {
    1
}
fn default_text_eps() -> f64 {
    1e-5
}
fn default_pad_token_id() -> u32 {
    1
}
fn default_bert_type_vocab() -> usize {
    2
}
fn default_bert_eps() -> f64 {
    1e-12
}

impl BertConfig {
    /// The official CLaMP 3 encoder sizes (768 hidden, 12 layers, 12 heads, 3072 inner) with the
    /// given number of positions.
    pub fn official(max_position_embeddings: usize) -> Self {
        Self {
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            max_position_embeddings,
            type_vocab_size: default_bert_type_vocab(),
            layer_norm_eps: default_bert_eps(),
            hidden_act: HiddenAct::Gelu,
        }
    }
}

impl TextConfig {
    /// `FacebookAI/xlm-roberta-base`.
    pub fn xlm_roberta_base() -> Self {
        Self {
            model_type: default_text_model_type(),
            vocab_size: 250_002,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            max_position_embeddings: 514,
            type_vocab_size: 1,
            layer_norm_eps: 1e-5,
            pad_token_id: 1,
            hidden_act: HiddenAct::Gelu,
        }
    }
}

/// The official CLaMP 3 checkpoints (SAAS and C2 share these sizes).
impl Default for Config {
    fn default() -> Self {
        Self {
            hidden_size: 768,
            max_text_length: 128,
            patch_size: 64,
            patch_length: 512,
            max_audio_length: 128,
            text_model: TextConfig::xlm_roberta_base(),
            symbolic_model: BertConfig::official(512),
            audio_model: BertConfig::official(128),
        }
    }
}

/// Reads a `config.json` of any family and checks it with `validate`; errors name the file.
pub(crate) fn read_config<T: serde::de::DeserializeOwned>(
    path: &Path,
    validate: impl FnOnce(&T) -> Result<(), String>,
) -> crate::Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| crate::Error::Io {
        path: path.to_path_buf(),
        error: e,
    })?;
    let config: T = serde_json::from_str(&text).map_err(|e| crate::Error::Config {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    validate(&config).map_err(|message| crate::Error::Config {
        path: path.to_path_buf(),
        message,
    })?;
    Ok(config)
}

/// Checks that an encoder's heads divide its hidden size.
pub(crate) fn check_heads(name: &str, hidden: usize, heads: usize) -> Result<(), String> {
    if heads == 0 || !hidden.is_multiple_of(heads) {
        return Err(format!(
            "{name}: hidden_size {hidden} is not a multiple of num_attention_heads {heads}"
        ));
    }
    Ok(())
}

/// Checks that an encoder has the positions a segment needs.
pub(crate) fn check_positions(
    name: &str,
    have: usize,
    need: usize,
    what: &str,
) -> Result<(), String> {
    if have < need {
        return Err(format!(
            "{name}: max_position_embeddings is {have}, needs at least {what} = {need}"
        ));
    }
    Ok(())
}

impl Config {
    /// Reads and checks a `config.json`.
    pub fn from_file(path: &Path) -> crate::Result<Self> {
        read_config(path, Config::validate)
    }

    /// Checks the relations between sizes that the model relies on.
    pub fn validate(&self) -> Result<(), String> {
        let encoders = [
            (
                "text_model",
                self.text_model.hidden_size,
                self.text_model.num_attention_heads,
            ),
            (
                "symbolic_model",
                self.symbolic_model.hidden_size,
                self.symbolic_model.num_attention_heads,
            ),
            (
                "audio_model",
                self.audio_model.hidden_size,
                self.audio_model.num_attention_heads,
            ),
        ];
        for (name, hidden, heads) in encoders {
            if heads == 0 || hidden % heads != 0 {
                return Err(format!(
                    "{name}: hidden_size {hidden} is not a multiple of num_attention_heads {heads}"
                ));
            }
        }
        let positions = [
            // XLM-R positions start after the padding index: ids 0..=pad are never real positions.
            (
                "text_model",
                self.text_model.max_position_embeddings,
                self.max_text_length + self.text_model.pad_token_id as usize + 1,
                "max_text_length + pad_token_id + 1",
            ),
            (
                "symbolic_model",
                self.symbolic_model.max_position_embeddings,
                self.patch_length,
                "patch_length",
            ),
            (
                "audio_model",
                self.audio_model.max_position_embeddings,
                self.max_audio_length,
                "max_audio_length",
            ),
        ];
        for (name, have, need, what) in positions {
            if have < need {
                return Err(format!(
                    "{name}: max_position_embeddings is {have}, needs at least {what} = {need}"
                ));
            }
        }
        if self.max_text_length == 0 || self.patch_length == 0 || self.max_audio_length == 0 {
            return Err("segment lengths must be positive".to_string());
        }
        if self.patch_size < 2 {
            return Err(format!("patch_size {} is below 2", self.patch_size));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_official() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.text_model.max_position_embeddings, 514);
        assert_eq!(c.symbolic_model.max_position_embeddings, 512);
        assert_eq!(c.audio_model.max_position_embeddings, 128);
    }

    #[test]
    fn round_trips_through_json() {
        let c = Config::default();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Config>(&json).unwrap(), c);
    }

    #[test]
    fn rejects_bad_heads() {
        let mut c = Config::default();
        c.audio_model.num_attention_heads = 7;
        assert!(c.validate().unwrap_err().contains("audio_model"));
    }
}
