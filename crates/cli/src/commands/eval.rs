//! `clamp3 eval`: retrieval metrics (MRR, Hit@1/10/100) of queries against their paired
//! references, as the reference's `clamp3_eval.py`.

use super::score::{add_captions, caption_field, embed_dir, unmatched_lines, write_captions};
use super::ExitStatus;
use crate::args::{CacheArgs, ModelArgs};
use crate::batch::write_atomic;
use crate::embedding::Embedder;
use anyhow::bail;
use clamp3_retrieval::pairing::{eval, pair};
use clamp3_retrieval::similarity::round4;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

/// `clamp3 eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The folder of query files.
    pub query_dir: PathBuf,
    /// The folder of reference files; each query pairs with the reference with the same relative
    /// folder and name before the first dot. Unmatched files are an error.
    pub ref_dir: PathBuf,
    /// Where to write each query's rank, best first.
    #[arg(long, short, default_value = "retrieval_ranks.jsonl")]
    pub output: PathBuf,
    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub model: ModelArgs,
}

pub fn run(args: EvalArgs) -> anyhow::Result<ExitStatus> {
    let embedder = Embedder::new(&args.model, &args.cache)?;
    let (queries, ok_q) = embed_dir(&embedder, &args.query_dir)?;
    let (references, ok_r) = embed_dir(&embedder, &args.ref_dir)?;
    if !(ok_q && ok_r) {
        bail!(
            "some files could not be embedded (listed above); metrics would be wrong without them"
        );
    }
    let pairing = pair(&queries.relative, &references.relative);
    let unmatched = unmatched_lines(&pairing, &queries, &references);
    if !unmatched.is_empty() {
        bail!(
            "{} unmatched or duplicate query or reference files:\n  {}",
            unmatched.len(),
            unmatched.join("\n  ")
        );
    }
    let metrics = eval(&pairing, &queries.vectors, &references.vectors)?;
    let mut jsonl = String::new();
    for row in &metrics.ranks {
        // Keys in the reference's order and with its `json.dumps` separators.
        // Images also carry their captions, after the reference's keys.
        jsonl += &format!(
            "{{\"query\": {}, \"reference\": {}, \"rank\": {}{}{}}}\n",
            serde_json::to_string(&queries.files[row.query].display().to_string())?,
            serde_json::to_string(&references.files[row.reference].display().to_string())?,
            row.rank,
            caption_field("query_caption", queries.captions[row.query].as_ref())?,
            caption_field(
                "reference_caption",
                references.captions[row.reference].as_ref()
            )?,
        );
    }
    write_atomic(&args.output, jsonl.as_bytes())?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut value = serde_json::json!({
            "common_keys": pairing.pairs.len(),
            "queries": metrics.queries,
            "references": metrics.references,
            "mrr": metrics.mrr,
            "hit_1": metrics.hit_1,
            "hit_10": metrics.hit_10,
            "hit_100": metrics.hit_100,
            "output": args.output.display().to_string(),
        });
        add_captions(&mut value, &[&queries, &references]);
        writeln!(out, "{value}")?;
    } else {
        write_captions(&mut out, &[&queries, &references])?;
        writeln!(
            out,
            "There are {} common keys between query and reference features.",
            pairing.pairs.len()
        )?;
        writeln!(out, "Total query features: {}", metrics.queries)?;
        writeln!(out, "Total reference features: {}", metrics.references)?;
        writeln!(out, "MRR: {}", round4(metrics.mrr))?;
        writeln!(out, "Hit@1: {}", round4(metrics.hit_1))?;
        writeln!(out, "Hit@10: {}", round4(metrics.hit_10))?;
        writeln!(out, "Hit@100: {}", round4(metrics.hit_100))?;
        writeln!(out, "Rank details saved in '{}'.", args.output.display())?;
    }
    Ok(ExitStatus::Success)
}
