//! Training for CLaMP 3 and M3, the reference's algorithm in candle: the last stage a user
//! reaches for when the published weights are not enough (their own catalogue, a new language,
//! a taxonomy).
//!
//! - [`arch`]: the trained architectures (CLaMP 3, M3 with its GPT-2 patch decoder), their
//!   parameter lists, [`arch::clip_loss`] and [`arch::m3_loss`].
//! - [`params::ParamStore`]: parameters as variables in PyTorch order, freezing.
//! - [`optim`]: AdamW exactly as PyTorch's, the learning-rate schedule.
//! - [`data`]: the JSONL format, text choice, items and batches; M3's masking.
//! - [`checkpoint`]: the reference's checkpoint layout as `.pth` and safetensors.
//! - [`trainer::Trainer`]: epochs, eval, checkpoints, the log, resume, gradient caching;
//!   [`job`] sets one up from file names.
//!
//! The specification these follow is the README of the training goldens (section 1).
#![deny(missing_docs)]

pub mod arch;
pub mod checkpoint;
pub mod data;
mod error;
pub mod job;
pub mod layers;
pub mod optim;
pub mod params;
pub mod rng;
pub mod trainer;

pub use error::{Error, Result};
