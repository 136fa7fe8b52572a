//! CLaMP 3 models in candle: the third stage of the pipeline (formats → audio → **models** →
//! features → retrieval).
//!
//! - [`Config`]: the `config.json` schema, official values by default.
//! - [`weights`]: the official PyTorch checkpoints (read without running pickle code) and
//!   memory-mapped safetensors.
//! - [`Clamp3Model`]: the XLM-R text encoder ([`xlm_roberta`]), the M3 patch encoder ([`m3`]), the
//!   audio BERT ([`bert`]) and their projections; tensors in, tensors out.
//!
//! ```no_run
//! use clamp3_models::{Clamp3Model, Config, EncoderInput, Modality, masked_mean};
//! use candle_core::{Device, Tensor};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let model = Clamp3Model::from_file("clamp3.safetensors".as_ref(), &Config::default(), &Device::Cpu)?;
//! let ids = Tensor::new(&[[0u32, 581, 2]], &Device::Cpu)?;
//! let hidden = model.encode(EncoderInput::TokenIds(&ids), None)?;
//! let vector = model.project(Modality::Text, &masked_mean(&hidden, None)?)?; // [1, 768]
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod bert;
pub mod blip;
pub mod clamp1;
pub mod clamp2;
mod clamp3;
pub mod config;
mod cpu;
mod error;
pub mod linear;
pub mod m3;
pub mod mert;
pub mod weights;
pub mod xlm_roberta;

pub use clamp1::{Clamp1Config, Clamp1Model};
pub use clamp2::{Clamp2Config, Clamp2Model, M3Model};
pub use clamp3::{masked_mean, Clamp3Model, EncoderInput, Modality};
pub use config::Config;
pub use error::{Error, Result};
