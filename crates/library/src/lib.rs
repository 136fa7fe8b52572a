//! A music library that stays indexed: the files of a collection embedded once, kept in
//! Qdrant's engine embedded in the process (`qdrant-edge`) or in a collection of a Qdrant
//! server or cluster (`qdrant://HOST:PORT/COLLECTION`, [`Location`]), and asked many questions.
//! It sits after the engine in the pipeline (formats → audio → models → features → engine →
//! **library** → CLI, server).
//!
//! - One point per item; an item is a file's *content* ([`ItemId`] from its BLAKE3 hash), so
//!   renames, moves and duplicates cost nothing; its files, modality, format and metadata are the
//!   point's payload ([`ItemRecord`]); one named cosine vector per model (`clamp3-saas`, …).
//! - [`Library::add`] embeds what is new or changed and forgets what vanished, in chunks made
//!   durable one by one: after `kill -9` the next `add` finishes the job, nothing lost or
//!   duplicated (a journal names the points of the chunk in flight; a crash leaves them checked
//!   and, if not whole, deleted on the next open).
//! - [`Library::search`], [`Library::similar`] with a [`Filter`]; [`Library::info`],
//!   [`Library::verify`], [`Library::remove`].
//! - On a server, many machines fill one collection together: [`AddOptions::shard`] gives each
//!   a disjoint share of the files by content hash ([`Shard`]); [`Library::migrate_to`] moves a
//!   library between a folder and a server.
//!
//! ```no_run
//! use clamp3_engine::{Engine, ModelSpec, Silent};
//! use clamp3_library::{AddOptions, Filter, Library};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::new(&ModelSpec::default(), None)?;
//! let library = Library::open(&Library::default_path())?;
//! library.add(&engine, &["my_music".into()], &AddOptions::default(), &Silent)?;
//! let query = engine.embed_text("a calm solo piano piece")?;
//! for hit in library.search(&engine, &query, 10, &"modality=audio".parse::<Filter>()?)? {
//!     println!("{:.4} {}", hit.score, hit.item.path.display());
//! }
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod add;
mod error;
mod filter;
mod item;
mod library;
mod location;
pub mod metadata;
mod migrate;
mod store;

pub use add::{AddOptions, AddReport, Shard};
pub use error::{Error, Result};
pub use filter::Filter;
pub use item::{format_name, modality_name, Hit, ItemFile, ItemId, ItemRecord, MODALITIES};
pub use library::{Library, LibraryInfo, ModelInfo, ShardInfo, VerifyReport, HNSW_EF};
pub use location::{CollectionOptions, Location, QdrantLocation, DEFAULT_RETRY};
pub use migrate::MigrateReport;
pub use store::{ClusterInfo, ReplicaInfo, Scan};
