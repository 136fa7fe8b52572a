//! `clamp3 search`: the files of a folder most similar to a query, as the reference's
//! `clamp3_search.py`.

use super::ExitStatus;
use crate::args::{CacheArgs, ModelArgs};
use crate::embedding::{collect, relative, Embedder};
use anyhow::bail;
use clamp3_retrieval::similarity::{round4, search};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `clamp3 search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The query file (any supported modality) then the folder to search; with `--text`, only
    /// the folder.
    #[arg(value_name = "QUERY> <REF_DIR", num_args = 1..=2, required = true)]
    pub paths: Vec<PathBuf>,
    /// A literal text query (any of 100 languages) instead of a query file.
    #[arg(long)]
    pub text: Option<String>,
    /// How many results to print.
    #[arg(long, default_value_t = 10)]
    pub top_k: usize,
    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// A name in the results: the path under the folder without its extension, `/`-separated.
pub fn display_name(root: &Path, file: &Path) -> String {
    let mut name = relative(root, file);
    name.set_extension("");
    slashed(&name)
}

fn slashed(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The result names of `files`: [`display_name`], except that files whose names would clash
/// (`a.abc` and `a.mid`) keep their extension, and are reported, so no result is ambiguous
/// (the reference keys results by name and silently keeps one of them).
fn result_names(root: &Path, files: &[&PathBuf]) -> Vec<String> {
    let plain: Vec<String> = files.iter().map(|f| display_name(root, f)).collect();
    let mut count: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for name in &plain {
        *count.entry(name.as_str()).or_default() += 1;
    }
    let clashing: Vec<bool> = plain.iter().map(|n| count[n.as_str()] > 1).collect();
    let names: Vec<String> = files
        .iter()
        .zip(&plain)
        .zip(&clashing)
        .map(|((file, name), &clash)| {
            if clash {
                slashed(&relative(root, file))
            } else {
                name.clone()
            }
        })
        .collect();
    let clashes: Vec<&String> = names
        .iter()
        .zip(&clashing)
        .filter(|(_, &c)| c)
        .map(|(n, _)| n)
        .collect();
    if !clashes.is_empty() {
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "note: {} files share a name without their extension; they are listed with it: {}",
                clashes.len(),
                clashes
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    names
}

pub fn run(args: SearchArgs) -> anyhow::Result<ExitStatus> {
    let (query, ref_dir) = match (&args.text, args.paths.as_slice()) {
        (Some(_), [dir]) => (None, dir),
        (None, [query, dir]) => (Some(query), dir),
        (Some(_), _) => bail!("with --text, give only the folder to search"),
        (None, _) => {
            bail!("give a query file and the folder to search (or --text \"…\" and the folder)")
        }
    };
    let inputs = collect(ref_dir)?;
    if inputs.files.is_empty() {
        bail!("{}: no supported files to search", ref_dir.display());
    }
    let embedder = Embedder::new(&args.model, &args.cache)?;
    let (query_vector, caption) = match (query, &args.text) {
        (Some(path), _) => embedder.query(path)?,
        (None, Some(text)) => (embedder.text(text)?, None),
        (None, None) => bail!("no query"),
    };
    let (vectors, report) = embedder.files(&inputs.files)?;
    let ok = embedder.summary(&report, &inputs.unsupported);
    let (names, references): (Vec<_>, Vec<_>) = inputs
        .files
        .iter()
        .zip(vectors)
        .filter_map(|(file, v)| v.map(|v| (file, v)))
        .unzip();
    let hits = search(&query_vector, &references, args.top_k);
    let result_names = result_names(&inputs.root, &names);
    let mut out = std::io::stdout().lock();
    if args.json {
        let results: Vec<_> = hits
            .iter()
            .map(|h| {
                serde_json::json!({
                    "name": result_names[h.index],
                    "path": names[h.index].display().to_string(),
                    "similarity": h.similarity,
                })
            })
            .collect();
        let mut value = serde_json::json!({
            "query": match query {
                Some(path) => path.display().to_string(),
                None => args.text.clone().unwrap_or_default(),
            },
            "candidates": references.len(),
            "results": results,
        });
        if let Some(caption) = &caption {
            value["caption"] = caption.text.clone().into();
            value["caption_ids"] = caption.ids.clone().into();
        }
        writeln!(out, "{value}")?;
    } else {
        if let Some(caption) = &caption {
            // The image was searched as this text: it decides the results.
            writeln!(out, "Query caption: {}", caption.text)?;
        }
        writeln!(
            out,
            "Top {} results among {} candidates:",
            hits.len(),
            references.len()
        )?;
        for h in &hits {
            // `round(x, 4)` as the reference prints it (`0.212`, not `0.2120`).
            writeln!(
                out,
                "{} {}",
                result_names[h.index],
                round4(f64::from(h.similarity))
            )?;
        }
    }
    Ok(ExitStatus::from_ok(ok))
}
