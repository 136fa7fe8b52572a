//! Reading MusicXML files: `.xml` and `.musicxml` text, and compressed `.mxl` archives.
//!
//! For `.mxl` the score is the root file that `META-INF/container.xml` names. This is better than
//! the reference (`xml2abc.py`), which reads the first archive member not starting with `META`
//! whose name ends in `.xml`, and so fails on archives whose score ends in `.musicxml`. When an
//! archive has no usable container file, the reference's rule is used.
//!
//! Text is decoded from UTF-8 (with or without a byte-order mark), UTF-16 with a byte-order
//! mark, or ISO-8859-1 / windows-1252 when the XML declaration says so.

use std::io::Read;
use std::path::Path;

use crate::{Error, Result};

/// Largest uncompressed score read from an archive; hostile archives are refused beyond it.
const MAX_SCORE_BYTES: u64 = 256 * 1024 * 1024;

/// Reads the MusicXML text of a `.xml`, `.musicxml` or `.mxl` file (chosen by extension,
/// case-insensitive; anything else is read as plain MusicXML). Errors carry the path.
pub fn read_score(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::from(e).with_path(path))?;
    let is_mxl = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("mxl"));
    let text = if is_mxl {
        read_mxl(&bytes)
    } else {
        decode_xml(&bytes)
    };
    text.map_err(|e| e.with_path(path))
}

/// The score text inside a compressed MusicXML (`.mxl`) archive.
pub fn read_mxl(bytes: &[u8]) -> Result<String> {
    let bad = |reason: String| Error::MusicXml { reason };
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| bad(format!("not a valid .mxl (zip) archive: {e}")))?;
    let rootfile = read_member(&mut zip, "META-INF/container.xml")
        .ok()
        .and_then(|b| decode_xml(&b).ok())
        .and_then(|text| container_rootfile(&text));
    let name = match rootfile {
        Some(name) if zip.index_for_name(&name).is_some() => name,
        _ => zip
            .file_names()
            .find(|n| !n.starts_with("META") && n.to_ascii_lowercase().ends_with(".xml"))
            .map(str::to_owned)
            .ok_or_else(|| bad("the .mxl archive holds no MusicXML score".into()))?,
    };
    let data = read_member(&mut zip, &name)?;
    decode_xml(&data)
}

fn read_member(zip: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>, name: &str) -> Result<Vec<u8>> {
    let bad = |reason: String| Error::MusicXml { reason };
    let file = zip
        .by_name(name)
        .map_err(|e| bad(format!("cannot open `{name}` in the .mxl archive: {e}")))?;
    let mut data = Vec::new();
    file.take(MAX_SCORE_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| bad(format!("cannot read `{name}` in the .mxl archive: {e}")))?;
    if data.len() as u64 > MAX_SCORE_BYTES {
        return Err(bad(format!(
            "`{name}` in the .mxl archive is larger than {MAX_SCORE_BYTES} bytes"
        )));
    }
    Ok(data)
}

/// The `full-path` of the first `rootfile` in `META-INF/container.xml`.
fn container_rootfile(text: &str) -> Option<String> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, opts).ok()?;
    doc.descendants()
        .find(|n| n.has_tag_name("rootfile") || n.tag_name().name() == "rootfile")
        .and_then(|n| n.attribute("full-path"))
        .map(str::to_owned)
}

/// Decodes MusicXML bytes to text (see the module documentation for the encodings).
pub fn decode_xml(bytes: &[u8]) -> Result<String> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return utf8(rest);
    }
    let utf16 = |rest: &[u8], le: bool| -> Result<String> {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16(&units).map_err(|_| Error::MusicXml {
            reason: "invalid UTF-16 text".into(),
        })
    };
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return utf16(rest, true);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return utf16(rest, false);
    }
    let head = &bytes[..bytes.len().min(200)];
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    if let Some(decl) = head.strip_prefix("<?xml") {
        let decl = decl.split("?>").next().unwrap_or("");
        if let Some(enc) = decl.split("encoding").nth(1) {
            let enc = enc
                .trim_start_matches([' ', '='])
                .trim_start_matches(['"', '\''])
                .split(['"', '\''])
                .next()
                .unwrap_or("");
            if matches!(
                enc,
                "iso-8859-1" | "latin-1" | "latin1" | "windows-1252" | "cp1252"
            ) {
                return Ok(bytes.iter().map(|&b| char::from(b)).collect());
            }
        }
    }
    utf8(bytes)
}

fn utf8(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|e| Error::Utf8 {
        valid_up_to: e.utf8_error().valid_up_to(),
    })
}
