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
use crate::weights::MappedRows;
use crate::xlm_roberta::XlmRobertaModel;
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::VarBuilder;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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

/// XLM-R's token table in the checkpoint: the one tensor read row by row.
const TOKEN_TABLE: &str = "text_model.embeddings.word_embeddings.weight";

/// One modality's encoder and its projection into the shared space.
struct Tower<E> {
    encoder: E,
    proj: Linear,
}

/// How one tower's dense weights are re-stored for reduced precision.
trait StoreAs {
    fn store_weights_as(&mut self, dtype: DType) -> Result<()>;
}

impl StoreAs for XlmRobertaModel {
    fn store_weights_as(&mut self, dtype: DType) -> Result<()> {
        XlmRobertaModel::store_weights_as(self, dtype)
    }
}

impl StoreAs for M3PatchEncoder {
    fn store_weights_as(&mut self, dtype: DType) -> Result<()> {
        M3PatchEncoder::store_weights_as(self, dtype)
    }
}

impl StoreAs for BertModel {
    fn store_weights_as(&mut self, dtype: DType) -> Result<()> {
        BertModel::store_weights_as(self, dtype)
    }
}

impl<E: StoreAs> Tower<E> {
    fn store_weights_as(&mut self, dtype: DType) -> Result<()> {
        self.encoder.store_weights_as(dtype)?;
        self.proj = self.proj.with_weight_dtype(dtype)?;
        Ok(())
    }
}

/// A tower built on first use; a failure is kept (as its message: candle's errors are not
/// `Clone`) and given to every later caller.
type LazyTower<E> = OnceLock<std::result::Result<Tower<E>, String>>;

/// Where towers not yet built come from: the weight file, opened afresh for each tower so that
/// what one tower read is unmapped (or freed) once it is built.
struct WeightSource {
    path: PathBuf,
    dtype: Option<DType>,
}

/// CLaMP 3 (`CLaMP3Model`): field names are the checkpoint's key prefixes. A model opened from
/// a file builds each encoder when its modality is first asked for: a text query never reads the
/// music encoders, and XLM-R's token table is read row by row from a mapped safetensors file.
pub struct Clamp3Model {
    text_model: LazyTower<XlmRobertaModel>,
    symbolic_model: LazyTower<M3PatchEncoder>,
    audio_model: LazyTower<BertModel>,
    source: Option<WeightSource>,
    config: Config,
    device: Device,
}

fn text_tower(
    vb: &VarBuilder,
    cfg: &Config,
    rows: Option<MappedRows>,
) -> Result<Tower<XlmRobertaModel>> {
    Ok(Tower {
        encoder: XlmRobertaModel::load_with_token_rows(vb.pp("text_model"), &cfg.text_model, rows)?,
        proj: linear(
            cfg.text_model.hidden_size,
            cfg.hidden_size,
            vb.pp("text_proj"),
        )?,
    })
}

fn symbolic_tower(vb: &VarBuilder, cfg: &Config) -> Result<Tower<M3PatchEncoder>> {
    Ok(Tower {
        encoder: M3PatchEncoder::load(
            vb.pp("symbolic_model"),
            &cfg.symbolic_model,
            cfg.patch_size,
        )?,
        proj: linear(
            cfg.symbolic_model.hidden_size,
            cfg.hidden_size,
            vb.pp("symbolic_proj"),
        )?,
    })
}

fn audio_tower(vb: &VarBuilder, cfg: &Config) -> Result<Tower<BertModel>> {
    Ok(Tower {
        encoder: BertModel::load(vb.pp("audio_model"), &cfg.audio_model)?,
        proj: linear(
            cfg.audio_model.hidden_size,
            cfg.hidden_size,
            vb.pp("audio_proj"),
        )?,
    })
}

impl Clamp3Model {
    /// Builds the whole model from a `VarBuilder` at the checkpoint's root, every tensor read now.
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        Ok(Self {
            text_model: OnceLock::from(Ok(text_tower(&vb, cfg, None)?)),
            symbolic_model: OnceLock::from(Ok(symbolic_tower(&vb, cfg)?)),
            audio_model: OnceLock::from(Ok(audio_tower(&vb, cfg)?)),
            source: None,
            config: cfg.clone(),
            device: vb.device().clone(),
        })
    }

    /// Stores the dense weights of the three encoders and projections as `dtype`, for reduced
    /// precision (bf16 halves what a pass reads; activations and sums stay f32). Embeddings,
    /// LayerNorms and biases stay as loaded. Encoders not built yet get it when they are.
    pub fn store_weights_as(&mut self, dtype: DType) -> Result<()> {
        if let Some(Ok(tower)) = self.text_model.get_mut() {
            tower.store_weights_as(dtype)?;
        }
        if let Some(Ok(tower)) = self.symbolic_model.get_mut() {
            tower.store_weights_as(dtype)?;
        }
        if let Some(Ok(tower)) = self.audio_model.get_mut() {
            tower.store_weights_as(dtype)?;
        }
        if let Some(source) = &mut self.source {
            source.dtype = Some(dtype);
        }
        Ok(())
    }

    /// Opens a weight file (official `.pth` or `.safetensors`) for `device`. Only the file's
    /// index is read here; each encoder is read on its first use, and a tensor missing or
    /// misshapen is reported then, naming the file and the tensor.
    pub fn from_file(path: &Path, cfg: &Config, device: &Device) -> crate::Result<Self> {
        cfg.validate().map_err(|message| crate::Error::Config {
            path: path.to_path_buf(),
            message,
        })?;
        // Opening checks the format and the header (or the pickle's index) now, not at first use.
        crate::weights::var_builder(path, device)?;
        Ok(Self {
            text_model: OnceLock::new(),
            symbolic_model: OnceLock::new(),
            audio_model: OnceLock::new(),
            source: Some(WeightSource {
                path: path.to_path_buf(),
                dtype: None,
            }),
            config: cfg.clone(),
            device: device.clone(),
        })
    }

    /// The built tower in `cell`, built from the weight file first if needed.
    fn tower<'a, E: StoreAs>(
        &'a self,
        cell: &'a LazyTower<E>,
        build: impl FnOnce(&WeightSource, &VarBuilder) -> Result<Tower<E>>,
    ) -> Result<&'a Tower<E>> {
        cell.get_or_init(|| {
            let source = self
                .source
                .as_ref()
                .ok_or("the model was built without this encoder")?;
            let vb = crate::weights::var_builder(&source.path, &self.device)
                .map_err(|e| e.to_string())?;
            let mut tower =
                build(source, &vb).map_err(|e| format!("{}: {e}", source.path.display()))?;
            if let Some(dtype) = source.dtype {
                tower.store_weights_as(dtype).map_err(|e| e.to_string())?;
            }
            Ok(tower)
        })
        .as_ref()
        .map_err(|message| candle_core::Error::Msg(message.clone()))
    }

    fn text(&self) -> Result<&Tower<XlmRobertaModel>> {
        self.tower(&self.text_model, |source, vb| {
            // A table on another device than the CPU is loaded whole: rows are gathered on the
            // CPU and a GPU pass wants its table resident.
            let rows = if self.device.is_cpu() {
                MappedRows::open(&source.path, TOKEN_TABLE)
                    .map_err(|e| candle_core::Error::Msg(e.to_string()))?
            } else {
                None
            };
            text_tower(vb, &self.config, rows)
        })
    }

    fn symbolic(&self) -> Result<&Tower<M3PatchEncoder>> {
        self.tower(&self.symbolic_model, |_, vb| {
            symbolic_tower(vb, &self.config)
        })
    }

    fn audio(&self) -> Result<&Tower<BertModel>> {
        self.tower(&self.audio_model, |_, vb| audio_tower(vb, &self.config))
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
            EncoderInput::TokenIds(ids) => self.text()?.encoder.forward(ids, mask),
            EncoderInput::Patches(patches) => self.symbolic()?.encoder.forward(patches, mask),
            EncoderInput::Features(features) => self
                .audio()?
                .encoder
                .forward(&features.to_dtype(DType::F32)?, mask),
        }
    }

    /// Projects pooled encoder outputs `[batch, H]` into the shared space `[batch, D]`.
    pub fn project(&self, modality: Modality, pooled: &Tensor) -> Result<Tensor> {
        match modality {
            Modality::Text => self.text()?.proj.forward(pooled),
            Modality::Symbolic => self.symbolic()?.proj.forward(pooled),
            Modality::Audio => self.audio()?.proj.forward(pooled),
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
