//! One file per subcommand.

use crate::args::{Cli, Command};
use std::process::ExitCode;

pub mod cache;
pub mod classify;
pub mod convert;
mod embed;
pub mod eval;
mod inspect;
pub mod probe;
pub mod score;
pub mod search;
mod weights;

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Embed(args) => embed::run(args),
        Command::Inspect(command) => inspect::run(command),
        Command::Weights(command) => weights::run(command),
        Command::Convert(command) => convert::run(command),
        Command::Search(args) => search::run(args),
        Command::Score(args) => score::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Classify(args) => classify::run(args),
        Command::Cache(command) => cache::run(command),
        Command::Probe(command) => probe::run(command),
    }
}
