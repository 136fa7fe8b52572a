//! `clamp3`: the command-line front of the CLaMP 3 pipeline. Every subcommand lives in
//! `commands/`; the libraries do the work, this crate parses arguments and prints.

use clap::Parser;
use std::process::ExitCode;

mod args;
mod batch;
mod commands;
mod model;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`clamp3 inspect … | head`) is not a failure (as ripgrep does).
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {err:#}");
            }
            ExitCode::from(2)
        }
    }
}
