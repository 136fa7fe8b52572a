//! `clamp3`: the command-line front of the CLaMP 3 pipeline. Every subcommand lives in
//! `commands/`; the libraries do the work, this crate parses arguments and prints.

use clap::Parser;
use commands::ExitStatus;
use std::process::ExitCode;

mod args;
mod batch;
mod commands;
mod embedding;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    let status = match commands::run(cli) {
        Ok(status) => status,
        // A closed pipe (`clamp3 search … | head -1`) is not a failure (as ripgrep does).
        Err(err) if is_broken_pipe(&err) => ExitStatus::Success,
        Err(err) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {err:#}");
            }
            ExitStatus::Error
        }
    };
    status.into()
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
