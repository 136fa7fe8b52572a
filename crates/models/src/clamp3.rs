//! The CLaMP 3 model: three encoders and their projections into one embedding space.
//!
//! Paper: Wu et al., *CLaMP 3: Universal Music Information Retrieval Across Unaligned Modalities
//! and Unseen Languages* (<https://arxiv.org/abs/2502.10362>). Upstream: `CLaMP3Model` in
//! <https://github.com/sanderwood/clamp3/blob/9016d2b/code/utils.py> (`get_text_features`,
//! `get_symbolic_features`, `get_audio_features`, `avg_pooling`).

use crate::bert::BertModel;
use crate::config::Config;
use crate::linear::{linear, Linear};
use crate::m3::M3PatchEncoder;
use crate::xlm_roberta::XlmRobertaModel;
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::VarBuilder;
use std::path::Path;

/// The three kinds of input CLaMP 3 encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Modality {
    /// Text: XLM-R token ids.
    Text,
    /// Sheet music or MIDI: M3 patches.
    Symbolic,
    /// Audio: MERT feature rows.
    Audio,
}

impl Modality {
    /// Lower-case name, as used in file and cache names.
    pub fn name(self) -> &'static str {
        match self {
            Modality::Text => "text",
            Modality::Symbolic => "symbolic",
            Modality::Audio => "audio",
        }
    }
}

/// What an encoder reads, one segment batch at a time.
#[derive(Debug)]
pub enum EncoderInput<'a> {
    /// `[batch, seq]` u32 token ids.
    TokenIds(&'a Tensor),
    /// `[batch, seq, patch_size]` u32 patches.
    Patches(&'a Tensor),
    /// `[batch, seq, H]` f32 MERT feature rows.
    Features(&'a Tensor),
}

impl<'a> EncoderInput<'a> {
    /// A batch of `modality`'s encoder input (ids, patches or feature rows).
    pub fn of(modality: Modality, batch: &'a Tensor) -> Self {
        match modality {
            Modality::Text => EncoderInput::TokenIds(batch),
            Modality::Symbolic => EncoderInput::Patches(batch),
            Modality::Audio => EncoderInput::Features(batch),
        }
    }

    /// The modality this input belongs to.
    pub fn modality(&self) -> Modality {
        match self {
            EncoderInput::TokenIds(_) => Modality::Text,
            EncoderInput::Patches(_) => Modality::Symbolic,
            EncoderInput::Features(_) => Modality::Audio,
        }
    }
}

/// CLaMP 3 (`CLaMP3Model`): field names are the checkpoint's key prefixes.
pub struct Clamp3Model {
    text_model: XlmRobertaModel,
    text_proj: Linear,
    symbolic_model: M3PatchEncoder,
    symbolic_proj: Linear,
    audio_model: BertModel,
    audio_proj: Linear,
    config: Config,
    device: Device,
}

impl Clamp3Model {
    /// Builds the model from a `VarBuilder` at the checkpoint's root.
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let d = cfg.hidden_size;
        Ok(Self {
            text_model: XlmRobertaModel::load(vb.pp("text_model"), &cfg.text_model)?,
            text_proj: linear(cfg.text_model.hidden_size, d, vb.pp("text_proj"))?,
            symbolic_model: M3PatchEncoder::load(
                vb.pp("symbolic_model"),
                &cfg.symbolic_model,
                cfg.patch_size,
            )?,
            symbolic_proj: linear(cfg.symbolic_model.hidden_size, d, vb.pp("symbolic_proj"))?,
            audio_model: BertModel::load(vb.pp("audio_model"), &cfg.audio_model)?,
            audio_proj: linear(cfg.audio_model.hidden_size, d, vb.pp("audio_proj"))?,
            config: cfg.clone(),
            device: vb.device().clone(),
        })
    }

    /// Stores the dense weights of the three encoders and projections as `dtype`, for reduced
    /// precision (bf16 halves what a pass reads; activations and sums stay f32). Embeddings,
    /// LayerNorms and biases stay as loaded.
    pub fn store_weights_as(&mut self, dtype: DType) -> Result<()> {
        self.text_model.store_weights_as(dtype)?;
        self.symbolic_model.store_weights_as(dtype)?;
        self.audio_model.store_weights_as(dtype)?;
        for proj in [
            &mut self.text_proj,
            &mut self.symbolic_proj,
            &mut self.audio_proj,
        ] {
            *proj = proj.with_weight_dtype(dtype)?;
        }
        Ok(())
    }

    /// Loads a weight file (official `.pth` or `.safetensors`) onto `device`.
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

    /// Segment length L of a modality.
    pub fn segment_length(&self, modality: Modality) -> usize {
        match modality {
            Modality::Text => self.config.max_text_length,
            Modality::Symbolic => self.config.patch_length,
            Modality::Audio => self.config.max_audio_length,
        }
    }

    /// Hidden width of a modality's encoder (the width of local features).
    pub fn encoder_width(&self, modality: Modality) -> usize {
        match modality {
            Modality::Text => self.config.text_model.hidden_size,
            Modality::Symbolic => self.config.symbolic_model.hidden_size,
            Modality::Audio => self.config.audio_model.hidden_size,
        }
    }

    /// Runs an encoder: the last hidden state `[batch, seq, H]`. `mask` (`[batch, seq]`, 1 real /
    /// 0 padding) is only needed when the batch holds segments of different lengths.
    pub fn encode(&self, input: EncoderInput, mask: Option<&Tensor>) -> Result<Tensor> {
        match input {
            EncoderInput::TokenIds(ids) => self.text_model.forward(ids, mask),
            EncoderInput::Patches(patches) => self.symbolic_model.forward(patches, mask),
            EncoderInput::Features(features) => self
                .audio_model
                .forward(&features.to_dtype(DType::F32)?, mask),
        }
    }

    /// Projects pooled encoder outputs `[batch, H]` into the shared space `[batch, D]`.
    pub fn project(&self, modality: Modality, pooled: &Tensor) -> Result<Tensor> {
        match modality {
            Modality::Text => self.text_proj.forward(pooled),
            Modality::Symbolic => self.symbolic_proj.forward(pooled),
            Modality::Audio => self.audio_proj.forward(pooled),
        }
    }
}

/// Mean over the sequence of `hidden` (`[batch, seq, H]`), counting only rows whose `mask`
/// (`[batch, seq]`) is 1; without a mask every row counts (`avg_pooling` upstream).
pub fn masked_mean(hidden: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    match mask {
        None => hidden.mean(1),
        Some(mask) => {
            let mask = mask.to_dtype(hidden.dtype())?.unsqueeze(2)?;
            let sum = hidden.broadcast_mul(&mask)?.sum(1)?;
            sum.broadcast_div(&mask.sum(1)?)
        }
    }
}
