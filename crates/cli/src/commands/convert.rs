//! `clamp3 convert`: music format conversions and image captions, file or folder, in parallel.

use super::ExitStatus;
use crate::batch::{self, Outcome};
use crate::embedding::Bar;
use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

/// The conversions.
#[derive(Debug, Subcommand)]
pub enum ConvertCommand {
    /// Standard ABC → interleaved ABC, as the reference's `batch_interleaved_abc.py`
    /// (output keeps the relative path and name).
    Interleave(ConvertArgs),
    /// MusicXML (`.xml`, `.musicxml`, `.mxl`) → standard ABC, as the reference's
    /// `xml2abc.py -d 8 -x` (→ `<stem>.abc`).
    Xml2abc(ConvertArgs),
    /// ABC (interleaved or standard, files named `*.abc`) → MusicXML, as the reference's
    /// `batch_abc2xml.py`: the first tune of each file (→ `<stem>.xml`).
    Abc2xml {
        #[command(flatten)]
        io: ConvertArgs,
        /// The `<encoding-date>` to write, YYYY-MM-DD. Default: `SOURCE_DATE_EPOCH` (seconds
        /// since 1970, as reproducible builds set it) if set, else today (UTC).
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<String>,
    },
    /// MIDI → MTF text, as the reference's `batch_midi2mtf.py --m3_compatible` (→ `<stem>.mtf`).
    Midi2mtf {
        #[command(flatten)]
        io: ConvertArgs,
        /// Keep the text meta messages (text, lyrics, track names, …) that m3 mode drops.
        #[arg(long)]
        keep_text: bool,
    },
    /// MTF text → MIDI, as the reference's `batch_mtf2midi.py` (→ `<stem>.mid`).
    Mtf2midi(ConvertArgs),
    /// Audio (`.wav`, `.flac`, `.mp3`, `.ogg`) → MERT features `[1, windows, H]` float32, as the
    /// reference's `extract_mert.py --mean_features` (→ `<stem>.npy`).
    Audio2mert {
        #[command(flatten)]
        io: ConvertArgs,
        /// MERT model folder (`config.json` and `model.safetensors` or `pytorch_model.bin`).
        /// Default: m-a-p/MERT-v1-95M, downloaded once from the Hugging Face Hub into its cache
        /// (licensed CC-BY-NC-4.0: non-commercial use only).
        #[arg(long, env = "CLAMP3_MERT", value_name = "DIR")]
        mert: Option<PathBuf>,
        /// Where to run MERT.
        #[arg(long, value_enum, default_value_t)]
        device: crate::args::DeviceArg,
    },
    /// Images → BLIP captions, as the reference's `image_captioning.py` `process_images`
    /// (→ `<stem>.txt`).
    ///
    /// Every file whose name ends in `.jpg` or `.png` (any case; `.jpeg` and other types are
    /// skipped, as the reference skips them) gets `<stem>.txt` holding its caption, without a
    /// newline, mirroring the input's folders (each input folder gets its output folder, as the
    /// reference makes them).
    Caption {
        #[command(flatten)]
        io: ConvertArgs,
        /// BLIP captioning folder (`config.json`, `model.safetensors` or `pytorch_model.bin`,
        /// `preprocessor_config.json`, `tokenizer.json`). Default:
        /// Salesforce/blip-image-captioning-base, downloaded once from the Hugging Face Hub.
        #[arg(long, env = "CLAMP3_BLIP", value_name = "DIR")]
        blip: Option<PathBuf>,
        /// Where to run BLIP.
        #[arg(long, value_enum, default_value_t)]
        device: crate::args::DeviceArg,
    },
}

/// Image files `caption` reads: `process_images` keeps names ending in these (lower-cased).
const CAPTION_EXTENSIONS: [&str; 2] = ["jpg", "png"];

fn caption(
    io: &ConvertArgs,
    blip: Option<&Path>,
    device: crate::args::DeviceArg,
) -> anyhow::Result<ExitStatus> {
    let device = clamp3_engine::DeviceChoice::from(device).device()?;
    let captioner = clamp3_engine::families::clamp3::load_captioner(blip, &device)?;
    mirror_folders(&io.input, &io.output_dir)?;
    convert_each(
        io,
        &CAPTION_EXTENSIONS,
        "captioned",
        |root, file| batch::output_path(root, file, &io.output_dir, "txt"),
        |file| {
            let bytes = std::fs::read(file)?;
            // As `process_images` writes it: the caption, no newline.
            Ok(captioner.caption(&bytes)?.text.into_bytes())
        },
    )
}

/// Creates `output_dir/<folder>` for every folder under `input` (nothing when it is a file),
/// except the output folder itself when it lies inside `input`.
fn mirror_folders(input: &Path, output_dir: &Path) -> anyhow::Result<()> {
    if !input.is_dir() {
        return Ok(());
    }
    let output = std::fs::canonicalize(output_dir).ok();
    let mut folders = Vec::new();
    let walk = walkdir::WalkDir::new(input)
        .into_iter()
        .filter_entry(|e| output.is_none() || std::fs::canonicalize(e.path()).ok() != output);
    for entry in walk {
        let entry = entry.with_context(|| format!("walking {}", input.display()))?;
        if entry.file_type().is_dir() {
            folders.push(batch::mirrored_path(input, entry.path(), output_dir));
        }
    }
    for folder in folders {
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("creating {}", folder.display()))?;
    }
    Ok(())
}

/// Audio files `audio2mert` reads.
const AUDIO_EXTENSIONS: [&str; 4] = ["wav", "flac", "mp3", "ogg"];

fn audio2mert(
    io: &ConvertArgs,
    mert: Option<&Path>,
    device: crate::args::DeviceArg,
) -> anyhow::Result<ExitStatus> {
    let device = clamp3_engine::DeviceChoice::from(device).device()?;
    let model = clamp3_engine::families::clamp3::load_mert(mert, &device, &Bar::new("loading"))?;
    convert_each(
        io,
        &AUDIO_EXTENSIONS,
        "extracted",
        |root, file| batch::output_path(root, file, &io.output_dir, "npy"),
        |file| {
            let features = clamp3_features::audio::mert_features(&model, file)?;
            Ok(clamp3_io::npy::encode_f32(&features.shape, &features.data))
        },
    )
}

/// Input and output of a conversion.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// A file, or a folder walked recursively.
    pub input: PathBuf,
    /// Where to write the results, mirroring the input's folders.
    pub output_dir: PathBuf,
    /// Redo outputs that already exist.
    #[arg(long)]
    pub force: bool,
}

fn has_extension(path: &Path, extensions: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| extensions.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "not valid UTF-8 text (byte {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Converts every matching file under `io.input`; `target` names the output of a file.
fn convert_each(
    io: &ConvertArgs,
    extensions: &[&str],
    verb: &str,
    target: impl Fn(&Path, &Path) -> PathBuf + Sync,
    convert: impl Fn(&Path) -> anyhow::Result<Vec<u8>> + Sync,
) -> anyhow::Result<ExitStatus> {
    convert_matching(io, |p| has_extension(p, extensions), verb, target, convert)
}

/// [`convert_each`] for the files `supported` accepts.
fn convert_matching(
    io: &ConvertArgs,
    supported: impl Fn(&Path) -> bool,
    verb: &str,
    target: impl Fn(&Path, &Path) -> PathBuf + Sync,
    convert: impl Fn(&Path) -> anyhow::Result<Vec<u8>> + Sync,
) -> anyhow::Result<ExitStatus> {
    let inputs = batch::collect(&io.input, supported)?;
    let outputs: Vec<PathBuf> = inputs
        .files
        .iter()
        .map(|f| target(&inputs.root, f))
        .collect();
    batch::refuse_colliding_outputs(&inputs.files, &outputs)?;
    let output_of: std::collections::HashMap<&PathBuf, &PathBuf> =
        inputs.files.iter().zip(&outputs).collect();
    let report = batch::run(&inputs.files, true, verb, |file| {
        let out = output_of
            .get(&file.to_path_buf())
            .copied()
            .context("no output path")?;
        if !io.force && out.exists() {
            return Ok(Outcome::Skipped);
        }
        batch::write_atomic(out, &convert(file)?)?;
        Ok(Outcome::Done)
    });
    Ok(report.finish(verb, &inputs.unsupported))
}

/// The `<encoding-date>`: `--date`, else `SOURCE_DATE_EPOCH`, else today (UTC).
fn encoding_date(date: Option<&str>) -> anyhow::Result<String> {
    use clamp3_formats::abc2xml::{date_from_unix, is_valid_date};
    if let Some(d) = date {
        anyhow::ensure!(is_valid_date(d), "--date {d:?}: expected YYYY-MM-DD");
        return Ok(d.to_string());
    }
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        let secs: i64 = epoch
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={epoch:?}: expected seconds since 1970"))?;
        return Ok(date_from_unix(secs));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the system clock is before 1970")?;
    Ok(date_from_unix(now.as_secs() as i64))
}

fn abc2xml(io: &ConvertArgs, date: Option<&str>) -> anyhow::Result<ExitStatus> {
    use clamp3_formats::abc2xml;
    let options = abc2xml::Options {
        date: encoding_date(date)?,
    };
    convert_matching(
        io,
        // batch_abc2xml.py takes names ending in `.abc`, case-sensitively
        |p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(".abc"))
        },
        "converted",
        |root, file| batch::output_path(root, file, &io.output_dir, "xml"),
        |file| {
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
            if name.as_deref().is_some_and(abc2xml::glob_refuses) {
                anyhow::bail!(
                    "the reference passes the file name through glob(), which does not match \
                     this name (abc2xml.py: error: none of the input files exist)"
                );
            }
            let bytes = std::fs::read(file)?;
            Ok(abc2xml::convert(&bytes, &options)?.xml.into_bytes())
        },
    )
}

/// Runs a conversion.
pub fn run(command: ConvertCommand) -> anyhow::Result<ExitStatus> {
    match command {
        ConvertCommand::Interleave(io) => convert_each(
            &io,
            &["abc"],
            "interleaved",
            |root, file| batch::mirrored_path(root, file, &io.output_dir),
            |file| Ok(clamp3_formats::abc::interleave(&read_text(file)?)?.into_bytes()),
        ),
        ConvertCommand::Xml2abc(io) => convert_each(
            &io,
            &["xml", "musicxml", "mxl"],
            "converted",
            |root, file| batch::output_path(root, file, &io.output_dir, "abc"),
            |file| {
                let xml = clamp3_formats::musicxml::read_score(file)?;
                Ok(clamp3_formats::xml2abc::convert(&xml)?.into_bytes())
            },
        ),
        ConvertCommand::Abc2xml { io, date } => abc2xml(&io, date.as_deref()),
        ConvertCommand::Midi2mtf { io, keep_text } => convert_each(
            &io,
            &["mid", "midi"],
            "converted",
            |root, file| batch::output_path(root, file, &io.output_dir, "mtf"),
            |file| {
                let bytes = std::fs::read(file)?;
                Ok(clamp3_formats::midi::midi_to_mtf(&bytes, !keep_text)?.into_bytes())
            },
        ),
        ConvertCommand::Mtf2midi(io) => convert_each(
            &io,
            &["mtf"],
            "converted",
            |root, file| batch::output_path(root, file, &io.output_dir, "mid"),
            |file| Ok(clamp3_formats::mtf::mtf_to_midi(&read_text(file)?)?),
        ),
        ConvertCommand::Audio2mert { io, mert, device } => audio2mert(&io, mert.as_deref(), device),
        ConvertCommand::Caption { io, blip, device } => caption(&io, blip.as_deref(), device),
    }
}
