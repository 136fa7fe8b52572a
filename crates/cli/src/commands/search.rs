//! `clamp3 search`: the files of a folder most similar to a query, as the reference's
//! `clamp3_search.py`.

use super::cache::{collect, relative, CacheArgs, Embedder};
use crate::args::ModelArgs;
use anyhow::bail;
use clamp3_retrieval::similarity::{round4, search};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    name.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[allow(clippy::print_stdout)]
pub fn run(args: SearchArgs) -> anyhow::Result<ExitCode> {
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
    let query_vector = match (query, &args.text) {
        (Some(path), _) => embedder
            .file(path)
            .map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?,
        (None, Some(text)) => embedder.text(text)?,
        (None, None) => bail!("no query"),
    };
    let (vectors, report) = embedder.files(&inputs.files);
    let ok = embedder.summary(&report, &inputs.unsupported);
    let (names, references): (Vec<_>, Vec<_>) = inputs
        .files
        .iter()
        .zip(vectors)
        .filter_map(|(file, v)| v.map(|v| (file, v)))
        .unzip();
    let hits = search(&query_vector, &references, args.top_k);
    if args.json {
        let results: Vec<_> = hits
            .iter()
            .map(|h| {
                serde_json::json!({
                    "name": display_name(&inputs.root, names[h.index]),
                    "path": names[h.index].display().to_string(),
                    "similarity": h.similarity,
                })
            })
            .collect();
        let value = serde_json::json!({
            "query": match query {
                Some(path) => path.display().to_string(),
                None => args.text.clone().unwrap_or_default(),
            },
            "candidates": references.len(),
            "results": results,
        });
        println!("{value}");
    } else {
        println!(
            "Top {} results among {} candidates:",
            hits.len(),
            references.len()
        );
        for h in &hits {
            // `round(x, 4)` as the reference prints it (`0.212`, not `0.2120`).
            println!(
                "{} {}",
                display_name(&inputs.root, names[h.index]),
                round4(f64::from(h.similarity))
            );
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
