//! `clamp3 embed`: files → `.npy` vectors, as the reference's `extract_clamp3.py`.

use super::ExitStatus;
use crate::args::{ModelArgs, NpyArg};
use crate::batch::{self, Report};
use crate::embedding::{self, Bar};
use anyhow::bail;
use clamp3_engine::{Engine, Item, NpyReading, Options};
use clamp3_features::{Caption, FileKind, Pooling};
use clap::Args;
use std::path::{Path, PathBuf};

/// `clamp3 embed`.
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// A file, or a folder walked recursively. Supported: .txt; .abc, .mtf, .mid/.midi,
    /// .xml/.musicxml/.mxl; .wav, .mp3, .flac, .ogg; .npy (MERT features); .png, .jpg, .jpeg
    /// (embedded as their BLIP caption).
    pub input: PathBuf,
    /// Where to write `<stem>.npy` files, mirroring the input's folders.
    pub output_dir: PathBuf,
    /// Save per-item hidden states `[1, n, H]` instead of one global vector `[1, D]`.
    #[arg(long)]
    pub local: bool,
    /// Recompute outputs that already exist.
    #[arg(long)]
    pub force: bool,
    /// For each image, also write the BLIP caption it was embedded as, beside its vector:
    /// `<stem>.caption.json`, `{"image": …, "caption": …, "caption_ids": […]}`.
    #[arg(long)]
    pub keep_captions: bool,
    /// How `.npy` inputs are read (as the reference, MERT features by default).
    #[arg(long, value_enum, default_value = "features")]
    pub npy: NpyArg,
    #[command(flatten)]
    pub model: ModelArgs,
}

pub fn run(args: EmbedArgs) -> anyhow::Result<ExitStatus> {
    let inputs = batch::collect(&args.input, |p| FileKind::of(p).is_some())?;
    if inputs.files.is_empty() {
        bail!(
            "{}: no supported files (text, scores, MIDI, audio, MERT .npy or images) found",
            args.input.display()
        );
    }
    let outputs: Vec<PathBuf> = inputs
        .files
        .iter()
        .map(|f| batch::output_path(&inputs.root, f, &args.output_dir, "npy"))
        .collect();
    batch::refuse_colliding_outputs(&inputs.files, &outputs)?;
    // `embed` writes outputs, not the feature cache: the files it writes are the cache.
    let engine = Engine::new(&args.model.spec()?, None)?;
    let options = Options {
        pooling: if args.local {
            Pooling::Local
        } else {
            Pooling::Global
        },
        npy: match args.npy {
            NpyArg::Auto => NpyReading::Auto,
            NpyArg::Vector => NpyReading::Vector,
            NpyArg::Features => NpyReading::Features,
        },
        ..Options::default()
    };
    let mut report = Report::default();
    let mut todo = Vec::new();
    let wants_caption =
        |file: &PathBuf| args.keep_captions && FileKind::of(file) == Some(FileKind::Image);
    for (file, out) in inputs.files.iter().zip(&outputs) {
        let done = out.exists() && (!wants_caption(file) || caption_path(out).exists());
        if !args.force && done {
            report.skipped += 1;
        } else {
            todo.push((file, out));
        }
    }
    let items: Vec<Item> = todo
        .iter()
        .map(|(f, _)| Item::File(f.to_path_buf()))
        .collect();
    let bar = Bar::new("embedding");
    let results = engine.embed(&items, &options, &bar);
    drop(bar);
    for ((file, out), result) in todo.into_iter().zip(results) {
        match result {
            Ok(embedded) => {
                let caption = embedded.caption.as_ref().filter(|_| wants_caption(file));
                let written =
                    batch::write_atomic(out, &embedded.embedding.to_npy()).and_then(|()| {
                        match caption {
                            Some(caption) => write_caption(file, out, caption),
                            None => Ok(()),
                        }
                    });
                match written {
                    Ok(()) => report.done += 1,
                    Err(e) => report
                        .failures
                        .push((file.clone(), batch::naming(file, format!("{e:#}")))),
                }
            }
            Err(e) => {
                if let Some(fatal) = embedding::fatal(&e) {
                    return Err(fatal);
                }
                report.failures.push((file.clone(), e.to_string()));
            }
        }
    }
    report.failures.sort();
    Ok(report.finish("embedded", &inputs.unsupported))
}

/// Where `--keep-captions` writes the caption of the image whose vector is `npy`.
fn caption_path(npy: &Path) -> PathBuf {
    npy.with_extension("caption.json")
}

/// Writes the `--keep-captions` sidecar of `image`, whose vector went to `npy`.
fn write_caption(image: &Path, npy: &Path, caption: &Caption) -> anyhow::Result<()> {
    let value = serde_json::json!({
        "image": image.display().to_string(),
        "caption": caption.text,
        "caption_ids": caption.ids,
    });
    batch::write_atomic(&caption_path(npy), format!("{value}\n").as_bytes())
}
