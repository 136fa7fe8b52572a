//! `clamp3 serve`: the HTTP API and the search page over a library (`clamp3-server`).

use super::ExitStatus;
use crate::args::{CacheArgs, ModelArgs, QdrantArgs};
use crate::embedding::engine;
use anyhow::Context;
use clamp3_library::Library;
use clap::Args;
use std::net::SocketAddr;
use std::time::Duration;

/// `clamp3 serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The library to serve (made with `clamp3 library add`): a folder or
    /// `qdrant://HOST:PORT/COLLECTION`. Default: `$CLAMP3_LIBRARY`, else the standard folder.
    #[arg(long, value_name = "DIR|URL")]
    pub library: Option<String>,
    #[command(flatten)]
    pub qdrant: QdrantArgs,
    /// Where to listen. Loopback by default; any other address needs --token.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub addr: SocketAddr,
    /// The bearer token every API request must carry (`Authorization: Bearer …`; the page takes
    /// it from its URL: `http://host/#token=…`).
    #[arg(long, env = "CLAMP3_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The largest upload accepted, in MiB.
    #[arg(long, default_value_t = 50)]
    pub max_upload_mb: usize,
    /// How long one request may take, in seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout_s: u64,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub model: ModelArgs,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitStatus> {
    let config = clamp3_server::ServerConfig {
        addr: args.addr,
        token: args.token,
        max_upload_bytes: args.max_upload_mb << 20,
        timeout: Duration::from_secs(args.timeout_s),
        ..clamp3_server::ServerConfig::default()
    };
    let location = args.qdrant.location(args.library.as_deref())?;
    let library =
        Library::open_at(&location).with_context(|| format!("opening the library {location}"))?;
    clamp3_server::serve(config, engine(&args.model, &args.cache)?, library, |addr| {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("clamp3: serving http://{addr}/ (Ctrl-C stops)");
        }
    })?;
    Ok(ExitStatus::Success)
}
