//! `clamp3 embed`: files → `.npy` vectors, as the reference's `extract_clamp3.py`.

use crate::args::EmbedArgs;
use crate::batch::{self, Outcome};
use crate::model;
use anyhow::bail;
use clamp3_features::{embed, FileKind, Pooling};
use std::collections::HashMap;
use std::process::ExitCode;

pub fn run(args: EmbedArgs) -> anyhow::Result<ExitCode> {
    let inputs = batch::collect(&args.input, |p| FileKind::of(p).is_some())?;
    if inputs.files.is_empty() {
        bail!(
            "{}: no supported files (text, scores, MIDI, audio or MERT .npy) found",
            args.input.display()
        );
    }
    let outputs: Vec<_> = inputs
        .files
        .iter()
        .map(|f| batch::output_path(&inputs.root, f, &args.output_dir, "npy"))
        .collect();
    refuse_colliding_outputs(&inputs.files, &outputs)?;
    let loaded = model::load(&args.model)?;
    let pooling = if args.local {
        Pooling::Local
    } else {
        Pooling::Global
    };
    let output_of: HashMap<_, _> = inputs.files.iter().zip(&outputs).collect();
    let report = batch::run(&inputs.files, true, "embedding", |file| {
        let out = output_of[&file.to_path_buf()];
        if !args.force && out.exists() {
            return Ok(Outcome::Skipped);
        }
        let input = loaded.read_input(file)?;
        let embedding = embed(&loaded.model, &input, pooling)?;
        batch::write_atomic(out, &embedding.to_npy())?;
        Ok(Outcome::Done)
    });
    Ok(report.finish("embedded", &inputs.unsupported))
}

/// `a.txt` and `a.abc` in one folder would both write `a.npy`; say so before doing any work.
fn refuse_colliding_outputs(
    files: &[std::path::PathBuf],
    outputs: &[std::path::PathBuf],
) -> anyhow::Result<()> {
    let mut seen: HashMap<&std::path::PathBuf, &std::path::PathBuf> = HashMap::new();
    let mut clashes = Vec::new();
    for (file, out) in files.iter().zip(outputs) {
        if let Some(other) = seen.insert(out, file) {
            clashes.push(format!(
                "{} and {} → {}",
                other.display(),
                file.display(),
                out.display()
            ));
        }
    }
    if !clashes.is_empty() {
        bail!(
            "several inputs would write the same output file (rename one of each pair):\n  {}",
            clashes.join("\n  ")
        );
    }
    Ok(())
}
