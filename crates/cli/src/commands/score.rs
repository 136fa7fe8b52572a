//! `clamp3 score`: how close two folders are, as a group (cosine of the mean vectors) or file by
//! file (pairs by relative folder and name before the first dot), as the reference's
//! `clamp3_score.py`.

use super::cache::{collect, relative, CacheArgs, Embedder};
use crate::args::ModelArgs;
use crate::batch::write_atomic;
use anyhow::bail;
use clamp3_retrieval::pairing::{pair, score_group, score_pairwise, Pairing};
use clamp3_retrieval::similarity::round4;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `clamp3 score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// The folder of query files.
    pub query_dir: PathBuf,
    /// The folder of reference files.
    pub ref_dir: PathBuf,
    /// Score each query against the reference with the same relative folder and name before the
    /// first dot (`zh/a.1.wav` and `zh/a.2.wav` pair with `zh/a.txt`), instead of the group.
    #[arg(long)]
    pub pairwise: bool,
    /// With --pairwise: make unmatched files an error instead of listing and skipping them.
    #[arg(long)]
    pub strict: bool,
    /// With --pairwise: where to write each pair's similarity, highest first.
    #[arg(long, short, default_value = "pairwise_similarities.jsonl")]
    pub output: PathBuf,
    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// The embedded files of one folder.
pub struct Side {
    /// Paths as found (under the folder given).
    pub files: Vec<PathBuf>,
    /// The same, relative to the folder.
    pub relative: Vec<PathBuf>,
    /// Their vectors.
    pub vectors: Vec<Vec<f32>>,
}

/// Embeds every supported file under `dir`; the flag is false when some file failed.
pub fn embed_dir(embedder: &Embedder, dir: &Path) -> anyhow::Result<(Side, bool)> {
    let inputs = collect(dir)?;
    if inputs.files.is_empty() {
        bail!("{}: no supported files", dir.display());
    }
    let (vectors, report) = embedder.files(&inputs.files);
    let ok = embedder.summary(&report, &inputs.unsupported);
    let mut side = Side {
        files: Vec::new(),
        relative: Vec::new(),
        vectors: Vec::new(),
    };
    for (file, vector) in inputs.files.iter().zip(vectors) {
        if let Some(vector) = vector {
            side.relative.push(relative(&inputs.root, file));
            side.files.push(file.clone());
            side.vectors.push(vector);
        }
    }
    Ok((side, ok))
}

/// The unmatched files, one `unmatched query: …` / `unmatched reference: …` line each.
pub fn unmatched_lines(pairing: &Pairing, queries: &Side, references: &Side) -> Vec<String> {
    let q = pairing
        .unmatched_queries
        .iter()
        .map(|&i| format!("unmatched query: {}", queries.files[i].display()));
    let r = pairing
        .unmatched_references
        .iter()
        .map(|&i| format!("unmatched reference: {}", references.files[i].display()));
    q.chain(r).collect()
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
pub fn run(args: ScoreArgs) -> anyhow::Result<ExitCode> {
    let embedder = Embedder::new(&args.model, &args.cache)?;
    let (queries, ok_q) = embed_dir(&embedder, &args.query_dir)?;
    let (references, ok_r) = embed_dir(&embedder, &args.ref_dir)?;
    let ok = ok_q && ok_r;
    if !args.pairwise {
        let similarity = score_group(&queries.vectors, &references.vectors)?;
        if args.json {
            let value = serde_json::json!({
                "queries": queries.vectors.len(),
                "references": references.vectors.len(),
                "group_similarity": similarity,
            });
            println!("{value}");
        } else {
            println!("Total query features: {}", queries.vectors.len());
            println!("Total reference features: {}", references.vectors.len());
            println!("Group similarity: {}", round4(f64::from(similarity)));
        }
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let pairing = pair(&queries.relative, &references.relative);
    let unmatched = unmatched_lines(&pairing, &queries, &references);
    if !unmatched.is_empty() {
        if args.strict {
            bail!(
                "{} unmatched files (--strict):\n  {}",
                unmatched.len(),
                unmatched.join("\n  ")
            );
        }
        eprintln!("{} unmatched files, skipped:", unmatched.len());
        for line in &unmatched {
            eprintln!("  {line}");
        }
    }
    // As the reference: references counted by key (one per key).
    let unique_references = pairing.pairs.len() + pairing.unmatched_references.len();
    let (rows, average) = score_pairwise(&pairing, &queries.vectors, &references.vectors)?;
    let mut jsonl = String::new();
    for row in &rows {
        // Keys in the reference's order and with its `json.dumps` separators.
        jsonl += &format!(
            "{{\"query\": {}, \"reference\": {}, \"similarity\": {}}}\n",
            serde_json::to_string(&queries.files[row.query].display().to_string())?,
            serde_json::to_string(&references.files[row.reference].display().to_string())?,
            serde_json::to_string(&f64::from(row.similarity))?,
        );
    }
    write_atomic(&args.output, jsonl.as_bytes())?;
    if args.json {
        let value = serde_json::json!({
            "common_keys": pairing.pairs.len(),
            "queries": rows.len(),
            "references": unique_references,
            "average_similarity": average,
            "unmatched": unmatched,
            "output": args.output.display().to_string(),
        });
        println!("{value}");
    } else {
        println!(
            "There are {} common keys between query and reference features.",
            pairing.pairs.len()
        );
        println!("Total query features: {}", rows.len());
        println!("Total reference features: {}", unique_references);
        println!("Avg. pairwise similarity: {}", round4(average));
        println!(
            "Pairwise similarity scores saved in '{}'.",
            args.output.display()
        );
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
