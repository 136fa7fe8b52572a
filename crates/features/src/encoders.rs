//! The [`Encoder`] side of the earlier model families (CLaMP 2, M3 features, CLaMP 1): how each
//! one segments, pads and projects, so the cross-file batcher runs them like CLaMP 3.

use crate::batch::{Encoder, Segmenting};
use crate::Result;
use candle_core::{Device, Tensor};
use clamp3_models::clamp1::TEXT_LENGTH;
use clamp3_models::{Clamp1Model, Clamp2Model, EncoderInput, M3Model, Modality};

impl Encoder for Clamp2Model {
    fn device(&self) -> &Device {
        Clamp2Model::device(self)
    }

    fn segmenting(&self, modality: Modality) -> Segmenting {
        let config = self.config();
        Segmenting::Overlapping {
            length: match modality {
                Modality::Text => config.max_text_length,
                _ => config.patch_length,
            },
        }
    }

    fn input_width(&self, _modality: Modality) -> Option<usize> {
        None
    }

    fn padding_id(&self, modality: Modality) -> u32 {
        match modality {
            Modality::Text => self.config().text_model.pad_token_id,
            _ => 0,
        }
    }

    fn encode(&self, modality: Modality, batch: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        Ok(Clamp2Model::encode(
            self,
            EncoderInput::of(modality, batch),
            mask,
        )?)
    }

    fn project(&self, modality: Modality, pooled: &Tensor) -> Result<Tensor> {
        Ok(match modality {
            Modality::Text => self.project_text(pooled)?,
            _ => self.project_music(pooled)?,
        })
    }
}

/// M3 has one encoder (patches) and no shared space: `extract_m3.py` writes per-patch features
/// only, so a global vector is refused.
impl Encoder for M3Model {
    fn device(&self) -> &Device {
        M3Model::device(self)
    }

    fn segmenting(&self, _modality: Modality) -> Segmenting {
        Segmenting::Overlapping {
            length: self.patch_length(),
        }
    }

    fn input_width(&self, _modality: Modality) -> Option<usize> {
        None
    }

    fn padding_id(&self, _modality: Modality) -> u32 {
        0
    }

    fn encode(&self, modality: Modality, batch: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        if modality != Modality::Symbolic {
            return Err(clamp3_models::Error::Input(format!(
                "M3 encodes symbolic music only, not {}",
                modality.name()
            ))
            .into());
        }
        Ok(M3Model::encode(self, batch, mask)?)
    }

    fn project(&self, _modality: Modality, _pooled: &Tensor) -> Result<Tensor> {
        Err(clamp3_models::Error::Input(
            "M3 has no shared embedding space: it gives per-patch features only (local pooling)"
                .into(),
        )
        .into())
    }
}

/// CLaMP 1 encodes no more than its first `max_length` patches and 128 tokens, in one segment
/// (the inputs arrive cut already; truncating again is a no-op that keeps the batcher's rule
/// honest).
impl Encoder for Clamp1Model {
    fn device(&self) -> &Device {
        Clamp1Model::device(self)
    }

    fn segmenting(&self, modality: Modality) -> Segmenting {
        Segmenting::Truncate {
            max: match modality {
                Modality::Text => TEXT_LENGTH,
                _ => self.config().max_length,
            },
        }
    }

    fn input_width(&self, _modality: Modality) -> Option<usize> {
        None
    }

    fn padding_id(&self, modality: Modality) -> u32 {
        match modality {
            Modality::Text => self.config().text_model.pad_token_id,
            _ => 0,
        }
    }

    fn encode(&self, modality: Modality, batch: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        Ok(Clamp1Model::encode(
            self,
            EncoderInput::of(modality, batch),
            mask,
        )?)
    }

    fn project(&self, modality: Modality, pooled: &Tensor) -> Result<Tensor> {
        Ok(match modality {
            Modality::Text => self.project_text(pooled)?,
            _ => self.project_music(pooled)?,
        })
    }
}
