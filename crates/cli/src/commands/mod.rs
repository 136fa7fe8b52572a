//! The command line: the subcommands, one file each, and the exit-status convention they share.
//! A command is its arguments, one call into the libraries, and its printing.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub mod cache;
pub mod classify;
pub mod convert;
pub mod embed;
pub mod eval;
pub mod inspect;
pub mod library;
pub mod probe;
pub mod score;
pub mod search;
pub mod serve;
pub mod train;
pub mod weights;

/// CLaMP 3 music information retrieval: text in 100 languages, sheet music, MIDI and audio in
/// one embedding space.
#[derive(Debug, Parser)]
#[command(name = "clamp3", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Embed files (or every supported file under a folder) into `.npy` vectors.
    Embed(embed::EmbedArgs),
    /// Show what the model would see for a file.
    #[command(subcommand)]
    Inspect(inspect::InspectCommand),
    /// Weight-file utilities.
    #[command(subcommand)]
    Weights(weights::WeightsCommand),
    /// Convert between music formats.
    #[command(subcommand)]
    Convert(convert::ConvertCommand),
    /// The files of a folder most similar to a query file or text.
    Search(search::SearchArgs),
    /// How similar two folders are: as groups, or file by file (`--pairwise`).
    Score(score::ScoreArgs),
    /// Retrieval metrics (MRR, Hit@1/10/100) of queries against their paired references.
    Eval(eval::EvalArgs),
    /// Zero-shot classification of music by the cosine to label texts.
    Classify(classify::ClassifyArgs),
    /// Serve the JSON API and the search page over HTTP.
    Serve(serve::ServeArgs),
    /// The feature cache: where it is, how big, and clearing it.
    #[command(subcommand)]
    Cache(cache::CacheCommand),
    /// Linear-probe classification: train on labelled files, predict new ones.
    #[command(subcommand)]
    Probe(probe::ProbeCommand),
    /// A music library that stays indexed: add folders once, search them many times.
    Library(library::LibraryArgs),
    /// Train: fine-tune CLaMP 3 on text–music pairs, or pre-train M3.
    #[command(subcommand)]
    Train(train::TrainCommand),
}

/// How a command ended; every command returns one (errors that stop it early are `Error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything worked: 0.
    Success,
    /// The command ran, but some inputs failed (listed on stderr): 1.
    Failure,
    /// The command could not run (bad arguments, a model that does not load, …): 2.
    Error,
}

impl ExitStatus {
    /// `Success` when `ok`, else `Failure`.
    pub fn from_ok(ok: bool) -> Self {
        if ok {
            ExitStatus::Success
        } else {
            ExitStatus::Failure
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        match status {
            ExitStatus::Success => ExitCode::SUCCESS,
            ExitStatus::Failure => ExitCode::from(1),
            ExitStatus::Error => ExitCode::from(2),
        }
    }
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Embed(args) => embed::run(args),
        Command::Inspect(command) => inspect::run(command),
        Command::Weights(command) => weights::run(command),
        Command::Convert(command) => convert::run(command),
        Command::Search(args) => search::run(args),
        Command::Score(args) => score::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Classify(args) => classify::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Cache(command) => cache::run(command),
        Command::Probe(command) => probe::run(command),
        Command::Train(command) => train::run(command),
        Command::Library(args) => library::run(args),
    }
}
