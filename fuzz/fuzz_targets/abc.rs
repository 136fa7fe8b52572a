//! ABC interleaving: any text gives interleaved ABC or an error naming the step, never a panic.
#![no_main]

use clamp3_formats::abc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = abc::is_interleaved(text);
        match abc::interleave(text) {
            Ok(out) => assert!(out.ends_with('\n')),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
});
