//! `clamp3 classify`: zero-shot classification of music files by the cosine of their vectors to
//! the vectors of label descriptions ("It is {label}").

use super::cache::{collect, CacheArgs, Embedder};
use crate::args::ModelArgs;
use anyhow::{bail, Context};
use clamp3_retrieval::classify::{classify, prompt, DEFAULT_TEMPLATE};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// `clamp3 classify`.
#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// Music files, or folders walked recursively.
    #[arg(required = true)]
    pub music: Vec<PathBuf>,
    /// The labels, comma-separated.
    #[arg(long, value_delimiter = ',', conflicts_with = "labels_file")]
    pub labels: Vec<String>,
    /// A file with one label per line.
    #[arg(long, value_name = "FILE")]
    pub labels_file: Option<PathBuf>,
    /// The sentence each label is put in before embedding; `{}` is the label.
    #[arg(long, default_value = DEFAULT_TEMPLATE)]
    pub template: String,
    /// How many labels to print per file, best first.
    #[arg(long, default_value_t = 1)]
    pub top_k: usize,
    /// Print one JSON object per file (JSON lines) instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub model: ModelArgs,
}

fn labels(args: &ClassifyArgs) -> anyhow::Result<Vec<String>> {
    let labels: Vec<String> = match &args.labels_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        None => args
            .labels
            .iter()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect(),
    };
    if labels.is_empty() {
        bail!("no labels: give --labels a,b,c or --labels-file FILE");
    }
    Ok(labels)
}

#[allow(clippy::print_stdout)]
pub fn run(args: ClassifyArgs) -> anyhow::Result<ExitCode> {
    let labels = labels(&args)?;
    let mut files = Vec::new();
    let mut unsupported = Vec::new();
    for input in &args.music {
        let inputs = collect(input)?;
        files.extend(inputs.files);
        unsupported.extend(inputs.unsupported);
    }
    if files.is_empty() {
        bail!("no supported music files given");
    }
    let embedder = Embedder::new(&args.model, &args.cache)?;
    let label_vectors = labels
        .iter()
        .map(|l| {
            embedder
                .text(&prompt(&args.template, l))
                .with_context(|| format!("embedding label {l:?}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (vectors, report) = embedder.files(&files);
    let ok = embedder.summary(&report, &unsupported);
    for (file, vector) in files.iter().zip(vectors) {
        let Some(vector) = vector else { continue };
        let hits = classify(&vector, &label_vectors, args.top_k);
        if args.json {
            let ranked: Vec<_> = hits
                .iter()
                .map(|h| serde_json::json!({"label": labels[h.index], "similarity": h.similarity}))
                .collect();
            println!(
                "{}",
                serde_json::json!({"file": file.display().to_string(), "labels": ranked})
            );
        } else {
            let ranked: Vec<String> = hits
                .iter()
                .map(|h| format!("{} {:.4}", labels[h.index], h.similarity))
                .collect();
            println!("{}\t{}", file.display(), ranked.join("\t"));
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
