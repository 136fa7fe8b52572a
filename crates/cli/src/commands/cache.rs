//! `clamp3 cache`: where the feature cache is, how big it is, and clearing it.

use super::ExitStatus;
use crate::embedding::cache_dir;
use clamp3_engine::Cache;
use clap::Subcommand;
use std::io::Write;

/// `clamp3 cache`.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Print the cache folder, its number of vectors and its size.
    Info {
        /// Print a JSON object instead.
        #[arg(long)]
        json: bool,
    },
    /// Delete every cached vector.
    Clear,
}

pub fn run(command: CacheCommand) -> anyhow::Result<ExitStatus> {
    let cache = Cache::new(cache_dir()?);
    let mut out = std::io::stdout().lock();
    match command {
        CacheCommand::Info { json } => {
            let usage = cache.usage()?;
            if json {
                let value = serde_json::json!({
                    "dir": cache.dir().display().to_string(),
                    "entries": usage.entries,
                    "bytes": usage.bytes,
                });
                writeln!(out, "{value}")?;
            } else {
                writeln!(out, "cache folder: {}", cache.dir().display())?;
                writeln!(out, "vectors: {}", usage.entries)?;
                writeln!(
                    out,
                    "size: {:.1} MiB",
                    usage.bytes as f64 / (1024.0 * 1024.0)
                )?;
            }
        }
        CacheCommand::Clear => {
            let usage = cache.clear()?;
            writeln!(
                out,
                "removed {} vectors ({} bytes) from {}",
                usage.entries,
                usage.bytes,
                cache.dir().display()
            )?;
        }
    }
    Ok(ExitStatus::Success)
}
