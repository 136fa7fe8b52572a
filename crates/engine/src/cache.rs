//! The feature cache: vectors on disk keyed by what they are computed from, so an unchanged file
//! is never embedded twice and an edited one is re-embedded automatically.
//!
//! A [`Key`] is the BLAKE3 hash of: the cache format version, a *context* string naming the
//! weights' identity and the extraction options (the engine's model identity, the pooling and
//! the file kind), and the input file's bytes. Nothing else goes in: a renamed or moved file with the same bytes hits, and
//! any change to the bytes, the weights or the options misses.
//!
//! Entries are `.npy` files (`[1, D]` float32) at `<dir>/v1/<2 hex>/<64 hex>.npy`, written to a
//! temporary sibling and renamed into place, so concurrent runs and interrupted runs never leave a
//! truncated entry; an unreadable entry counts as a miss and is overwritten.
//!
//! An image's BLIP caption is kept the same way, as `<64 hex>.caption` (its ids on the first
//! line, then its text), keyed by the captioner's identity and the image's bytes; the image's
//! vector is then its caption's, keyed as a text.

use crate::{Error, Result};
use clamp3_features::Caption;
use clamp3_io::npy;
use std::path::{Path, PathBuf};

/// Bumped whenever what an entry holds or how keys are made changes; old entries then miss.
pub const FORMAT_VERSION: u32 = 1;

/// The environment variable that overrides the cache folder.
pub const ENV_DIR: &str = "CLAMP3_CACHE";

/// A cache key: the BLAKE3 hash of the format version, the context and the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key(blake3::Hash);

impl Key {
    /// The key of `content` under `context` (weights identity and extraction options).
    pub fn new(context: &str, content: &[u8]) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&FORMAT_VERSION.to_le_bytes());
        hasher.update(&(context.len() as u64).to_le_bytes());
        hasher.update(context.as_bytes());
        hasher.update(content);
        Key(hasher.finalize())
    }

    /// 64 hex digits.
    pub fn to_hex(&self) -> String {
        self.0.to_hex().to_string()
    }
}

/// The cache folder's size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Number of cached vectors.
    pub entries: usize,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// A feature cache rooted at a folder.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// A cache in `dir` (created on the first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Cache { dir: dir.into() }
    }

    /// `$CLAMP3_CACHE`, else `$XDG_CACHE_HOME/clamp3`, else `~/.cache/clamp3` (on Windows
    /// `%LOCALAPPDATA%\clamp3`); `None` when no home folder is known.
    pub fn default_dir() -> Option<PathBuf> {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        if let Some(dir) = var(ENV_DIR) {
            return Some(dir);
        }
        if let Some(dir) = var("XDG_CACHE_HOME") {
            return Some(dir.join("clamp3"));
        }
        if let Some(dir) = var("LOCALAPPDATA") {
            return Some(dir.join("clamp3"));
        }
        var("HOME").map(|home| home.join(".cache").join("clamp3"))
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn versioned(&self) -> PathBuf {
        self.dir.join(format!("v{FORMAT_VERSION}"))
    }

    /// Where the entry for `key` lives.
    pub fn entry_path(&self, key: &Key) -> PathBuf {
        let hex = key.to_hex();
        self.versioned().join(&hex[..2]).join(format!("{hex}.npy"))
    }

    /// The cached vector for `key`, if there is a readable one.
    pub fn get(&self, key: &Key) -> Option<Vec<f32>> {
        let bytes = std::fs::read(self.entry_path(key)).ok()?;
        let array = npy::parse(&bytes).ok()?;
        (!array.data.is_empty()).then_some(array.data)
    }

    /// Stores `vector` under `key`, atomically.
    pub fn put(&self, key: &Key, vector: &[f32]) -> Result<()> {
        let path = self.entry_path(key);
        clamp3_io::write_atomic(&path, &npy::encode_f32(&[1, vector.len()], vector))
            .map_err(|e| Error::io(&path, e))
    }

    fn caption_path(&self, key: &Key) -> PathBuf {
        self.entry_path(key).with_extension("caption")
    }

    /// The cached caption for `key`, if there is a readable one.
    pub fn get_caption(&self, key: &Key) -> Option<Caption> {
        let text = std::fs::read_to_string(self.caption_path(key)).ok()?;
        // Line 1: the ids; the rest: the caption (which may hold newlines).
        let (ids, caption) = text.split_once('\n')?;
        let ids = ids
            .split(' ')
            .map(|id| id.parse().ok())
            .collect::<Option<Vec<u32>>>()?;
        Some(Caption {
            text: caption.to_string(),
            ids,
        })
    }

    /// Stores an image's caption under `key`, atomically.
    pub fn put_caption(&self, key: &Key, caption: &Caption) -> Result<()> {
        let path = self.caption_path(key);
        let ids: Vec<String> = caption.ids.iter().map(u32::to_string).collect();
        let text = format!("{}\n{}", ids.join(" "), caption.text);
        clamp3_io::write_atomic(&path, text.as_bytes()).map_err(|e| Error::io(&path, e))
    }

    /// How many entries the cache holds (all format versions) and their size.
    pub fn usage(&self) -> Result<Usage> {
        let mut usage = Usage::default();
        visit(&self.dir, &mut |path, meta| {
            if path.extension().is_some_and(|e| e == "npy") {
                usage.entries += 1;
                usage.bytes += meta.len();
            }
        })?;
        Ok(usage)
    }

    /// Deletes every entry (all format versions) and the checkpoints' safetensors copies;
    /// returns the entries that were there.
    pub fn clear(&self) -> Result<Usage> {
        let usage = self.usage()?;
        let Ok(read) = std::fs::read_dir(&self.dir) else {
            return Ok(usage);
        };
        for entry in read {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            let name = entry.file_name();
            let path = entry.path();
            // Only our own folders (`v1`, `v2`, …, and `weights`, the copies of checkpoints
            // that `weight_cache` makes): a cache pointed at a shared folder by mistake loses
            // nothing else.
            let name = name.to_string_lossy();
            let ours = name == "weights"
                || name
                    .strip_prefix('v')
                    .is_some_and(|n| n.parse::<u32>().is_ok());
            if ours && path.is_dir() {
                std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
            }
        }
        Ok(usage)
    }
}

fn visit(dir: &Path, f: &mut dyn FnMut(&Path, &std::fs::Metadata)) -> Result<()> {
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in read {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let meta = entry.metadata().map_err(|e| Error::io(entry.path(), e))?;
        if meta.is_dir() {
            visit(&entry.path(), f)?;
        } else {
            f(&entry.path(), &meta);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_context_and_content() {
        let a = Key::new("weights-a|global", b"X:1\n");
        assert_eq!(a, Key::new("weights-a|global", b"X:1\n"));
        assert_ne!(a, Key::new("weights-b|global", b"X:1\n"));
        assert_ne!(a, Key::new("weights-a|global", b"X:2\n"));
        // The context's length is hashed, so moving bytes between context and content differs.
        assert_ne!(Key::new("ab", b"c"), Key::new("a", b"bc"));
        assert_eq!(a.to_hex().len(), 64);
    }

    #[test]
    fn put_get_usage_clear() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("cache"));
        let key = Key::new("ctx", b"content");
        assert_eq!(cache.get(&key), None);
        assert_eq!(cache.usage().unwrap(), Usage::default());
        cache.put(&key, &[1.0, -2.5, 3.0]).unwrap();
        assert_eq!(cache.get(&key), Some(vec![1.0, -2.5, 3.0]));
        let usage = cache.usage().unwrap();
        assert_eq!(usage.entries, 1);
        assert!(usage.bytes > 12);
        // A stranger's file in the folder survives `clear`.
        std::fs::write(dir.path().join("cache").join("keep.txt"), "x").unwrap();
        assert_eq!(cache.clear().unwrap().entries, 1);
        assert_eq!(cache.get(&key), None);
        assert!(dir.path().join("cache").join("keep.txt").exists());
    }

    #[test]
    fn a_corrupt_entry_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let key = Key::new("ctx", b"content");
        cache.put(&key, &[1.0]).unwrap();
        std::fs::write(cache.entry_path(&key), b"garbage").unwrap();
        assert_eq!(cache.get(&key), None);
    }
}
