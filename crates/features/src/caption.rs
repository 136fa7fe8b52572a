//! Images → captions, as the reference's `inference/image_captioning.py` makes them: PIL-exact
//! preprocessing ([`clamp3_images`]), BLIP's greedy `generate()` ([`clamp3_models::blip`]), then
//! `processor.decode(ids, skip_special_tokens=True)`. CLaMP 3 embeds the caption as a text.

use crate::{Error, Result};
use candle_core::{Device, Tensor};
use clamp3_images::{decode_rgb, ProcessorConfig};
use clamp3_models::blip::Blip;
use std::path::Path;
use tokenizers::Tokenizer;

/// An image's caption: the text CLaMP 3 embeds and the BLIP ids it was decoded from
/// (`[DEC] … [SEP]`, as `generate()` returns them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caption {
    /// The decoded caption.
    pub text: String,
    /// The generated ids, bos included.
    pub ids: Vec<u32>,
}

/// BLIP with its image processor and tokenizer: an image's bytes in, its caption out.
pub struct Captioner {
    blip: Blip,
    processor: ProcessorConfig,
    tokenizer: Tokenizer,
}

impl std::fmt::Debug for Captioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Captioner")
            .field("blip", &self.blip)
            .field("processor", &self.processor)
            .finish_non_exhaustive()
    }
}

/// The files of a BLIP captioning folder besides the weights.
pub const PROCESSOR_FILE: &str = "preprocessor_config.json";
/// The BLIP tokenizer's file.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

impl Captioner {
    /// Loads a Hugging Face BLIP captioning folder (`config.json`, `model.safetensors` or
    /// `pytorch_model.bin`, `preprocessor_config.json`, `tokenizer.json`).
    pub fn from_folder(dir: &Path, device: &Device) -> Result<Self> {
        let processor = ProcessorConfig::from_file(&dir.join(PROCESSOR_FILE))?;
        let tokenizer = Tokenizer::from_file(dir.join(TOKENIZER_FILE)).map_err(|e| {
            Error::Tokenizer(format!(
                "cannot load {}: {e}",
                dir.join(TOKENIZER_FILE).display()
            ))
        })?;
        Ok(Self::new(
            Blip::from_folder(dir, device)?,
            processor,
            tokenizer,
        ))
    }

    /// A captioner from parts already loaded (e.g. random weights for a benchmark).
    pub fn new(blip: Blip, processor: ProcessorConfig, tokenizer: Tokenizer) -> Self {
        Captioner {
            blip,
            processor,
            tokenizer,
        }
    }

    /// The caption of an image file's bytes (PNG or JPEG, told by content).
    pub fn caption(&self, image: &[u8]) -> Result<Caption> {
        let rgb = decode_rgb(image)?;
        let pixels = self.processor.pixel_values(&rgb)?;
        let pixel_values = Tensor::from_vec(
            pixels.data,
            (1, 3, pixels.height, pixels.width),
            self.blip.device(),
        )?;
        let ids = self.blip.generate(&pixel_values)?;
        Ok(Caption {
            text: decode_caption(&self.tokenizer, &ids)?,
            ids,
        })
    }
}

/// `processor.decode(ids, skip_special_tokens=True)`: the tokenizer's decode, then transformers'
/// `clean_up_tokenization` (which the tokenizers crate does not run).
pub fn decode_caption(tokenizer: &Tokenizer, ids: &[u32]) -> Result<String> {
    let text = tokenizer
        .decode(ids, true)
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    Ok(clean_up_tokenization(&text))
}

/// transformers' `PreTrainedTokenizerBase.clean_up_tokenization`, replacements in its order.
fn clean_up_tokenization(text: &str) -> String {
    const REPLACEMENTS: [(&str, &str); 10] = [
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ];
    REPLACEMENTS
        .iter()
        .fold(text.to_string(), |text, (from, to)| text.replace(from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_up_runs_in_transformers_order() {
        assert_eq!(clean_up_tokenization("at ' s dog ."), "at's dog.");
        assert_eq!(clean_up_tokenization("is n't it , ok ?"), "isn't it, ok?");
    }
}
