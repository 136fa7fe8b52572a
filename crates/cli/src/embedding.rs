//! The engine as the commands use it: built from the shared arguments, drawing a progress bar,
//! and summing up what was computed, reused from the cache and what failed.

use crate::args::{CacheArgs, ModelArgs};
use crate::batch::{self, Report};
use anyhow::anyhow;
use clamp3_engine::{Cache, Embedded, Engine, Error, Item, Options, Progress, Source};
use clamp3_features::{Caption, FileKind, Pooling};
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The feature cache's folder.
pub fn cache_dir() -> anyhow::Result<PathBuf> {
    Cache::default_dir()
        .ok_or_else(|| anyhow!("no cache folder: set CLAMP3_CACHE (no home folder is known)"))
}

/// The engine for the arguments, with the feature cache unless `--no-cache`.
pub fn engine(model: &ModelArgs, cache: &CacheArgs) -> anyhow::Result<Engine> {
    let cache = if cache.no_cache {
        None
    } else {
        Some(Cache::new(cache_dir()?))
    };
    let mut spec = model.spec()?;
    spec.weight_cache = cache.as_ref().map(|c| c.dir().join("weights"));
    Ok(Engine::new(&spec, cache)?)
}

/// The engine's progress as a bar on stderr; notices are printed above it once each.
pub struct Bar {
    bar: ProgressBar,
    noticed: Mutex<Vec<String>>,
}

impl Bar {
    /// A bar with a message (`embedding`, …).
    pub fn new(message: &str) -> Self {
        Bar {
            bar: batch::progress_bar(0, message),
            noticed: Mutex::new(Vec::new()),
        }
    }
}

impl Bar {
    /// Prints `level: message` above the bar, once per message.
    fn say(&self, level: &str, message: &str) {
        let mut said = self.noticed.lock().unwrap_or_else(|e| e.into_inner());
        let line = format!("{level}: {message}");
        if !said.contains(&line) {
            self.bar.suspend(|| {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("{line}");
                }
            });
            said.push(line);
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn start(&self, total: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(0);
    }

    fn finished(&self, _index: usize, _result: &clamp3_engine::Result<Embedded>) {
        self.bar.inc(1);
    }

    fn notice(&self, message: &str) {
        self.say("note", message);
    }

    fn warning(&self, message: &str) {
        self.say("warning", message);
    }
}

/// A failure that stops the whole command: a model, tokenizer or config that cannot be loaded
/// fails every input the same way, so it is said once instead of once per file.
pub fn fatal(error: &Error) -> Option<anyhow::Error> {
    error
        .fails_every_input()
        .then(|| anyhow!("{}", error.without_path()))
}

/// A file's global vector and, for an image, the caption embedded in its place.
pub type Captioned = (Vec<f32>, Option<Caption>);

/// Global vectors of texts and files through the engine, counting what it computed and reused.
pub struct Embedder {
    engine: Engine,
    options: Options,
    computed: AtomicUsize,
    reused: AtomicUsize,
}

impl Embedder {
    /// The embedder for the arguments.
    pub fn new(model: &ModelArgs, cache: &CacheArgs) -> anyhow::Result<Self> {
        Ok(Embedder {
            engine: engine(model, cache)?,
            options: Options {
                pooling: Pooling::Global,
                npy: cache.npy_reading(),
                ..Options::default()
            },
            computed: AtomicUsize::new(0),
            reused: AtomicUsize::new(0),
        })
    }

    fn count(&self, embedded: &Embedded) {
        match embedded.source {
            Source::Computed => self.computed.fetch_add(1, Ordering::Relaxed),
            Source::Cache => self.reused.fetch_add(1, Ordering::Relaxed),
            Source::Vector => 0,
        };
    }

    fn one(&self, item: Item) -> anyhow::Result<Vec<f32>> {
        Ok(self.one_embedded(item)?.embedding.data)
    }

    fn one_embedded(&self, item: Item) -> anyhow::Result<Embedded> {
        let bar = Bar::new("embedding");
        let result = self
            .engine
            .embed(&[item], &self.options, &bar)
            .pop()
            .unwrap_or_else(|| Err(Error::Spec("no result".into())));
        drop(bar);
        match result {
            Ok(embedded) => {
                self.count(&embedded);
                Ok(embedded)
            }
            Err(e) => Err(fatal(&e).unwrap_or_else(|| anyhow!("{e}"))),
        }
    }

    /// The global vector of one query file and, for an image, the caption embedded in its
    /// place; the error names the file.
    pub fn query(&self, path: &Path) -> anyhow::Result<(Vec<f32>, Option<Caption>)> {
        let embedded = self.one_embedded(Item::File(path.to_path_buf()))?;
        Ok((embedded.embedding.data, embedded.caption))
    }

    /// The engine it embeds with.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The global vector of a literal text.
    pub fn text(&self, text: &str) -> anyhow::Result<Vec<f32>> {
        self.one(Item::Text(text.to_string()))
    }

    /// The global vectors of literal texts, batched together; the first failure fails all.
    pub fn texts(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        let items: Vec<Item> = texts.iter().cloned().map(Item::Text).collect();
        let bar = Bar::new("embedding");
        let results = self.engine.embed(&items, &self.options, &bar);
        drop(bar);
        results
            .into_iter()
            .zip(texts)
            .map(|(result, text)| match result {
                Ok(embedded) => {
                    self.count(&embedded);
                    Ok(embedded.embedding.data)
                }
                Err(e) => Err(fatal(&e).unwrap_or_else(|| anyhow!("{text:?}: {e}"))),
            })
            .collect()
    }

    /// The vectors of many files (`None` for those that failed, listed in the report), with a
    /// progress bar. Fails as a whole only when the model itself cannot be loaded.
    pub fn files(&self, files: &[PathBuf]) -> anyhow::Result<(Vec<Option<Vec<f32>>>, Report)> {
        let (embedded, report) = self.files_with_captions(files)?;
        let vectors = embedded.into_iter().map(|e| e.map(|(v, _)| v)).collect();
        Ok((vectors, report))
    }

    /// [`Embedder::files`], with the caption each image was embedded as.
    pub fn files_with_captions(
        &self,
        files: &[PathBuf],
    ) -> anyhow::Result<(Vec<Option<Captioned>>, Report)> {
        let items: Vec<Item> = files.iter().cloned().map(Item::File).collect();
        let bar = Bar::new("embedding");
        let results = self.engine.embed(&items, &self.options, &bar);
        drop(bar);
        let mut report = Report::default();
        let mut vectors = Vec::with_capacity(files.len());
        for (file, result) in files.iter().zip(results) {
            match result {
                Ok(embedded) => {
                    self.count(&embedded);
                    report.done += 1;
                    vectors.push(Some((embedded.embedding.data, embedded.caption)));
                }
                Err(e) => {
                    if let Some(fatal) = fatal(&e) {
                        return Err(fatal);
                    }
                    report.failures.push((file.clone(), e.to_string()));
                    vectors.push(None);
                }
            }
        }
        Ok((vectors, report))
    }

    /// Prints to stderr how many vectors were computed and reused so far, the unsupported files
    /// and the failures; `true` when nothing failed.
    #[allow(clippy::print_stderr)]
    pub fn summary(&self, report: &Report, unsupported: &[PathBuf]) -> bool {
        let computed = self.computed.swap(0, Ordering::Relaxed);
        let reused = self.reused.swap(0, Ordering::Relaxed);
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
        for path in unsupported {
            eprintln!("  ignored (unsupported type): {}", path.display());
        }
        for (_, message) in &report.failures {
            eprintln!("error: {message}");
        }
        report.failures.is_empty()
    }
}

/// Files under `input` (or `input` itself) that some encoder reads.
pub fn collect(input: &Path) -> anyhow::Result<batch::Inputs> {
    batch::collect(input, |p| FileKind::of(p).is_some())
}

/// `path` relative to `root`, for names in outputs.
pub fn relative(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}
