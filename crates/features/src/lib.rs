//! Files → CLaMP 3 vectors: the fourth stage of the pipeline (formats → audio → models →
//! **features** → engine → retrieval).
//!
//! - [`input`]: reads a file by its extension and converts it for its encoder ([`ModelInput`]).
//! - [`audio`]: audio files through MERT.
//! - [`caption`]: images → BLIP captions ([`caption::Captioner`]), embedded as texts.
//! - [`text`]: the reference's text preparation (line de-duplication, `</s>` joins, XLM-R ids).
//! - [`segment`]: the reference's segmentation ([`Segments`]).
//! - [`embed()`]: segments, encodes and pools into an [`Embedding`], global or local;
//!   [`batch`] does it for many inputs at once, batching segments across files, for any model
//!   family that implements [`batch::Encoder`].
//! - [`hub`]: the official weights and tokenizer from the Hugging Face Hub, cached.
//!
//! ```no_run
//! use clamp3_features::{embed, input::read_input, text::load_tokenizer, Pooling};
//! use clamp3_models::{Clamp3Model, Config};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let model = Clamp3Model::from_file("clamp3.pth".as_ref(), &Config::default(), &candle_core::Device::Cpu)?;
//! let tokenizer = load_tokenizer("tokenizer.json".as_ref())?;
//! let input = read_input("query.txt".as_ref(), Some(&tokenizer))?;
//! let vector = embed(&model, &input, Pooling::Global)?; // shape [1, 768]
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod audio;
pub mod batch;
pub mod caption;
mod embed;
mod encoders;
mod error;
pub mod hub;
pub mod input;
pub mod segment;
pub mod text;
pub mod tokenizer;

pub use batch::{embed_many, BatchLimits, Encoder, Segmenting};
pub use caption::{Caption, Captioner};
pub use clamp3_io::npy;
pub use embed::{embed, Embedding, Pooling};
pub use error::{Error, Result};
pub use input::{FileKind, ModelInput};
pub use segment::Segments;
pub use tokenizer::TextTokenizer;
