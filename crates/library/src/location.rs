//! Where a library lives: a folder (Qdrant's engine embedded in the process), or a collection
//! on a Qdrant server or cluster, written `qdrant://HOST:PORT/COLLECTION` (gRPC port, 6334 by
//! default; `qdrants://` for TLS).

use crate::{Error, Result};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A library's place.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    /// A folder holding the embedded store.
    Folder(PathBuf),
    /// A collection of a Qdrant server or cluster.
    Qdrant(QdrantLocation),
}

/// A collection of a Qdrant server or cluster, and how to reach it.
#[derive(Clone, PartialEq)]
pub struct QdrantLocation {
    /// The gRPC endpoint, `http://HOST:PORT` (or `https://`).
    pub endpoint: String,
    /// The collection's name.
    pub collection: String,
    /// The API key the server asks for, if any.
    pub api_key: Option<String>,
    /// How the collection is made when this library creates it.
    pub create: CollectionOptions,
    /// How long a call is retried, with backoff, while the server answers with a transient
    /// error (unreachable, overloaded, a replica down): a worker rides out a node's restart.
    pub retry_for: Duration,
}

/// How a new collection is laid out (ignored for one that exists: these are fixed at creation,
/// save what Qdrant lets change later).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectionOptions {
    /// Shards the points are spread over (Qdrant's default: one per node at creation).
    pub shards: Option<u32>,
    /// Copies of each shard on distinct nodes (Qdrant's default: 1).
    pub replication_factor: Option<u32>,
    /// Replicas that must confirm a write (Qdrant's default: 1).
    pub write_consistency_factor: Option<u32>,
    /// Keep vectors (and payloads) on disk, memory-mapped, rather than in RAM.
    pub on_disk: bool,
    /// Scalar int8 quantization: a quarter of the vectors' memory kept in RAM for search,
    /// rescored with the full vectors.
    pub int8: bool,
}

/// Calls are retried for this long by default: longer than a node takes to restart.
pub const DEFAULT_RETRY: Duration = Duration::from_secs(120);

impl fmt::Debug for QdrantLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QdrantLocation")
            .field("endpoint", &self.endpoint)
            .field("collection", &self.collection)
            .field("api_key", &self.api_key.as_ref().map(|_| "…"))
            .field("create", &self.create)
            .field("retry_for", &self.retry_for)
            .finish()
    }
}

impl fmt::Display for QdrantLocation {
    /// `qdrant://HOST:PORT/COLLECTION`, never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, rest) = match self.endpoint.strip_prefix("https://") {
            Some(rest) => ("qdrants", rest),
            None => (
                "qdrant",
                self.endpoint
                    .strip_prefix("http://")
                    .unwrap_or(&self.endpoint),
            ),
        };
        write!(f, "{scheme}://{rest}/{}", self.collection)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Folder(dir) => write!(f, "{}", dir.display()),
            Location::Qdrant(q) => write!(f, "{q}"),
        }
    }
}

impl Location {
    /// Whether a string names a Qdrant collection rather than a folder.
    pub fn is_qdrant_url(s: &str) -> bool {
        s.starts_with("qdrant://") || s.starts_with("qdrants://")
    }

    /// The API key of a Qdrant location (none for a folder); `Some` replaces it.
    pub fn with_api_key(mut self, key: Option<String>) -> Self {
        if let (Location::Qdrant(q), Some(key)) = (&mut self, key) {
            q.api_key = Some(key);
        }
        self
    }

    /// The collection options of a Qdrant location (nothing for a folder).
    pub fn with_collection_options(mut self, options: CollectionOptions) -> Self {
        if let Location::Qdrant(q) = &mut self {
            q.create = options;
        }
        self
    }

    /// `$CLAMP3_LIBRARY` (a folder or a `qdrant://` URL), else the standard folder
    /// ([`crate::Library::default_path`]).
    pub fn default_location() -> Result<Self> {
        match std::env::var("CLAMP3_LIBRARY") {
            Ok(v) if !v.is_empty() => v.parse(),
            _ => Ok(Location::Folder(crate::Library::default_path())),
        }
    }
}

impl FromStr for Location {
    type Err = Error;

    /// A `qdrant://HOST[:PORT]/COLLECTION` or `qdrants://…` URL, or else a folder.
    fn from_str(s: &str) -> Result<Self> {
        let (secure, rest) = if let Some(rest) = s.strip_prefix("qdrants://") {
            (true, rest)
        } else if let Some(rest) = s.strip_prefix("qdrant://") {
            (false, rest)
        } else {
            return Ok(Location::Folder(PathBuf::from(s)));
        };
        let bad = |why: &str| {
            Error::Invalid(format!(
                "{s:?}: {why} (expected qdrant://HOST:PORT/COLLECTION, the gRPC port, e.g. qdrant://localhost:6334/music)"
            ))
        };
        let (host_port, collection) = rest.split_once('/').ok_or_else(|| bad("no collection"))?;
        let collection = collection.trim_end_matches('/');
        if collection.is_empty()
            || collection.len() > 255
            || !collection
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(bad(
                "a collection name is letters, digits, '_', '-' and '.'",
            ));
        }
        if host_port.is_empty() || host_port.contains(['@', '?', '#', ' ']) {
            return Err(bad("no host"));
        }
        // A port after the last colon, unless that colon is inside an IPv6 address.
        let has_port = host_port
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && !port.contains(']'));
        let host_port = if has_port {
            let (_, port) = host_port.rsplit_once(':').unwrap_or_default();
            port.parse::<u16>()
                .map_err(|_| bad(&format!("port {port:?} is not a number")))?;
            host_port.to_string()
        } else {
            format!("{host_port}:6334")
        };
        Ok(Location::Qdrant(QdrantLocation {
            endpoint: format!("{}://{host_port}", if secure { "https" } else { "http" }),
            collection: collection.to_string(),
            api_key: None,
            create: CollectionOptions::default(),
            retry_for: DEFAULT_RETRY,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_and_folders() {
        let Ok(Location::Qdrant(q)) = "qdrant://db.example:6400/music".parse() else {
            panic!("a qdrant URL");
        };
        assert_eq!(q.endpoint, "http://db.example:6400");
        assert_eq!(q.collection, "music");
        assert_eq!(q.to_string(), "qdrant://db.example:6400/music");
        let Ok(Location::Qdrant(q)) = "qdrants://db.example/music-v2".parse() else {
            panic!("a qdrants URL");
        };
        assert_eq!(q.endpoint, "https://db.example:6334");
        assert_eq!(q.to_string(), "qdrants://db.example:6334/music-v2");
        assert_eq!(
            "lib/dir".parse::<Location>().ok(),
            Some(Location::Folder("lib/dir".into()))
        );
        for bad in [
            "qdrant://host:6334",
            "qdrant://host:6334/",
            "qdrant://host:port/x",
            "qdrant:///x",
            "qdrant://host/a b",
        ] {
            assert!(bad.parse::<Location>().is_err(), "{bad}");
        }
    }
}
