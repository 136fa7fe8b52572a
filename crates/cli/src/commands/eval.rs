//! `clamp3 eval`: retrieval metrics (MRR, Hit@1/10/100) of queries against their paired
//! references, as the reference's `clamp3_eval.py`.

use super::cache::{CacheArgs, Embedder};
use super::score::{embed_dir, unmatched_lines};
use crate::args::ModelArgs;
use crate::batch::write_atomic;
use anyhow::bail;
use clamp3_retrieval::pairing::{eval, pair};
use clamp3_retrieval::similarity::round4;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

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

#[allow(clippy::print_stdout)]
pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
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
            "{} unmatched query or reference files:\n  {}",
            unmatched.len(),
            unmatched.join("\n  ")
        );
    }
    let metrics = eval(&pairing, &queries.vectors, &references.vectors)?;
    let mut jsonl = String::new();
    for row in &metrics.ranks {
        // Keys in the reference's order and with its `json.dumps` separators.
        jsonl += &format!(
            "{{\"query\": {}, \"reference\": {}, \"rank\": {}}}\n",
            serde_json::to_string(&queries.files[row.query].display().to_string())?,
            serde_json::to_string(&references.files[row.reference].display().to_string())?,
            row.rank,
        );
    }
    write_atomic(&args.output, jsonl.as_bytes())?;
    if args.json {
        let value = serde_json::json!({
            "common_keys": pairing.pairs.len(),
            "queries": metrics.queries,
            "references": metrics.references,
            "mrr": metrics.mrr,
            "hit_1": metrics.hit_1,
            "hit_10": metrics.hit_10,
            "hit_100": metrics.hit_100,
            "output": args.output.display().to_string(),
        });
        println!("{value}");
    } else {
        println!(
            "There are {} common keys between query and reference features.",
            pairing.pairs.len()
        );
        println!("Total query features: {}", metrics.queries);
        println!("Total reference features: {}", metrics.references);
        println!("MRR: {}", round4(metrics.mrr));
        println!("Hit@1: {}", round4(metrics.hit_1));
        println!("Hit@10: {}", round4(metrics.hit_10));
        println!("Hit@100: {}", round4(metrics.hit_100));
        println!("Rank details saved in '{}'.", args.output.display());
    }
    Ok(ExitCode::SUCCESS)
}
