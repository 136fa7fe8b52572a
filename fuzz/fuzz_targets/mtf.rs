//! MTF reader: any text gives MIDI bytes or an error, never a panic. (The bytes need not read
//! back: like mido, a `reset` line is written as a bare 0xFF, which readers take for a meta event.)
#![no_main]

use clamp3_formats::mtf::mtf_to_midi;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = mtf_to_midi(text);
});
