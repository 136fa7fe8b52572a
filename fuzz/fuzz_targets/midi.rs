//! MIDI reader: any bytes give MTF or an error, never a panic; MTF that converts back to MIDI
//! reads again to the same MTF.
#![no_main]

use clamp3_formats::midi::midi_to_mtf;
use clamp3_formats::mtf::mtf_to_midi;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = midi_to_mtf(data, true);
    if let Ok(mtf) = midi_to_mtf(data, false) {
        if let Ok(midi) = mtf_to_midi(&mtf) {
            // mido's own output is a fixed point: reading it and writing it again changes nothing.
            let again = midi_to_mtf(&midi, false).expect("a file the port wrote must read back");
            assert_eq!(mtf_to_midi(&again).expect("its MTF must write back"), midi);
        }
    }
});
