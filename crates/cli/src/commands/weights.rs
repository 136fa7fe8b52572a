//! `clamp3 weights`: weight-file utilities.

use crate::args::WeightsCommand;
use std::process::ExitCode;

pub fn run(command: WeightsCommand) -> anyhow::Result<ExitCode> {
    match command {
        WeightsCommand::Convert { input, output } => {
            let count = clamp3_models::weights::convert_to_safetensors(&input, &output)?;
            #[allow(clippy::print_stderr)]
            {
                eprintln!("wrote {count} tensors to {}", output.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
