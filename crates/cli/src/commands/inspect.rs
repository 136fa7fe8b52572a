//! `clamp3 inspect`: what the model sees for a file, before segmenting.

use super::ExitStatus;
use crate::args::ModelArgs;
use anyhow::bail;
use clamp3_engine::{Engine, Item, Silent};
use clamp3_features::{FileKind, ModelInput};
use clap::Subcommand;
use std::io::Write;
use std::path::PathBuf;

/// `clamp3 inspect`.
#[derive(Debug, Subcommand)]
pub enum InspectCommand {
    /// Print the token ids of a text file (a JSON array), before segmenting.
    Tokens {
        /// A `.txt` file.
        file: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Print the patches of a score or MIDI file (a JSON array of integer arrays), before
    /// segmenting.
    Patches {
        /// A score (`.abc`, `.xml`, `.musicxml`, `.mxl`) or MIDI (`.mid`, `.midi`, `.mtf`) file.
        file: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Print the BLIP caption an image is embedded as (first line) and its BLIP token ids
    /// (second line, a JSON array from `[DEC]` to `[SEP]`).
    Caption {
        /// An image (`.png`, `.jpg`, `.jpeg`).
        file: PathBuf,
        #[command(flatten)]
        model: ModelArgs,
    },
}

pub fn run(command: InspectCommand) -> anyhow::Result<ExitStatus> {
    let (file, model, want_tokens) = match command {
        InspectCommand::Tokens { file, model } => (file, model, true),
        InspectCommand::Patches { file, model } => (file, model, false),
        InspectCommand::Caption { file, model } => return caption(&file, &model),
    };
    if want_tokens && FileKind::of(&file) != Some(FileKind::Text) {
        bail!("{}: token ids are for .txt files", file.display());
    }
    // Only the preprocessing runs: no weights are loaded.
    let engine = Engine::new(&model.spec()?, None)?;
    let json = match engine.model_input(&Item::File(file.clone()), &Silent)? {
        ModelInput::TokenIds(ids) if want_tokens => serde_json::to_string(&ids)?,
        ModelInput::Patches(patches) if !want_tokens => {
            let rows: Vec<&[u8]> = patches.iter().map(|p| p.as_slice()).collect();
            serde_json::to_string(&rows)?
        }
        _ if want_tokens => bail!("{}: not a text file", file.display()),
        _ => bail!(
            "{}: patches are for scores and MIDI (.abc, .xml, .mxl, .mid, .mtf)",
            file.display()
        ),
    };
    writeln!(std::io::stdout().lock(), "{json}")?;
    Ok(ExitStatus::Success)
}

/// `clamp3 inspect caption`: only BLIP runs (captions are not cached here).
fn caption(file: &std::path::Path, model: &ModelArgs) -> anyhow::Result<ExitStatus> {
    let engine = Engine::new(&model.spec()?, None)?;
    let caption = engine.caption(&Item::File(file.to_path_buf()), &Silent)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", caption.text)?;
    writeln!(out, "{}", serde_json::to_string(&caption.ids)?)?;
    Ok(ExitStatus::Success)
}
