//! CLaMP 2 (XLM-R text, M3 sheet music and MIDI) as `code/extract_clamp2.py` of
//! sanderwood/clamp2 prepares them, and M3's per-patch features as `code/extract_m3.py` does.
//!
//! Both read the same interleaved ABC and MTF as CLaMP 3; only the patchilizer's surroundings
//! differ ([`PatchRules`]): CLaMP 2 keeps `L:1/8` lines, and both fail where the reference's
//! `split_bars` raises.

use crate::families::clamp3::{load_tokenizer, shared};
use crate::family::Family;
use crate::progress::Progress;
use crate::spec::{content_identity, source_identity, ModelId};
use crate::spec::{ModelSpec, PIPELINE_VERSION};
use crate::{Error, Result};
use candle_core::Device;
use clamp3_features::hub;
use clamp3_features::input::{symbolic_input_with, symbolic_text};
use clamp3_features::TextTokenizer;
use clamp3_features::{text, Encoder, FileKind, ModelInput};
use clamp3_formats::patch::PatchRules;
use clamp3_models::{Clamp2Config, Clamp2Model, M3Model, Modality};
use std::path::Path;
use std::sync::OnceLock;

/// What CLaMP 2 accepts, for messages.
const CLAMP2_ACCEPTS: &str =
    "text (.txt), sheet music (.abc, .xml, .musicxml, .mxl) and MIDI (.mid, .midi, .mtf)";
/// What M3 accepts, for messages.
const M3_ACCEPTS: &str = "sheet music (.abc, .xml, .musicxml, .mxl) and MIDI (.mid, .midi, .mtf), \
                          for per-patch features";

/// The config of a spec (the official sizes by default) and its identity.
fn read_config(spec: &ModelSpec) -> Result<(Clamp2Config, String)> {
    Ok(match &spec.config {
        Some(path) => (Clamp2Config::from_file(path)?, content_identity(path)?),
        None => (Clamp2Config::default(), "default".to_string()),
    })
}

/// The modality CLaMP 2 and M3 read a symbolic kind as.
fn symbolic(kind: FileKind) -> Option<Modality> {
    matches!(
        kind,
        FileKind::Abc | FileKind::Mtf | FileKind::Midi | FileKind::MusicXml
    )
    .then_some(Modality::Symbolic)
}

/// The CLaMP 2 checkpoint with its tokenizer, each loaded on first use.
pub struct Clamp2 {
    spec: ModelSpec,
    config: Clamp2Config,
    config_identity: String,
    device: Device,
    model: OnceLock<Result<Clamp2Model>>,
    tokenizer: OnceLock<Result<TextTokenizer>>,
}

impl Clamp2 {
    /// The family for a spec; reads only the config.
    pub fn new(spec: &ModelSpec) -> Result<Self> {
        let (config, config_identity) = read_config(spec)?;
        Ok(Clamp2 {
            spec: spec.clone(),
            config,
            config_identity,
            device: spec.device.device()?,
            model: OnceLock::new(),
            tokenizer: OnceLock::new(),
        })
    }

    /// The family over a model already in memory (e.g. random weights for a benchmark).
    pub fn with_model(spec: &ModelSpec, model: Clamp2Model) -> Result<Self> {
        let family = Self::new(spec)?;
        if family.model.set(Ok(model)).is_err() {
            return Err(Error::Spec("the model was loaded already".into()));
        }
        Ok(family)
    }

    /// The CLaMP 2 model, loaded (or downloaded and loaded) on first use.
    pub fn model(&self) -> Result<&Clamp2Model> {
        shared(&self.model, "the CLaMP 2 weights", || {
            let weights = match &self.spec.weights {
                Some(path) => path.clone(),
                None => hub::fetch(hub::CLAMP2_REPO, hub::CLAMP2_WEIGHTS, false)?,
            };
            Ok(Clamp2Model::from_file(
                &weights,
                &self.config,
                &self.device,
            )?)
        })
    }

    /// The XLM-R tokenizer, loaded (or downloaded and loaded) on first use.
    pub fn tokenizer(&self) -> Result<&TextTokenizer> {
        shared(&self.tokenizer, "the XLM-R tokenizer", || {
            load_tokenizer(self.spec.tokenizer.as_deref())
        })
    }
}

impl Family for Clamp2 {
    fn name(&self) -> &str {
        ModelId::Clamp2.name()
    }

    fn modality_of(&self, kind: FileKind) -> Option<Modality> {
        match kind {
            FileKind::Text => Some(Modality::Text),
            _ => symbolic(kind),
        }
    }

    fn accepts(&self) -> &str {
        CLAMP2_ACCEPTS
    }

    fn identity(&self, modality: Modality) -> Result<String> {
        let weights = source_identity(
            self.spec.weights.as_deref(),
            hub::CLAMP2_REPO,
            hub::CLAMP2_WEIGHTS,
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
                hub::TOKENIZER_REPO,
                "tokenizer.json",
            )?;
            identity += &format!("|tokenizer={tokenizer}");
        }
        Ok(identity)
    }

    fn vector_width(&self) -> usize {
        self.config.hidden_size
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
            return Ok(ModelInput::TokenIds(text::token_ids(
                self.tokenizer()?,
                text,
            )?));
        }
        let text = symbolic_text(kind, path, &bytes)?;
        Ok(symbolic_input_with(&text, PatchRules::CLAMP2)?)
    }

    fn encoder(&self) -> Result<&dyn Encoder> {
        Ok(self.model()?)
    }
}

/// M3's patch encoder: per-patch features of sheet music and MIDI (local pooling only).
pub struct M3 {
    spec: ModelSpec,
    config: Clamp2Config,
    config_identity: String,
    device: Device,
    model: OnceLock<Result<M3Model>>,
}

impl M3 {
    /// The family for a spec; reads only the config (a CLaMP 2 `config.json`: its music part).
    pub fn new(spec: &ModelSpec) -> Result<Self> {
        let (config, config_identity) = read_config(spec)?;
        Ok(M3 {
            spec: spec.clone(),
            config,
            config_identity,
            device: spec.device.device()?,
            model: OnceLock::new(),
        })
    }

    /// The family over a model already in memory (e.g. random weights for a benchmark).
    pub fn with_model(spec: &ModelSpec, model: M3Model) -> Result<Self> {
        let family = Self::new(spec)?;
        if family.model.set(Ok(model)).is_err() {
            return Err(Error::Spec("the model was loaded already".into()));
        }
        Ok(family)
    }

    /// The M3 encoder, loaded (or downloaded and loaded) on first use.
    pub fn model(&self) -> Result<&M3Model> {
        shared(&self.model, "the M3 weights", || {
            let weights = match &self.spec.weights {
                Some(path) => path.clone(),
                None => hub::fetch(hub::CLAMP2_REPO, hub::M3_WEIGHTS, false)?,
            };
            Ok(M3Model::from_file(&weights, &self.config, &self.device)?)
        })
    }
}

impl Family for M3 {
    fn name(&self) -> &str {
        ModelId::M3.name()
    }

    fn modality_of(&self, kind: FileKind) -> Option<Modality> {
        symbolic(kind)
    }

    fn accepts(&self) -> &str {
        M3_ACCEPTS
    }

    fn identity(&self, _modality: Modality) -> Result<String> {
        let weights = source_identity(
            self.spec.weights.as_deref(),
            hub::CLAMP2_REPO,
            hub::M3_WEIGHTS,
        )?;
        Ok(format!(
            "pipeline={PIPELINE_VERSION}|model={}|weights={weights}|config={}|precision={}",
            self.name(),
            self.config_identity,
            self.spec.precision.name(),
        ))
    }

    /// M3 has no shared space; its rows are this wide.
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
        let text = symbolic_text(kind, path, &bytes)?;
        // extract_m3.py removes `L:1/8` lines except from MTF.
        let rules = PatchRules {
            remove_unit_length: !text.starts_with("ticks_per_beat"),
            ..PatchRules::M3
        };
        Ok(symbolic_input_with(&text, rules)?)
    }

    fn encoder(&self) -> Result<&dyn Encoder> {
        Ok(self.model()?)
    }
}
