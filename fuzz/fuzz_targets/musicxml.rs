//! MusicXML readers and xml2abc: any bytes, as `.mxl` or as XML text, give ABC or an error,
//! never a panic; ABC that converts also interleaves or fails cleanly.
#![no_main]

use clamp3_formats::{abc, musicxml, xml2abc};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(xml) = musicxml::read_mxl(data) {
        let _ = xml2abc::convert(&xml);
    }
    if let Ok(xml) = musicxml::decode_xml(data) {
        if let Ok(text) = xml2abc::convert(&xml) {
            assert!(text.starts_with("X:1\n"));
            let _ = abc::interleave(&text);
        }
    }
});
