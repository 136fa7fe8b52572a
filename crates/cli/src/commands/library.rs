//! `clamp3 library`: a collection embedded once and kept indexed (`add`), asked by text or file
//! (`search`), by example (`similar`), listed (`list`, `info`), checked (`verify`), pruned
//! (`rm`) and moved between a folder and a Qdrant server (`migrate`). A library is a folder or
//! a collection on a Qdrant server or cluster (`--library qdrant://HOST:PORT/COLLECTION`), which
//! many machines can fill at once (`add --shard I/N`).

use super::ExitStatus;
use crate::args::{CacheArgs, ModelArgs, QdrantArgs};
use crate::batch::plural;
use crate::embedding::{engine, Bar, Embedder};
use clamp3_library::{AddOptions, Filter, Hit, Library, Shard};
use clamp3_retrieval::similarity::round4;
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `clamp3 library`.
#[derive(Debug, Args)]
pub struct LibraryArgs {
    /// The library: a folder, or a collection on a Qdrant server or cluster,
    /// `qdrant://HOST:PORT/COLLECTION` (the gRPC port, 6334 by default; `qdrants://` for TLS).
    /// Default: `$CLAMP3_LIBRARY`, else `$XDG_DATA_HOME/clamp3/library`, else
    /// `~/.local/share/clamp3/library`.
    #[arg(long, global = true, value_name = "DIR|URL")]
    pub library: Option<String>,
    #[command(flatten)]
    pub qdrant: QdrantArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: LibraryCommand,
}

/// The `library` subcommands.
#[derive(Debug, Subcommand)]
pub enum LibraryCommand {
    /// Embed new and changed files of folders (or files) into the library; forget vanished ones.
    Add {
        /// Folders (searched recursively) and files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Files embedded and stored per durable step.
        #[arg(long, default_value_t = 64)]
        chunk: usize,
        /// Keep items whose files under these folders are gone.
        #[arg(long)]
        keep_vanished: bool,
        /// Split extraction: take only share I of N (0 <= I < N) of the files, by content
        /// hash. Run N workers, each on its machine with the same files, into one `qdrant://`
        /// library; `library info` shows each share's progress. Re-run a worker to resume it.
        #[arg(long, value_name = "I/N")]
        shard: Option<Shard>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cache: CacheArgs,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// The items nearest to a text (any of 100 languages) or to a file of any modality.
    Search {
        /// The query: a file (if one exists at this path) or a text.
        query: String,
        /// Treat the query as text even if a file has that name.
        #[arg(long)]
        text: bool,
        #[command(flatten)]
        results: ResultArgs,
        #[command(flatten)]
        cache: CacheArgs,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// The items nearest to one already in the library (given by id or path).
    Similar {
        /// The item: its id (16 hex digits) or one of its files.
        item: String,
        #[command(flatten)]
        results: ResultArgs,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// List items.
    List {
        /// Only items passing these conditions (`modality=audio`, `format=abc,xml`,
        /// `composer=Bach`; repeat to require several).
        #[arg(long)]
        filter: Vec<String>,
        /// Skip this many items.
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// At most this many items.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Forget items (by id) or files (by path; a folder forgets everything under it).
    Rm {
        /// Ids or paths.
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// Counts by modality and model, and the size on disk.
    Info {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy every item (all models' vectors) from one library to another: a folder into a
    /// `qdrant://` collection or back. Re-running skips what is there; the copy is checked by
    /// counts and a sample of items compared.
    Migrate {
        /// The library to copy (folder or `qdrant://` URL).
        from: String,
        /// The library to copy into (folder or `qdrant://` URL; created if absent).
        to: String,
        /// Points per write.
        #[arg(long, default_value_t = 256)]
        batch: usize,
        /// Items compared in both afterwards.
        #[arg(long, default_value_t = 1000)]
        sample: usize,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check the library against its files: missing, changed, damaged items.
    Verify {
        /// Hash every file again, not only those whose size or time changed.
        #[arg(long)]
        rehash: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// How results are chosen and printed.
#[derive(Debug, Args)]
pub struct ResultArgs {
    /// How many results.
    #[arg(long, default_value_t = 10)]
    pub top_k: usize,
    /// Only items passing these conditions (`modality=audio`, `format=abc,xml`,
    /// `composer=Bach`; repeat to require several).
    #[arg(long)]
    pub filter: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_filters(filters: &[String]) -> anyhow::Result<Filter> {
    let mut all = Filter::default();
    for f in filters {
        all = all.and(f.parse()?);
    }
    Ok(all)
}

pub fn run(args: LibraryArgs) -> anyhow::Result<ExitStatus> {
    if let LibraryCommand::Migrate {
        from,
        to,
        batch,
        sample,
        json,
    } = &args.command
    {
        return migrate(&args.qdrant, from, to, *batch, *sample, *json);
    }
    let location = args.qdrant.location(args.library.as_deref())?;
    let library = Library::open_at(&location)?;
    match args.command {
        LibraryCommand::Migrate { .. } => unreachable!("handled above"),
        LibraryCommand::Add {
            paths,
            chunk,
            keep_vanished,
            shard,
            json,
            cache,
            model,
        } => add(
            &library,
            &paths,
            AddOptions {
                chunk,
                forget_vanished: !keep_vanished,
                shard,
                engine: clamp3_engine::Options {
                    npy: cache.npy_reading(),
                    ..clamp3_engine::Options::default()
                },
            },
            json,
            &cache,
            &model,
        ),
        LibraryCommand::Search {
            query,
            text,
            results,
            cache,
            model,
        } => {
            let embedder = Embedder::new(&model, &cache)?;
            let filter = parse_filters(&results.filter)?;
            let file = Path::new(&query);
            let (vector, caption) = if !text && file.is_file() {
                embedder.query(file)?
            } else {
                (embedder.text(&query)?, None)
            };
            let hits = library.search(embedder.engine(), &vector, results.top_k, &filter)?;
            print_hits(&query, caption.map(|c| c.text), &hits, results.json)
        }
        LibraryCommand::Similar {
            item,
            results,
            model,
        } => {
            let record = library.resolve(&item)?;
            let filter = parse_filters(&results.filter)?;
            let model = model.spec()?.model.name();
            let hits = library.similar_model(model, record.id, results.top_k, &filter)?;
            print_hits(
                &record.path.display().to_string(),
                None,
                &hits,
                results.json,
            )
        }
        LibraryCommand::List {
            filter,
            offset,
            limit,
            json,
        } => {
            let filter = parse_filters(&filter)?;
            let mut out = std::io::stdout().lock();
            for record in library.items(offset, limit, &filter)? {
                if json {
                    writeln!(out, "{}", serde_json::to_string(&record)?)?;
                } else {
                    writeln!(
                        out,
                        "{}  {:<6} {:<5} {}  {}",
                        record.id,
                        record.modality,
                        record.format,
                        record.name(),
                        record.path.display()
                    )?;
                }
            }
            Ok(ExitStatus::Success)
        }
        LibraryCommand::Rm { targets } => {
            let removed = library.remove(&targets)?;
            #[allow(clippy::print_stderr)]
            {
                eprintln!("removed {} item{}", removed.len(), plural(removed.len()));
            }
            Ok(ExitStatus::Success)
        }
        LibraryCommand::Info { json } => {
            let info = library.info()?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&info)?)?;
                return Ok(ExitStatus::Success);
            }
            writeln!(out, "library: {}", info.path.display())?;
            writeln!(out, "items: {}", info.items)?;
            for (modality, n) in &info.by_modality {
                writeln!(out, "  {modality}: {n}")?;
            }
            for (model, m) in &info.models {
                writeln!(out, "model {model}: {} vectors of {} dims", m.items, m.dim)?;
            }
            for (shard, s) in &info.shards {
                writeln!(
                    out,
                    "shard {shard}: {} of {} items{}",
                    s.items,
                    s.total,
                    if s.items >= s.total { " (done)" } else { "" }
                )?;
            }
            writeln!(out, "HNSW-indexed vectors: {}", info.indexed_vectors)?;
            match &info.cluster {
                None => writeln!(
                    out,
                    "on disk: {:.1} MB in {} store shards",
                    info.bytes_on_disk as f64 / 1e6,
                    info.edge_shards.unwrap_or(1)
                )?,
                Some(c) => {
                    let active = c.replicas.iter().filter(|r| r.state == "Active").count();
                    writeln!(
                        out,
                        "qdrant {}: {} shard{}, replication factor {}, {} of {} replicas active{}{}{}",
                        c.server_version,
                        c.shards,
                        plural(c.shards as usize),
                        c.replication_factor,
                        active,
                        c.replicas.len(),
                        if c.transfers > 0 {
                            format!(", {} shard transfers under way", c.transfers)
                        } else {
                            String::new()
                        },
                        if c.on_disk { ", vectors on disk" } else { "" },
                        c.quantization
                            .as_ref()
                            .map(|q| format!(", {q} quantization"))
                            .unwrap_or_default(),
                    )?;
                    for r in c.replicas.iter().filter(|r| r.state != "Active") {
                        writeln!(out, "  shard {} on peer {}: {}", r.shard, r.peer, r.state)?;
                    }
                }
            }
            Ok(ExitStatus::Success)
        }
        LibraryCommand::Verify { rehash, json } => {
            let report = library.verify(rehash)?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                writeln!(
                    out,
                    "checked {} item{} and {} file{}",
                    report.items,
                    plural(report.items),
                    report.files,
                    plural(report.files)
                )?;
                for (id, path) in &report.missing {
                    writeln!(out, "missing: {id} {}", path.display())?;
                }
                for (id, path) in &report.changed {
                    writeln!(out, "changed: {id} {}", path.display())?;
                }
                for (id, why) in &report.damaged {
                    writeln!(out, "damaged: {id}: {why}")?;
                }
                if !report.is_clean() {
                    writeln!(
                        out,
                        "run `clamp3 library add` on the folders to bring the library up to date"
                    )?;
                }
            }
            Ok(ExitStatus::from_ok(report.is_clean()))
        }
    }
}

fn migrate(
    qdrant: &QdrantArgs,
    from: &str,
    to: &str,
    batch: usize,
    sample: usize,
    json: bool,
) -> anyhow::Result<ExitStatus> {
    let source = Library::open_at(&qdrant.location(Some(from))?)?;
    let target = Library::open_at(&qdrant.location(Some(to))?)?;
    let started = Instant::now();
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "migrating {bar:30} {pos}/{len} items ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let report = source.migrate_to(&target, batch, sample, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    if json {
        writeln!(
            std::io::stdout().lock(),
            "{}",
            serde_json::to_string_pretty(&report)?
        )?;
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "{} item{} in {}: {} copied, {} already there; {} now holds {}; {} sampled, {} differ ({:.1} s)",
            report.source_items,
            plural(report.source_items),
            source.path().display(),
            report.copied,
            report.skipped,
            target.path().display(),
            report.target_items,
            report.sampled,
            report.mismatched.len(),
            started.elapsed().as_secs_f64()
        );
        for id in &report.damaged {
            eprintln!("error: item {id} is damaged in the source (no record); not copied");
        }
        for (id, why) in &report.mismatched {
            eprintln!("error: item {id}: {why}");
        }
        if !report.is_verified() {
            eprintln!("the migration is not verified: run it again");
        }
    }
    Ok(ExitStatus::from_ok(report.is_verified()))
}

fn add(
    library: &Library,
    paths: &[PathBuf],
    options: AddOptions,
    json: bool,
    cache: &CacheArgs,
    model: &ModelArgs,
) -> anyhow::Result<ExitStatus> {
    let engine = engine(model, cache)?;
    let report = {
        let bar = Bar::new("adding");
        library.add(&engine, paths, &options, &bar)?
    };
    if json {
        writeln!(
            std::io::stdout().lock(),
            "{}",
            serde_json::to_string_pretty(&report)?
        )?;
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "{} file{}: {} added, {} got this model's vector, {} relinked (moved, renamed, duplicated), \
             {} unchanged, {} forgotten ({} item{} deleted), {} from the feature cache",
            report.files,
            plural(report.files),
            report.added,
            report.vectors_added,
            report.relinked,
            report.unchanged,
            report.forgotten,
            report.items_deleted,
            plural(report.items_deleted),
            report.from_cache
        );
        if let Some(shard) = &options.shard {
            eprintln!(
                "share {}: {} file{} left to the other shares",
                shard.tag(),
                report.other_shards,
                plural(report.other_shards)
            );
        }
        if report.retried_calls > 0 {
            eprintln!(
                "{} call{} to the Qdrant server retried after transient errors",
                report.retried_calls,
                plural(report.retried_calls)
            );
        }
        if !report.unsupported.is_empty() {
            eprintln!(
                "ignored {} file{} of unsupported type",
                report.unsupported.len(),
                plural(report.unsupported.len())
            );
        }
        for (_, message) in &report.failed {
            eprintln!("error: {message}");
        }
        if !report.failed.is_empty() {
            eprintln!(
                "{} file{} failed",
                report.failed.len(),
                plural(report.failed.len())
            );
        }
    }
    Ok(ExitStatus::from_ok(report.failed.is_empty()))
}

fn print_hits(
    query: &str,
    caption: Option<String>,
    hits: &[Hit],
    json: bool,
) -> anyhow::Result<ExitStatus> {
    let mut out = std::io::stdout().lock();
    if json {
        let value = serde_json::json!({
            "query": query,
            "caption": caption,
            "results": hits,
        });
        writeln!(out, "{value}")?;
        return Ok(ExitStatus::Success);
    }
    if let Some(caption) = caption {
        writeln!(out, "Query caption: {caption}")?;
    }
    for hit in hits {
        writeln!(
            out,
            "{:<8} {}  {:<6} {}  {}",
            round4(f64::from(hit.score)),
            hit.item.id,
            hit.item.modality,
            hit.item.name(),
            hit.item.path.display()
        )?;
    }
    Ok(ExitStatus::Success)
}
