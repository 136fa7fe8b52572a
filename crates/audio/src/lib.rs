//! Audio front end for CLaMP 3: decode, downmix, resample to 24 kHz, normalise, cut windows.
#![deny(missing_docs)]
