//! The embedding engine: what every clamp3 front end (the CLI, the server, the library) calls to
//! turn texts and files into vectors. It sits between the feature stage and the front ends
//! (formats → audio → models → features → **engine** → retrieval, library → CLI, server).
//!
//! - [`ModelSpec`]: which model (family and variant), its files (local, or the Hub's on first
//!   use), device and precision; [`spec`] also makes the *identity* that keys the cache.
//! - [`Family`]: the seam a model family plugs into (preprocessing, identity, encoders);
//!   [`families`] holds one file per family.
//! - [`Engine`]: loads each part on first use, reads each input once, answers from the
//!   content-addressed [`Cache`] before loading any model, batches segments across inputs, and
//!   returns one result per input in input order, reporting progress to a [`Progress`].
//!
//! ```no_run
//! use clamp3_engine::{Engine, Item, ModelSpec, Options, Silent};
//! # fn main() -> Result<(), clamp3_engine::Error> {
//! let spec = ModelSpec { weights: Some("clamp3.safetensors".into()), ..ModelSpec::default() };
//! let engine = Engine::new(&spec, None)?;
//! let query = engine.embed_text("a calm solo piano piece")?;
//! let items = vec![Item::File("tune.abc".into()), Item::File("song.mp3".into())];
//! for result in engine.embed(&items, &Options::default(), &Silent) {
//!     println!("{:?}", result.map(|e| e.embedding.shape));
//! }
//! # let _ = query; Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod cache;
mod engine;
mod error;
pub mod families;
mod family;
mod progress;
pub mod spec;
pub mod weight_cache;

pub use cache::Cache;
pub use engine::{kind_description, Embedded, Engine, Item, NpyReading, Options, Source};
pub use error::{Error, Result};
pub use family::Family;
pub use progress::{Progress, Silent};
pub use spec::{DeviceChoice, ModelId, ModelSpec, Precision};
