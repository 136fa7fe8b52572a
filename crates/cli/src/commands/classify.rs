//! `clamp3 classify`: zero-shot classification of music files by the cosine of their vectors to
//! the vectors of label descriptions ("It is {label}").

use super::ExitStatus;
use crate::args::{CacheArgs, ModelArgs};
use crate::embedding::{collect, Embedder};
use anyhow::{bail, Context};
use clamp3_engine::ModelId;
use clamp3_retrieval::classify::{classify, prompt, DEFAULT_TEMPLATE};
use clamp3_retrieval::similarity::compute_values;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

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

pub fn run(args: ClassifyArgs) -> anyhow::Result<ExitStatus> {
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
    let prompts: Vec<String> = labels.iter().map(|l| prompt(&args.template, l)).collect();
    let label_vectors = embedder
        .texts(&prompts)
        .context("embedding the label texts")?;
    let (vectors, report) = embedder.files(&files)?;
    // CLaMP 1's clamp.py prints each key's "Prob" (compute_values) next to its similarity.
    let with_values = matches!(
        args.model.spec()?.model,
        ModelId::Clamp1S512 | ModelId::Clamp1S1024
    );
    let ok = embedder.summary(&report, &unsupported);
    let mut out = std::io::stdout().lock();
    for (file, vector) in files.iter().zip(vectors) {
        let Some(vector) = vector else { continue };
        let hits = classify(&vector, &label_vectors, args.top_k);
        let values = with_values.then(|| compute_values(&vector, &label_vectors));
        if args.json {
            let ranked: Vec<_> = hits
                .iter()
                .map(|h| {
                    let mut hit =
                        serde_json::json!({"label": labels[h.index], "similarity": h.similarity});
                    if let Some(values) = &values {
                        hit["probability"] = serde_json::json!(values[h.index]);
                    }
                    hit
                })
                .collect();
            writeln!(
                out,
                "{}",
                serde_json::json!({"file": file.display().to_string(), "labels": ranked})
            )?;
        } else {
            let ranked: Vec<String> = hits
                .iter()
                .map(|h| match &values {
                    Some(values) => format!(
                        "{} {:.4} ({:.2}%)",
                        labels[h.index],
                        h.similarity,
                        values[h.index] * 100.0
                    ),
                    None => format!("{} {:.4}", labels[h.index], h.similarity),
                })
                .collect();
            writeln!(out, "{}\t{}", file.display(), ranked.join("\t"))?;
        }
    }
    Ok(ExitStatus::from_ok(ok))
}
