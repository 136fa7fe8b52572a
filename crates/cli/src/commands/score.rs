//! `clamp3 score`: how close two folders are, as a group (cosine of the mean vectors) or file by
//! file (pairs by relative folder and name before the first dot), as the reference's
//! `clamp3_score.py`.

use super::ExitStatus;
use crate::args::{CacheArgs, ModelArgs};
use crate::batch::write_atomic;
use crate::embedding::{collect, relative, Embedder};
use anyhow::bail;
use clamp3_features::Caption;
use clamp3_retrieval::pairing::{pair, pair_key, score_group, score_pairwise, Pairing};
use clamp3_retrieval::similarity::round4;
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};

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
    /// For an image, the caption it was embedded as.
    pub captions: Vec<Option<Caption>>,
}

impl Side {
    /// `(path, caption)` of every image of the side, in order.
    pub fn captioned(&self) -> impl Iterator<Item = (&PathBuf, &Caption)> {
        self.files
            .iter()
            .zip(&self.captions)
            .filter_map(|(file, caption)| caption.as_ref().map(|c| (file, c)))
    }
}

/// Prints `Caption of <path>: <caption>` for every image of the sides: the captions decide
/// where the images land, so they are shown with the results.
pub fn write_captions(out: &mut impl Write, sides: &[&Side]) -> std::io::Result<()> {
    for (file, caption) in sides.iter().flat_map(|side| side.captioned()) {
        writeln!(out, "Caption of {}: {}", file.display(), caption.text)?;
    }
    Ok(())
}

/// The captions of the sides' images for `--json`: `[{"path", "caption", "caption_ids"}]`.
pub fn captions_json(sides: &[&Side]) -> serde_json::Value {
    sides
        .iter()
        .flat_map(|side| side.captioned())
        .map(|(file, caption)| {
            serde_json::json!({
                "path": file.display().to_string(),
                "caption": caption.text,
                "caption_ids": caption.ids,
            })
        })
        .collect()
}

/// Adds `"captions"` ([`captions_json`]) to a `--json` object when some file is an image.
pub fn add_captions(value: &mut serde_json::Value, sides: &[&Side]) {
    let captions = captions_json(sides);
    if captions.as_array().is_some_and(|c| !c.is_empty()) {
        value["captions"] = captions;
    }
}

/// `, "<key>": "<caption>"` for a JSONL row when `caption` is an image's, else nothing.
pub fn caption_field(key: &str, caption: Option<&Caption>) -> serde_json::Result<String> {
    Ok(match caption {
        Some(caption) => format!(", \"{key}\": {}", serde_json::to_string(&caption.text)?),
        None => String::new(),
    })
}

/// Embeds every supported file under `dir`; the flag is false when some file failed.
pub fn embed_dir(embedder: &Embedder, dir: &Path) -> anyhow::Result<(Side, bool)> {
    let inputs = collect(dir)?;
    if inputs.files.is_empty() {
        bail!("{}: no supported files", dir.display());
    }
    let (embedded, report) = embedder.files_with_captions(&inputs.files)?;
    let ok = embedder.summary(&report, &inputs.unsupported);
    let mut side = Side {
        files: Vec::new(),
        relative: Vec::new(),
        vectors: Vec::new(),
        captions: Vec::new(),
    };
    for (file, embedded) in inputs.files.iter().zip(embedded) {
        if let Some((vector, caption)) = embedded {
            side.relative.push(relative(&inputs.root, file));
            side.files.push(file.clone());
            side.vectors.push(vector);
            side.captions.push(caption);
        }
    }
    Ok((side, ok))
}

/// What did not pair: one `unmatched query: …` / `unmatched reference: …` line per file, and a
/// `duplicate reference: …` line per reference that shares its key with an earlier one (and so
/// is not used).
pub fn unmatched_lines(pairing: &Pairing, queries: &Side, references: &Side) -> Vec<String> {
    let q = pairing
        .unmatched_queries
        .iter()
        .map(|&i| format!("unmatched query: {}", queries.files[i].display()));
    let r = pairing
        .unmatched_references
        .iter()
        .map(|&i| format!("unmatched reference: {}", references.files[i].display()));
    let d = pairing.duplicate_references.iter().map(|&i| {
        let key = pair_key(&references.relative[i]);
        let kept = pairing
            .pairs
            .iter()
            .map(|p| p.reference)
            .chain(pairing.unmatched_references.iter().copied())
            .find(|&k| pair_key(&references.relative[k]) == key)
            .map_or_else(String::new, |k| references.files[k].display().to_string());
        format!(
            "duplicate reference: {} (same name as {kept}, which is used)",
            references.files[i].display()
        )
    });
    q.chain(r).chain(d).collect()
}

#[allow(clippy::print_stderr)]
pub fn run(args: ScoreArgs) -> anyhow::Result<ExitStatus> {
    let embedder = Embedder::new(&args.model, &args.cache)?;
    let (queries, ok_q) = embed_dir(&embedder, &args.query_dir)?;
    let (references, ok_r) = embed_dir(&embedder, &args.ref_dir)?;
    let ok = ok_q && ok_r;
    let mut out = std::io::stdout().lock();
    if !args.pairwise {
        let similarity = score_group(&queries.vectors, &references.vectors)?;
        if args.json {
            let mut value = serde_json::json!({
                "queries": queries.vectors.len(),
                "references": references.vectors.len(),
                "group_similarity": similarity,
            });
            add_captions(&mut value, &[&queries, &references]);
            writeln!(out, "{value}")?;
        } else {
            write_captions(&mut out, &[&queries, &references])?;
            writeln!(out, "Total query features: {}", queries.vectors.len())?;
            writeln!(
                out,
                "Total reference features: {}",
                references.vectors.len()
            )?;
            writeln!(out, "Group similarity: {}", round4(f64::from(similarity)))?;
        }
        return Ok(ExitStatus::from_ok(ok));
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
        // Images also carry their captions, after the reference's keys.
        jsonl += &format!(
            "{{\"query\": {}, \"reference\": {}, \"similarity\": {}{}{}}}\n",
            serde_json::to_string(&queries.files[row.query].display().to_string())?,
            serde_json::to_string(&references.files[row.reference].display().to_string())?,
            serde_json::to_string(&f64::from(row.similarity))?,
            caption_field("query_caption", queries.captions[row.query].as_ref())?,
            caption_field(
                "reference_caption",
                references.captions[row.reference].as_ref()
            )?,
        );
    }
    write_atomic(&args.output, jsonl.as_bytes())?;
    if args.json {
        let mut value = serde_json::json!({
            "common_keys": pairing.pairs.len(),
            "queries": rows.len(),
            "references": unique_references,
            "average_similarity": average,
            "unmatched": unmatched,
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
        writeln!(out, "Total query features: {}", rows.len())?;
        writeln!(out, "Total reference features: {}", unique_references)?;
        writeln!(out, "Avg. pairwise similarity: {}", round4(average))?;
        writeln!(
            out,
            "Pairwise similarity scores saved in '{}'.",
            args.output.display()
        )?;
    }
    Ok(ExitStatus::from_ok(ok))
}
