//! Running one job per file over a file or a folder: input discovery, mirrored output paths,
//! a progress bar, atomic writes, and a failure summary at the end. One bad file never stops a
//! batch; it is reported by name with its reason and makes the exit status non-zero.

use crate::commands::ExitStatus;
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The files a batch will handle.
#[derive(Debug)]
pub struct Inputs {
    /// The folder outputs are mirrored from (the input folder, or a single file's parent).
    pub root: PathBuf,
    /// Supported files, sorted.
    pub files: Vec<PathBuf>,
    /// Files under the folder whose type is not supported.
    pub unsupported: Vec<PathBuf>,
}

/// Finds the files to handle: `input` itself when it is a file (which must be supported), else
/// every file under it, recursively, split by `supported`.
pub fn collect(input: &Path, supported: impl Fn(&Path) -> bool) -> anyhow::Result<Inputs> {
    let meta = std::fs::metadata(input).with_context(|| format!("{}", input.display()))?;
    if meta.is_file() {
        if !supported(input) {
            bail!("{}: unsupported file type", input.display());
        }
        return Ok(Inputs {
            root: input.parent().unwrap_or(Path::new("")).to_path_buf(),
            files: vec![input.to_path_buf()],
            unsupported: Vec::new(),
        });
    }
    let mut files = Vec::new();
    let mut unsupported = Vec::new();
    for entry in walkdir::WalkDir::new(input).sort_by_file_name() {
        let entry = entry.with_context(|| format!("walking {}", input.display()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.into_path();
        if supported(&path) {
            files.push(path);
        } else {
            unsupported.push(path);
        }
    }
    Ok(Inputs {
        root: input.to_path_buf(),
        files,
        unsupported,
    })
}

/// `out_dir/<folders of file under root>/<stem>.<extension>`.
pub fn output_path(root: &Path, file: &Path, out_dir: &Path, extension: &str) -> PathBuf {
    let relative = file.strip_prefix(root).unwrap_or(file);
    let mut out = out_dir.join(relative);
    out.set_extension(extension);
    out
}

/// `out_dir/<path of file under root>`, keeping the file name.
pub fn mirrored_path(root: &Path, file: &Path, out_dir: &Path) -> PathBuf {
    out_dir.join(file.strip_prefix(root).unwrap_or(file))
}

/// Writes `bytes` to `path` atomically ([`clamp3_io::write_atomic`]), naming the path on
/// failure.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    clamp3_io::write_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Refuses, before any work, inputs that would write the same output (`a.txt` and `a.abc` in one
/// folder both give `a.npy`).
pub fn refuse_colliding_outputs(files: &[PathBuf], outputs: &[PathBuf]) -> anyhow::Result<()> {
    let mut seen: HashMap<&PathBuf, &PathBuf> = HashMap::new();
    let mut clashes = Vec::new();
    for (file, out) in files.iter().zip(outputs) {
        if let Some(other) = seen.insert(out, file) {
            clashes.push(format!(
                "{} and {} → {}",
                other.display(),
                file.display(),
                out.display()
            ));
        }
    }
    if !clashes.is_empty() {
        bail!(
            "several inputs would write the same output file (rename one of each pair):\n  {}",
            clashes.join("\n  ")
        );
    }
    Ok(())
}

/// A message that names `path` exactly once: as it is when it names it already.
pub fn naming(path: &Path, message: String) -> String {
    let name = path.display().to_string();
    if message.contains(&name) {
        message
    } else {
        format!("{name}: {message}")
    }
}

/// What a job did with one file.
pub enum Outcome {
    /// Output written.
    Done,
    /// Output existed already.
    Skipped,
}

/// The tally of a batch.
#[derive(Debug, Default)]
pub struct Report {
    /// Files whose output was written.
    pub done: usize,
    /// Files skipped because their output existed.
    pub skipped: usize,
    /// Files that failed, with a message naming the file.
    pub failures: Vec<(PathBuf, String)>,
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress_bar(len: usize, message: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} files, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}

/// Runs `job` on every file, on all cores when `parallel`, with a progress bar on stderr.
pub fn run(
    files: &[PathBuf],
    parallel: bool,
    message: &str,
    job: impl Fn(&Path) -> anyhow::Result<Outcome> + Sync,
) -> Report {
    let bar = progress_bar(files.len(), message);
    let report = Mutex::new(Report::default());
    let handle = |file: &PathBuf| {
        let outcome = job(file);
        let mut report = report.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Ok(Outcome::Done) => report.done += 1,
            Ok(Outcome::Skipped) => report.skipped += 1,
            Err(err) => {
                // Library errors often name the file already; print it once.
                report
                    .failures
                    .push((file.clone(), naming(file, format!("{err:#}"))));
            }
        }
        bar.inc(1);
    };
    if parallel {
        files.par_iter().for_each(handle);
    } else {
        files.iter().for_each(handle);
    }
    bar.finish_and_clear();
    let mut report = report.into_inner().unwrap_or_else(|e| e.into_inner());
    report.failures.sort();
    report
}

impl Report {
    /// Prints the summary to stderr; the status is a failure when any file failed.
    #[allow(clippy::print_stderr)]
    pub fn finish(&self, verb: &str, unsupported: &[PathBuf]) -> ExitStatus {
        let mut line = format!("{verb} {} file{}", self.done, plural(self.done));
        if self.skipped > 0 {
            line += &format!(
                ", skipped {} with existing output (--force redoes them)",
                self.skipped
            );
        }
        if !unsupported.is_empty() {
            line += &format!(", ignored {} of unsupported type", unsupported.len());
        }
        if !self.failures.is_empty() {
            line += &format!(", {} failed", self.failures.len());
        }
        eprintln!("{line}");
        for path in unsupported.iter().take(5) {
            eprintln!("  ignored (unsupported type): {}", path.display());
        }
        if unsupported.len() > 5 {
            eprintln!("  … and {} more", unsupported.len() - 5);
        }
        for (_, message) in &self.failures {
            eprintln!("error: {message}");
        }
        if self.failures.is_empty() {
            ExitStatus::Success
        } else {
            ExitStatus::Failure
        }
    }
}

/// `"s"` unless `n` is 1.
pub fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
