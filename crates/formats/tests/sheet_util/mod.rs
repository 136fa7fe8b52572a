//! Shared helpers for the sheet-music golden tests: the fixture archive and `.npy` reading.
//!
//! `fixtures/sheet/cases.zip` holds a subset of `golden/formats` (made by the reference Python
//! code: `xml2abc.py -d 8 -x`, `batch_interleaved_abc.abc_pipeline`, `M3Patchilizer.encode`; see
//! that folder's README): each input with the reference's outputs beside it, and `expect.tsv`
//! (input, reference status, first line of the reference's message).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;

/// Every file of the fixture archive, by its path inside it.
pub fn cases() -> BTreeMap<String, Vec<u8>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sheet/cases.zip"
    );
    let file = std::fs::File::open(path).expect("fixture archive");
    let mut zip = zip::ZipArchive::new(file).expect("fixture zip");
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).expect("member");
        let mut data = Vec::new();
        f.read_to_end(&mut data).expect("read member");
        out.insert(f.name().to_owned(), data);
    }
    out
}

/// `(input, status, message)` rows of `expect.tsv`.
pub fn expectations(cases: &BTreeMap<String, Vec<u8>>) -> Vec<(String, String, String)> {
    let text = String::from_utf8(cases["expect.tsv"].clone()).expect("utf-8");
    text.lines()
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let a = f.next().unwrap_or_default().to_owned();
            let b = f.next().unwrap_or_default().to_owned();
            let c = f.next().unwrap_or_default().to_owned();
            (a, b, c)
        })
        .collect()
}

/// The path of an output next to `input` (`<stem>.<ext>`).
pub fn sibling(input: &str, ext: &str) -> String {
    let stem = input.rsplit_once('.').map_or(input, |(s, _)| s);
    format!("{stem}.{ext}")
}

/// The data of a `uint8` `.npy` file (format 1.0) as one flat vector.
pub fn npy_u8(bytes: &[u8]) -> Vec<u8> {
    assert!(bytes.starts_with(b"\x93NUMPY"), "not an npy file");
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8_lossy(&bytes[10..10 + hlen]);
    assert!(header.contains("'|u1'"), "unexpected dtype: {header}");
    bytes[10 + hlen..].to_vec()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 fixture")
}
