//! What every handler shares.

use crate::embedder::Embedder;
use clamp3_engine::Engine;
use clamp3_library::Library;
use std::sync::Arc;

/// The server's state: the model (loaded once), its queue, and the token.
pub struct AppState {
    /// The engine, for what the library computes with it.
    pub engine: Arc<Engine>,
    /// The library searched and served.
    pub library: Arc<Library>,
    /// The queue into the engine: every vector a request needs goes through it.
    pub embedder: Embedder,
    /// The bearer token `/v1` requests must carry, if any.
    pub token: Option<String>,
}
