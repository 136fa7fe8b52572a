//! `clamp3 weights`: weight-file utilities.

use super::ExitStatus;
use clap::Subcommand;
use std::path::PathBuf;

/// `clamp3 weights`.
#[derive(Debug, Subcommand)]
pub enum WeightsCommand {
    /// Convert a PyTorch checkpoint to safetensors, which later runs memory-map.
    Convert {
        /// The `.pth` / `.bin` checkpoint.
        input: PathBuf,
        /// The `.safetensors` file to write.
        output: PathBuf,
    },
}

pub fn run(command: WeightsCommand) -> anyhow::Result<ExitStatus> {
    match command {
        WeightsCommand::Convert { input, output } => {
            let count = clamp3_models::weights::convert_to_safetensors(&input, &output)?;
            #[allow(clippy::print_stderr)]
            {
                eprintln!("wrote {count} tensors to {}", output.display());
            }
            Ok(ExitStatus::Success)
        }
    }
}
