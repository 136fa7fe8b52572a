//! CLaMP 3 (SAAS and C2 checkpoints): XLM-R text, M3 sheet music and MIDI, MERT audio, as the
//! reference's `extract_clamp3.py` prepares them.

use crate::family::Family;
use crate::progress::Progress;
use crate::spec::{
    content_identity, file_identity, folder_identity, hub_identity, source_identity, ModelId,
};
use crate::spec::{ModelSpec, Precision, PIPELINE_VERSION};
use crate::weight_cache;
use crate::{Error, Result};
use candle_core::{DType, Device};
use clamp3_features::hub::{self, Variant};
use clamp3_features::TextTokenizer;
use clamp3_features::{input, text, Caption, Captioner, Encoder, FileKind, ModelInput};
use clamp3_models::mert::Mert;
use clamp3_models::{Clamp3Model, Config, Modality};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// What CLaMP 3 accepts, for messages.
const ACCEPTS: &str = "text (.txt), sheet music (.abc, .xml, .musicxml, .mxl), MIDI (.mid, .midi, \
                       .mtf), audio (.wav, .mp3, .flac, .ogg, or MERT features as .npy) and \
                       images (.png, .jpg, .jpeg, through their BLIP caption)";

/// A CLaMP 3 checkpoint with its tokenizer and MERT, each loaded on first use.
pub struct Clamp3 {
    model_id: ModelId,
    spec: ModelSpec,
    config: Config,
    config_identity: String,
    device: Device,
    model: OnceLock<Result<Clamp3Model>>,
    tokenizer: OnceLock<Result<TextTokenizer>>,
    mert: OnceLock<Result<Mert>>,
    captioner: OnceLock<Result<Captioner>>,
}

impl Clamp3 {
    /// The family for a spec whose model is a CLaMP 3 checkpoint; reads only the config.
    pub fn new(spec: &ModelSpec) -> Result<Self> {
        let (config, config_identity) = match &spec.config {
            Some(path) => (Config::from_file(path)?, content_identity(path)?),
            None => (Config::default(), "default".to_string()),
        };
        Ok(Clamp3 {
            model_id: spec.model,
            spec: spec.clone(),
            config,
            config_identity,
            device: spec.device.device()?,
            model: OnceLock::new(),
            tokenizer: OnceLock::new(),
            mert: OnceLock::new(),
            captioner: OnceLock::new(),
        })
    }

    /// The family over a model already in memory (built elsewhere, e.g. with random weights
    /// for a benchmark); the spec still names its tokenizer and MERT, and its precision applies.
    pub fn with_model(spec: &ModelSpec, mut model: Clamp3Model) -> Result<Self> {
        let family = Self::new(spec)?;
        if spec.precision == Precision::Bf16 {
            model
                .store_weights_as(DType::BF16)
                .map_err(clamp3_models::Error::from)?;
        }
        if family.model.set(Ok(model)).is_err() {
            return Err(Error::Spec("the model was loaded already".into()));
        }
        Ok(family)
    }

    fn variant(&self) -> Variant {
        match self.model_id {
            ModelId::Clamp3C2 => Variant::C2,
            _ => Variant::Saas,
        }
    }

    fn weights_identity(&self) -> Result<String> {
        match &self.spec.weights {
            Some(path) => file_identity(path),
            None => Ok(hub_identity(hub::CLAMP3_REPO, self.variant().file_name())),
        }
    }

    /// The CLaMP 3 model, loaded (or downloaded and loaded) on first use.
    pub fn model(&self) -> Result<&Clamp3Model> {
        shared(&self.model, "the CLaMP 3 weights", || {
            let weights = match &self.spec.weights {
                Some(path) => path.clone(),
                None => hub::clamp3_weights(self.variant(), false)?,
            };
            let weights = weight_cache::loadable(&weights, self.spec.weight_cache.as_deref())?;
            let mut model = Clamp3Model::from_file(&weights, &self.config, &self.device)?;
            if self.spec.precision == Precision::Bf16 {
                model
                    .store_weights_as(DType::BF16)
                    .map_err(clamp3_models::Error::from)?;
            }
            Ok(model)
        })
    }

    /// The XLM-R tokenizer, loaded (or downloaded and loaded) on first use.
    pub fn tokenizer(&self) -> Result<&TextTokenizer> {
        shared(&self.tokenizer, "the XLM-R tokenizer", || {
            load_tokenizer(self.spec.tokenizer.as_deref())
        })
    }

    /// MERT, loaded (or downloaded and loaded) on first use, on the model's device.
    pub fn mert(&self, progress: &dyn Progress) -> Result<&Mert> {
        shared(&self.mert, "MERT", || {
            load_mert(self.spec.mert.as_deref(), &self.device, progress)
        })
    }
}

impl Clamp3 {
    /// BLIP, loaded (or downloaded and loaded) on first use, on the model's device.
    pub fn captioner(&self) -> Result<&Captioner> {
        shared(&self.captioner, "the BLIP captioner", || {
            load_captioner(self.spec.blip.as_deref(), &self.device)
        })
    }
}

/// The value in `cell`, initialised by `load` on first use; a failure is kept and given to every
/// later caller too (loading is not retried per file).
pub(crate) fn shared<'a, T>(
    cell: &'a OnceLock<Result<T>>,
    what: &'static str,
    load: impl FnOnce() -> Result<T>,
) -> Result<&'a T> {
    cell.get_or_init(|| {
        load().map_err(|e| Error::Load {
            what,
            error: std::sync::Arc::new(e),
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Loads a `tokenizer.json`, or XLM-R's from the Hub cache.
pub fn load_tokenizer(path: Option<&Path>) -> Result<TextTokenizer> {
    let path = match path {
        Some(path) => path.to_path_buf(),
        None => hub::xlm_roberta_tokenizer(false)?,
    };
    Ok(text::load_tokenizer(&path)?)
}

/// Loads BLIP from a captioning folder, or the official one from the Hub cache.
pub fn load_captioner(dir: Option<&Path>, device: &Device) -> Result<Captioner> {
    let dir: PathBuf = match dir {
        Some(dir) => dir.to_path_buf(),
        None => hub::blip_folder(false)?,
    };
    Ok(Captioner::from_folder(&dir, device)?)
}

/// Loads MERT from a folder, or the official one from the Hub cache, noting once that its
/// weights are non-commercial.
pub fn load_mert(dir: Option<&Path>, device: &Device, progress: &dyn Progress) -> Result<Mert> {
    let dir: PathBuf = match dir {
        Some(dir) => dir.to_path_buf(),
        None => {
            let dir = hub::mert_folder(false)?;
            progress.notice(&format!(
                "audio features use {}, whose weights are licensed CC-BY-NC-4.0 \
                 (non-commercial use only); CLaMP 3's own weights are MIT",
                hub::MERT_REPO
            ));
            dir
        }
    };
    Ok(Mert::from_folder(&dir, device)?)
}

impl Family for Clamp3 {
    fn name(&self) -> &str {
        self.model_id.name()
    }

    fn modality_of(&self, kind: FileKind) -> Option<Modality> {
        Some(match kind {
            FileKind::Text => Modality::Text,
            FileKind::Abc | FileKind::Mtf | FileKind::Midi | FileKind::MusicXml => {
                Modality::Symbolic
            }
            FileKind::MertFeatures | FileKind::Audio => Modality::Audio,
            // Captioned, then embedded as the caption's text.
            FileKind::Image => Modality::Text,
        })
    }

    fn accepts(&self) -> &str {
        ACCEPTS
    }

    fn identity(&self, modality: Modality) -> Result<String> {
        let mut identity = format!(
            "pipeline={PIPELINE_VERSION}|model={}|weights={}|config={}|precision={}",
            self.name(),
            self.weights_identity()?,
            self.config_identity,
            self.spec.precision.name(),
        );
        match modality {
            Modality::Text => {
                let tokenizer = source_identity(
                    self.spec.tokenizer.as_deref(),
                    hub::TOKENIZER_REPO,
                    "tokenizer.json",
                )?;
                identity += &format!("|tokenizer={tokenizer}");
            }
            Modality::Symbolic => {}
            Modality::Audio => {
                let mert = match &self.spec.mert {
                    Some(dir) => folder_identity(dir)?,
                    None => format!(
                        "{};{}",
                        hub_identity(hub::MERT_REPO, "config.json"),
                        hub_identity(hub::MERT_REPO, "pytorch_model.bin")
                    ),
                };
                identity += &format!("|mert={mert}");
            }
        }
        Ok(identity)
    }

    fn vector_width(&self) -> usize {
        self.config.hidden_size
    }

    fn feature_width(&self) -> Option<usize> {
        Some(self.config.audio_model.hidden_size)
    }

    fn prepare(
        &self,
        kind: FileKind,
        path: &Path,
        bytes: Vec<u8>,
        progress: &dyn Progress,
    ) -> Result<ModelInput> {
        let tokenizer = match kind {
            FileKind::Text => Some(self.tokenizer()?),
            _ => None,
        };
        let mert = match kind {
            FileKind::Audio => Some(self.mert(progress)?),
            _ => None,
        };
        Ok(input::prepare(kind, path, bytes, tokenizer, mert)?)
    }

    fn encoder(&self) -> Result<&dyn Encoder> {
        Ok(self.model()?)
    }

    fn caption_identity(&self) -> Result<String> {
        Ok(match &self.spec.blip {
            Some(dir) => folder_identity(dir)?,
            None => hub::BLIP_FILES
                .iter()
                .map(|file| hub_identity(hub::BLIP_REPO, file))
                .collect::<Vec<_>>()
                .join(";"),
        })
    }

    fn caption(&self, image: &[u8], _progress: &dyn Progress) -> Result<Caption> {
        Ok(self.captioner()?.caption(image)?)
    }
}
