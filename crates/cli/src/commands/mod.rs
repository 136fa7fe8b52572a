//! One file per subcommand.

use crate::args::{Cli, Command};
use std::process::ExitCode;

pub mod convert;
mod embed;
mod inspect;
mod weights;

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Embed(args) => embed::run(args),
        Command::Inspect(command) => inspect::run(command),
        Command::Weights(command) => weights::run(command),
        Command::Convert(command) => convert::run(command),
    }
}
