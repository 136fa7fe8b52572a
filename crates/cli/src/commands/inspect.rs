//! `clamp3 inspect`: what the model sees for a file, before segmenting.

use crate::args::InspectCommand;
use crate::model;
use anyhow::{bail, Context};
use clamp3_features::{input::read_input, FileKind, ModelInput};
use std::io::Write;
use std::process::ExitCode;

pub fn run(command: InspectCommand) -> anyhow::Result<ExitCode> {
    let json = match command {
        InspectCommand::Tokens { file, tokenizer } => {
            if FileKind::of(&file) != Some(FileKind::Text) {
                bail!("{}: token ids are for .txt files", file.display());
            }
            let tokenizer = model::load_tokenizer(tokenizer)?;
            let ModelInput::TokenIds(ids) =
                read_input(&file, Some(&tokenizer)).map_err(|e| e.with_path(&file))?
            else {
                bail!("{}: not a text file", file.display());
            };
            serde_json::to_string(&ids)?
        }
        InspectCommand::Patches { file } => {
            match read_input(&file, None).map_err(|e| e.with_path(&file))? {
                ModelInput::Patches(patches) => {
                    let rows: Vec<&[u8]> = patches.iter().map(|p| p.as_slice()).collect();
                    serde_json::to_string(&rows)?
                }
                _ => bail!("{}: patches are for scores (.abc, .mtf)", file.display()),
            }
        }
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{json}").context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}
