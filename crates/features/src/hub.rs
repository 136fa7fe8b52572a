//! The official files on the Hugging Face Hub, downloaded once into the standard Hugging Face
//! cache (`$HF_HOME/hub`, default `~/.cache/huggingface/hub`) and reused from there.

use crate::{Error, Result};
use std::path::PathBuf;

/// The CLaMP 3 weights repository.
pub const CLAMP3_REPO: &str = "sander-wood/clamp3";
/// The text model whose tokenizer CLaMP 3 uses.
pub const TOKENIZER_REPO: &str = "FacebookAI/xlm-roberta-base";

/// The audio feature extractor CLaMP 3 was trained on (licensed CC-BY-NC-4.0).
pub const MERT_REPO: &str = "m-a-p/MERT-v1-95M";

/// The CLaMP 2 repository: the CLaMP 2 checkpoint and M3's.
pub const CLAMP2_REPO: &str = "sander-wood/clamp2";
/// The official CLaMP 2 checkpoint in [`CLAMP2_REPO`].
pub const CLAMP2_WEIGHTS: &str = "weights_clamp2_h_size_768_lr_5e-05_batch_128_scale_1_t_length_128_t_model_FacebookAI_xlm-roberta-base_t_dropout_True_m3_True.pth";
/// The official M3 checkpoint in [`CLAMP2_REPO`].
pub const M3_WEIGHTS: &str = "weights_m3_p_size_64_p_length_512_t_layers_3_p_layers_12_h_size_768_lr_0.0001_batch_16_mask_0.45.pth";

/// CLaMP-S/512 (`config.json` + `pytorch_model.bin`).
pub const CLAMP1_S512_REPO: &str = "sander-wood/clamp-small-512";
/// CLaMP-S/1024 (`config.json` + `pytorch_model.bin`).
pub const CLAMP1_S1024_REPO: &str = "sander-wood/clamp-small-1024";
/// The text model whose tokenizer (and architecture) CLaMP 1 uses.
pub const DISTILROBERTA_REPO: &str = "distilroberta-base";

/// The image captioner whose captions stand for image queries (the reference's
/// `inference/image_captioning.py`).
pub const BLIP_REPO: &str = "Salesforce/blip-image-captioning-base";

/// The files of the BLIP folder: config, weights, image processor, tokenizer.
pub const BLIP_FILES: [&str; 4] = [
    "config.json",
    "model.safetensors",
    "preprocessor_config.json",
    "tokenizer.json",
];

/// Which published CLaMP 3 checkpoint to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Variant {
    /// Trained on all modalities (sheet music, MIDI, audio): the reference's default.
    #[default]
    Saas,
    /// The variant tuned for symbolic music (`_c2_`).
    C2,
}

impl Variant {
    /// The checkpoint's file name in [`CLAMP3_REPO`].
    pub fn file_name(self) -> &'static str {
        match self {
            Variant::Saas => "weights_clamp3_saas_h_size_768_t_model_FacebookAI_xlm-roberta-base_t_length_128_a_size_768_a_layers_12_a_length_128_s_size_768_s_layers_12_p_size_64_p_length_512.pth",
            Variant::C2 => "weights_clamp3_c2_h_size_768_t_model_FacebookAI_xlm-roberta-base_t_length_128_a_size_768_a_layers_12_a_length_128_s_size_768_s_layers_12_p_size_64_p_length_512.pth",
        }
    }
}

/// Where a Hub file comes from, for messages.
fn hub_error(repo: &str, file: &str, err: impl std::fmt::Display) -> Error {
    Error::Hub(format!(
        "cannot fetch {file} from https://huggingface.co/{repo}: {err}\n\
         If this machine is offline, download the file elsewhere and pass it explicitly \
         (--weights / --tokenizer / --mert / --blip, or the CLAMP3_* environment variables), or copy a \
         Hugging Face cache that holds it into $HF_HOME."
    ))
}

/// Returns the cached path of `file` in model repository `repo`, downloading it (with a progress
/// bar when `progress` is set) when it is not cached yet.
pub fn fetch(repo: &str, file: &str, progress: bool) -> Result<PathBuf> {
    if let Some(path) = cached(repo, file) {
        return Ok(path);
    }
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(progress)
        .build()
        .map_err(|e| hub_error(repo, file, e))?;
    api.model(repo.to_string())
        .get(file)
        .map_err(|e| hub_error(repo, file, e))
}

/// The cached path of `file` in model repository `repo` when it was downloaded before; never
/// touches the network.
pub fn cached(repo: &str, file: &str) -> Option<PathBuf> {
    hf_hub::Cache::from_env().model(repo.to_string()).get(file)
}

/// The official CLaMP 3 checkpoint of a variant.
pub fn clamp3_weights(variant: Variant, progress: bool) -> Result<PathBuf> {
    fetch(CLAMP3_REPO, variant.file_name(), progress)
}

/// XLM-R's `tokenizer.json`.
pub fn xlm_roberta_tokenizer(progress: bool) -> Result<PathBuf> {
    fetch(TOKENIZER_REPO, "tokenizer.json", progress)
}

/// The official MERT model folder (`config.json` + `pytorch_model.bin`) in the Hub cache.
pub fn mert_folder(progress: bool) -> Result<PathBuf> {
    let config = fetch(MERT_REPO, "config.json", progress)?;
    fetch(MERT_REPO, "pytorch_model.bin", progress)?;
    config
        .parent()
        .map(std::path::Path::to_path_buf)
        .ok_or_else(|| Error::Hub("the Hub cache returned a path without a folder".into()))
}

/// The official BLIP captioning folder ([`BLIP_FILES`]) in the Hub cache.
pub fn blip_folder(progress: bool) -> Result<PathBuf> {
    let mut folder = None;
    for file in BLIP_FILES {
        folder = fetch(BLIP_REPO, file, progress)?
            .parent()
            .map(std::path::Path::to_path_buf);
    }
    folder.ok_or_else(|| Error::Hub("the Hub cache returned a path without a folder".into()))
}
