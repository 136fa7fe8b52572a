//! CLaMP 1 (CLaMP-S/512 and S/1024) as `clamp/clamp.py` of microsoft/muzic prepares its inputs:
//! MusicXML through `xml2abc -m 2 -c 6 -x`, `abc_filter` and the bar patchilizer (cut to the
//! model's `max_length` patches); a text file as one query (`unidecode`, at most 128 tokens).
//! Standard ABC files are read as xml2abc output would be. MIDI and audio are not taken.

use crate::families::clamp3::shared;
use crate::family::Family;
use crate::progress::Progress;
use crate::spec::{content_identity, source_identity, ModelId};
use crate::spec::{ModelSpec, PIPELINE_VERSION};
use crate::{Error, Result};
use candle_core::Device;
use clamp3_features::input::musicxml_text;
use clamp3_features::{hub, text, Encoder, FileKind, ModelInput};
use clamp3_formats::bar_patch::{bar_patches, music_text};
use clamp3_formats::{to_ascii, xml2abc};
use clamp3_models::clamp1::TEXT_LENGTH;
use clamp3_models::{Clamp1Config, Clamp1Model, Modality};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tokenizers::{Tokenizer, TruncationParams};

/// What CLaMP 1 accepts, for messages.
const ACCEPTS: &str = "text (.txt) and sheet music (.xml, .musicxml, .mxl, .abc)";

/// The Hub repository of a CLaMP 1 model.
pub fn hub_repo(model: ModelId) -> &'static str {
    match model {
        ModelId::Clamp1S1024 => hub::CLAMP1_S1024_REPO,
        _ => hub::CLAMP1_S512_REPO,
    }
}

/// The official `max_length` of a CLaMP 1 model.
fn official_max_length(model: ModelId) -> usize {
    match model {
        ModelId::Clamp1S1024 => 1024,
        _ => 512,
    }
}

/// The text encoder's `config.json`: beside the tokenizer when the spec names one (the layout of
/// the `distilroberta-base` folder), else none (the official sizes).
fn text_config_path(spec: &ModelSpec) -> Option<PathBuf> {
    spec.tokenizer
        .as_deref()
        .and_then(Path::parent)
        .map(|dir| dir.join("config.json"))
        .filter(|path| path.is_file())
}

/// Text keys as `clamp.py -key_modal text` reads them from a file: `unidecode` of the whole text,
/// one key per line, each stripped, blank lines dropped (duplicates kept).
pub fn text_keys(text: &str) -> Vec<String> {
    to_ascii(&text::universal_newlines(text))
        .split('\n')
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(String::from)
        .collect()
}

/// A CLaMP 1 checkpoint with its tokenizer, each loaded on first use.
pub struct Clamp1 {
    model_id: ModelId,
    spec: ModelSpec,
    config: Clamp1Config,
    config_identity: String,
    device: Device,
    model: OnceLock<Result<Clamp1Model>>,
    tokenizer: OnceLock<Result<Tokenizer>>,
}

impl Clamp1 {
    /// The family for a spec whose model is a CLaMP 1 checkpoint; reads only the configs.
    pub fn new(spec: &ModelSpec) -> Result<Self> {
        let text_config = text_config_path(spec);
        let (config, config_identity) = match &spec.config {
            Some(path) => {
                let config = Clamp1Config::from_files(path, text_config.as_deref())?;
                let text = match &text_config {
                    Some(p) => content_identity(p)?,
                    None => "default".to_string(),
                };
                (config, format!("{};text={text}", content_identity(path)?))
            }
            None => (
                Clamp1Config::official(official_max_length(spec.model)),
                "default".to_string(),
            ),
        };
        Ok(Clamp1 {
            model_id: spec.model,
            spec: spec.clone(),
            config,
            config_identity,
            device: spec.device.device()?,
            model: OnceLock::new(),
            tokenizer: OnceLock::new(),
        })
    }

    /// The family over a model already in memory (e.g. random weights for a benchmark).
    pub fn with_model(spec: &ModelSpec, model: Clamp1Model) -> Result<Self> {
        let family = Self::new(spec)?;
        if family.model.set(Ok(model)).is_err() {
            return Err(Error::Spec("the model was loaded already".into()));
        }
        Ok(family)
    }

    /// The configuration (sizes and `max_length`).
    pub fn config(&self) -> &Clamp1Config {
        &self.config
    }

    /// The CLaMP 1 model, loaded (or downloaded and loaded) on first use.
    pub fn model(&self) -> Result<&Clamp1Model> {
        shared(&self.model, "the CLaMP 1 weights", || {
            let weights = match &self.spec.weights {
                Some(path) => path.clone(),
                None => hub::fetch(hub_repo(self.model_id), "pytorch_model.bin", false)?,
            };
            Ok(Clamp1Model::from_file(
                &weights,
                &self.config,
                &self.device,
            )?)
        })
    }

    /// The DistilRoBERTa tokenizer, truncating to 128 tokens, loaded on first use.
    pub fn tokenizer(&self) -> Result<&Tokenizer> {
        shared(&self.tokenizer, "the DistilRoBERTa tokenizer", || {
            let path = match &self.spec.tokenizer {
                Some(path) => path.clone(),
                None => hub::fetch(hub::DISTILROBERTA_REPO, "tokenizer.json", false)?,
            };
            let mut tokenizer = Tokenizer::from_file(&path).map_err(|e| {
                clamp3_features::Error::Tokenizer(format!("cannot load {}: {e}", path.display()))
            })?;
            tokenizer.with_padding(None);
            tokenizer
                .with_truncation(Some(TruncationParams {
                    max_length: TEXT_LENGTH,
                    ..TruncationParams::default()
                }))
                .map_err(|e| clamp3_features::Error::Tokenizer(e.to_string()))?;
            Ok(tokenizer)
        })
    }

    /// The token ids of one text (a whole query file, or one key line), as `clamp.py` encodes
    /// it: `unidecode`, then `<s> … </s>` cut to 128 tokens.
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>> {
        let ascii = to_ascii(&text::universal_newlines(text));
        let encoding = self
            .tokenizer()?
            .encode(ascii.as_str(), true)
            .map_err(|e| clamp3_features::Error::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text the bar patchilizer reads for a score (`load_music`, or a standard ABC file
    /// read as xml2abc output).
    pub fn music_text(&self, kind: FileKind, path: &Path, bytes: &[u8]) -> Result<String> {
        let abc = match kind {
            FileKind::MusicXml => {
                xml2abc::convert_with(&musicxml_text(path, bytes)?, xml2abc::Options::CLAMP1)
                    .map_err(clamp3_features::Error::from)?
            }
            _ => std::str::from_utf8(bytes)
                .map_err(|e| clamp3_features::Error::Utf8(e.valid_up_to()))?
                .to_string(),
        };
        Ok(music_text(&abc))
    }
}

impl Family for Clamp1 {
    fn name(&self) -> &str {
        self.model_id.name()
    }

    fn modality_of(&self, kind: FileKind) -> Option<Modality> {
        match kind {
            FileKind::Text => Some(Modality::Text),
            FileKind::MusicXml | FileKind::Abc => Some(Modality::Symbolic),
            _ => None,
        }
    }

    fn accepts(&self) -> &str {
        ACCEPTS
    }

    fn identity(&self, modality: Modality) -> Result<String> {
        let weights = source_identity(
            self.spec.weights.as_deref(),
            hub_repo(self.model_id),
            "pytorch_model.bin",
        )?;
        let mut identity = format!(
            "pipeline={PIPELINE_VERSION}|model={}|weights={weights}|config={}|precision={}",
            self.name(),
            self.config_identity,
            self.spec.precision.name(),
        );
        if modality == Modality::Text {
            let tokenizer = source_identity(
                self.spec.tokenizer.as_deref(),
                hub::DISTILROBERTA_REPO,
                "tokenizer.json",
            )?;
            identity += &format!("|tokenizer={tokenizer}");
        }
        Ok(identity)
    }

    fn vector_width(&self) -> usize {
        self.config.music_model.hidden_size
    }

    fn feature_width(&self) -> Option<usize> {
        None
    }

    fn prepare(
        &self,
        kind: FileKind,
        path: &Path,
        bytes: Vec<u8>,
        _progress: &dyn Progress,
    ) -> Result<ModelInput> {
        if kind == FileKind::Text {
            let text = std::str::from_utf8(&bytes)
                .map_err(|e| clamp3_features::Error::Utf8(e.valid_up_to()))?;
            return Ok(ModelInput::TokenIds(self.token_ids(text)?));
        }
        let music = self.music_text(kind, path, &bytes)?;
        // clamp.py skips a key whose music is blank ("not successfully loaded").
        if music.trim().is_empty() {
            return Err(clamp3_features::Error::Empty("the score has no music for CLaMP 1").into());
        }
        let patches =
            bar_patches(&music, self.config.max_length).map_err(clamp3_features::Error::from)?;
        Ok(ModelInput::Patches(patches))
    }

    fn encoder(&self) -> Result<&dyn Encoder> {
        Ok(self.model()?)
    }
}
