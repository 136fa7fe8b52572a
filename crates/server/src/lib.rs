//! The clamp3 HTTP server: a JSON API under `/v1/` over a library and the embedding engine, and
//! a search page, in one binary (`clamp3 serve`). It sits at the end of the pipeline, beside the
//! CLI (… → engine → retrieval, library → **server**).
//!
//! - [`ServerConfig`]: address, token, upload limit, request timeout; [`ServerConfig::check`]
//!   refuses to listen beyond loopback without a token.
//! - [`Server`]: [`Server::bind`] binds the socket (the model loads on first use), [`Server::run`] serves
//!   until Ctrl-C; [`serve`] does both on a runtime of its own.
//! - The routes, a file each under `routes/`, listed in `routes/openapi.json`
//!   (served at `/v1/openapi.json`). Handlers never call the engine themselves: an embedding
//!   queue batches concurrent requests into one engine call.
//!
//! ```no_run
//! use clamp3_engine::{Engine, ModelSpec};
//! # fn main() -> anyhow::Result<()> {
//! let engine = Engine::new(&ModelSpec::default(), None)?;
//! let library = clamp3_library::Library::open(&clamp3_library::Library::default_path())?;
//! clamp3_server::serve(clamp3_server::ServerConfig::default(), engine, library, |addr| {
//!     eprintln!("listening on http://{addr}/");
//! })
//! # }
//! ```
#![deny(missing_docs)]

mod auth;
mod embedder;
mod error;
mod routes;
mod state;
mod upload;

pub use embedder::BatchStats;

use anyhow::{bail, Context};
use clamp3_engine::Engine;
use clamp3_library::Library;
use state::AppState;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How the server listens and what it accepts.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen. Anything but a loopback address needs a token.
    pub addr: SocketAddr,
    /// The bearer token every `/v1` request must carry; `None`: none (loopback only).
    pub token: Option<String>,
    /// The largest request body (an upload) accepted, in bytes; larger ones get 413.
    pub max_upload_bytes: usize,
    /// How long a request may take before it gets 408.
    pub timeout: Duration,
    /// The most inputs one engine call embeds.
    pub max_batch: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8000)),
            token: None,
            max_upload_bytes: 50 << 20,
            timeout: Duration::from_secs(60),
            max_batch: 64,
        }
    }
}

impl ServerConfig {
    /// Refuses what is unsafe: listening beyond loopback without a token, an empty token.
    pub fn check(&self) -> anyhow::Result<()> {
        match &self.token {
            Some(token) if token.trim().is_empty() => bail!("the token is empty"),
            None if !self.addr.ip().is_loopback() => bail!(
                "{} is not a loopback address: anyone who can reach it could use the server; \
                 set a token (--token or CLAMP3_TOKEN) to listen there",
                self.addr
            ),
            _ => Ok(()),
        }
    }
}

/// A server bound to its address, ready to run.
pub struct Server {
    listener: tokio::net::TcpListener,
    app: axum::Router,
    state: Arc<AppState>,
}

impl Server {
    /// Checks the config, starts the embedding workers and binds the address (port 0: any free
    /// port, see [`Server::local_addr`]). The model loads on the first request that needs it.
    /// Servers may share an engine (`Arc<Engine>`).
    pub async fn bind(
        config: ServerConfig,
        engine: impl Into<Arc<Engine>>,
        library: Arc<Library>,
    ) -> anyhow::Result<Server> {
        config.check()?;
        let engine = engine.into();
        let state = Arc::new(AppState {
            embedder: embedder::Embedder::start(engine.clone(), config.max_batch)
                .context("starting the embedding workers")?,
            engine,
            library,
            token: config.token.clone(),
        });
        let app = routes::router(state.clone(), &config);
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("listening on {}", config.addr))?;
        Ok(Server {
            listener,
            app,
            state,
        })
    }

    /// Loads the text encoder now, by embedding a text through the queue, so the first request
    /// does not wait for it, and a model that cannot load stops the server before it starts.
    pub async fn warm_up(&self) -> anyhow::Result<()> {
        self.state
            .embedder
            .embed(clamp3_engine::Item::Text("warm-up".into()))
            .await
            .map_err(|e| anyhow::anyhow!("loading the model: {}", e.message))?;
        Ok(())
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// How the embedding queue has batched so far.
    pub fn batch_stats(&self) -> Arc<BatchStats> {
        self.state.embedder.stats.clone()
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        axum::serve(self.listener, self.app)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving")
    }

    /// Serves until Ctrl-C.
    pub async fn run(self) -> anyhow::Result<()> {
        self.run_until(async {
            // Without a signal handler the server runs until killed, which is also fine.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await
    }
}

/// Binds, loads the text encoder ([`Server::warm_up`]), calls `ready` with the address, and
/// serves until Ctrl-C, on a runtime of its own.
pub fn serve(
    config: ServerConfig,
    engine: Engine,
    library: Library,
    ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let server = Server::bind(config, engine, Arc::new(library)).await?;
        server.warm_up().await?;
        ready(server.local_addr()?);
        server.run().await
    })
}
