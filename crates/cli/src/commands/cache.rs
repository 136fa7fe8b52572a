//! `clamp3 cache`, and the cached embedding that `search`, `score`, `eval` and `classify` share:
//! the model is loaded only when some file misses the cache, so a repeated run does no model work.

use crate::args::{ModelArgs, VariantArg};
use crate::batch::{self, Outcome, Report};
use crate::model::{self, Loaded};
use anyhow::{anyhow, Context};
use clamp3_features::{embed, FileKind, ModelInput, Pooling};
use clamp3_retrieval::cache::{file_identity, Cache, Key};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

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

/// Feature-cache options shared by the commands that embed.
#[derive(Debug, Args, Clone)]
pub struct CacheArgs {
    /// Neither read nor write the feature cache (every file is embedded again).
    #[arg(long)]
    pub no_cache: bool,
}

#[allow(clippy::print_stdout)]
pub fn run(command: CacheCommand) -> anyhow::Result<ExitCode> {
    let cache = Cache::new(cache_dir()?);
    match command {
        CacheCommand::Info { json } => {
            let usage = cache.usage()?;
            if json {
                let value = serde_json::json!({
                    "dir": cache.dir().display().to_string(),
                    "entries": usage.entries,
                    "bytes": usage.bytes,
                });
                println!("{value}");
            } else {
                println!("cache folder: {}", cache.dir().display());
                println!("vectors: {}", usage.entries);
                println!("size: {:.1} MiB", usage.bytes as f64 / (1024.0 * 1024.0));
            }
        }
        CacheCommand::Clear => {
            let usage = cache.clear()?;
            println!(
                "removed {} vectors ({} bytes) from {}",
                usage.entries,
                usage.bytes,
                cache.dir().display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cache_dir() -> anyhow::Result<PathBuf> {
    Cache::default_dir()
        .ok_or_else(|| anyhow!("no cache folder: set CLAMP3_CACHE (no home folder is known)"))
}

/// Global vectors for files and literal texts, through the cache, loading the model lazily.
pub struct Embedder<'a> {
    args: &'a ModelArgs,
    loaded: OnceLock<Result<Loaded, String>>,
    cache: Option<Cache>,
    context: String,
    computed: AtomicUsize,
    reused: AtomicUsize,
    /// `(computed, reused)` at the last [`Embedder::summary`], which reports what came since.
    reported: Mutex<(usize, usize)>,
    /// The first failure to write a cache entry, reported once by [`Embedder::summary`].
    cache_error: Mutex<Option<String>>,
}

impl<'a> Embedder<'a> {
    /// An embedder for the model the arguments name.
    pub fn new(args: &'a ModelArgs, cache_args: &CacheArgs) -> anyhow::Result<Self> {
        let cache = if cache_args.no_cache {
            None
        } else {
            Some(Cache::new(cache_dir()?))
        };
        Ok(Embedder {
            args,
            loaded: OnceLock::new(),
            cache,
            context: if cache_args.no_cache {
                String::new()
            } else {
                context(args)?
            },
            computed: AtomicUsize::new(0),
            reused: AtomicUsize::new(0),
            reported: Mutex::new((0, 0)),
            cache_error: Mutex::new(None),
        })
    }

    fn loaded(&self) -> anyhow::Result<&Loaded> {
        self.loaded
            .get_or_init(|| model::load(self.args).map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow!("{e}"))
    }

    /// Through the cache: the key is the content under the context plus the file kind.
    fn cached(
        &self,
        kind: FileKind,
        content: &[u8],
        compute: impl FnOnce(&Loaded) -> anyhow::Result<ModelInput>,
    ) -> anyhow::Result<Vec<f32>> {
        let key = self
            .cache
            .as_ref()
            .map(|_| Key::new(&format!("{}|{kind:?}", self.context), content));
        if let (Some(cache), Some(key)) = (&self.cache, &key) {
            if let Some(vector) = cache.get(key) {
                self.reused.fetch_add(1, Ordering::Relaxed);
                return Ok(vector);
            }
        }
        let loaded = self.loaded()?;
        let input = compute(loaded)?;
        let vector = embed(&loaded.model, &input, Pooling::Global)?.data;
        self.computed.fetch_add(1, Ordering::Relaxed);
        if let (Some(cache), Some(key)) = (&self.cache, &key) {
            // A cache that cannot be written (read-only, full) costs speed, not results.
            if let Err(e) = cache.put(key, &vector) {
                let mut first = self.cache_error.lock().unwrap_or_else(|e| e.into_inner());
                first.get_or_insert_with(|| format!("{e}"));
            }
        }
        Ok(vector)
    }

    /// The global vector of one file.
    pub fn file(&self, path: &Path) -> anyhow::Result<Vec<f32>> {
        let kind = FileKind::of(path).ok_or_else(|| anyhow!("unsupported file type"))?;
        let content = std::fs::read(path)?;
        self.cached(kind, &content, |loaded| loaded.read_input(path))
    }

    /// The global vector of a literal text, as a `.txt` file holding it would give.
    pub fn text(&self, text: &str) -> anyhow::Result<Vec<f32>> {
        self.cached(FileKind::Text, text.as_bytes(), |loaded| {
            Ok(ModelInput::TokenIds(clamp3_features::text::token_ids(
                loaded.tokenizer()?,
                text,
            )?))
        })
    }

    /// The vectors of many files on all cores (`None` for those that failed, listed in the
    /// report), with a progress bar.
    pub fn files(&self, files: &[PathBuf]) -> (Vec<Option<Vec<f32>>>, Report) {
        let slots: Vec<Mutex<Option<Vec<f32>>>> = files.iter().map(|_| Mutex::new(None)).collect();
        let index: std::collections::HashMap<&Path, usize> = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.as_path(), i))
            .collect();
        let report = batch::run(files, true, "embedding", |file| {
            let vector = self.file(file)?;
            if let Some(slot) = index.get(file).and_then(|&i| slots.get(i)) {
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(vector);
            }
            Ok(Outcome::Done)
        });
        let vectors = slots
            .into_iter()
            .map(|s| s.into_inner().unwrap_or_else(|e| e.into_inner()))
            .collect();
        (vectors, report)
    }

    /// Prints to stderr how many vectors were computed and reused since the last summary, the
    /// unsupported files and the failures; `true` when nothing failed.
    #[allow(clippy::print_stderr)]
    pub fn summary(&self, report: &Report, unsupported: &[PathBuf]) -> bool {
        let (computed, reused) = {
            let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
            let now = (
                self.computed.load(Ordering::Relaxed),
                self.reused.load(Ordering::Relaxed),
            );
            let since = (now.0 - reported.0, now.1 - reported.1);
            *reported = now;
            since
        };
        let mut line = format!(
            "embedded {computed} file{}, {reused} from the cache",
            batch::plural(computed)
        );
        if !unsupported.is_empty() {
            line += &format!(", ignored {} of unsupported type", unsupported.len());
        }
        if !report.failures.is_empty() {
            line += &format!(", {} failed", report.failures.len());
        }
        eprintln!("{line}");
        if let Some(e) = self
            .cache_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            eprintln!("warning: could not write the feature cache ({e}); results are unaffected");
        }
        for path in unsupported {
            eprintln!("  ignored (unsupported type): {}", path.display());
        }
        for (path, reason) in &report.failures {
            eprintln!("error: {}: {reason}", path.display());
        }
        report.failures.is_empty()
    }
}

/// The weights' identity and the extraction options: what, besides a file's bytes, decides its
/// vector. Weight, tokenizer and MERT files are identified by path, size and modification time
/// (hashing gigabytes on every run would cost more than it saves); the config by its bytes.
fn context(args: &ModelArgs) -> anyhow::Result<String> {
    let identity = |path: &Option<PathBuf>, default: &str| -> anyhow::Result<String> {
        match path {
            Some(path) => Ok(file_identity(path)?),
            None => Ok(default.to_string()),
        }
    };
    let weights = identity(
        &args.weights,
        match args.variant {
            VariantArg::Saas => "hub:saas",
            VariantArg::C2 => "hub:c2",
        },
    )?;
    let config = match &args.config {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            blake3::hash(&bytes).to_hex().to_string()
        }
        None => "default".to_string(),
    };
    let tokenizer = identity(&args.tokenizer, "hub")?;
    let mert = match &args.mert {
        Some(dir) => identity(&Some(dir.join("config.json")), "hub")
            .unwrap_or_else(|_| dir.display().to_string()),
        None => "hub".to_string(),
    };
    Ok(format!(
        "weights={weights}|config={config}|tokenizer={tokenizer}|mert={mert}|pooling=global"
    ))
}

/// Files under `input` (or `input` itself) that some encoder reads.
pub fn collect(input: &Path) -> anyhow::Result<batch::Inputs> {
    batch::collect(input, |p| FileKind::of(p).is_some())
}

/// `path` relative to `root`, `/`-separated, for names in outputs.
pub fn relative(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}
