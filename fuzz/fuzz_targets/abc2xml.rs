//! ABC → MusicXML: any bytes give a MusicXML file or an error saying why, never a panic, a hang
//! or unbounded memory.
#![no_main]

use clamp3_formats::abc2xml::{self, Options};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options = Options {
        date: "2000-01-01".into(),
    };
    match abc2xml::convert(data, &options) {
        Ok(out) => assert!(out.xml.ends_with("</score-partwise>\n")),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
