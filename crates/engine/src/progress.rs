//! How the engine reports what it is doing: to its caller, never to the terminal. The CLI draws
//! a progress bar from these calls; a server can count per request; tests can record them.

use crate::engine::Embedded;
use crate::Result;

/// Receives the engine's progress. Every method has a default that ignores the call; calls may
/// come from several threads at once.
pub trait Progress: Sync {
    /// A run of `total` inputs starts.
    fn start(&self, _total: usize) {}

    /// Input `index` (its position in the run) is finished, with its result.
    fn finished(&self, _index: usize, _result: &Result<Embedded>) {}

    /// Something the user should know (a licence note).
    fn notice(&self, _message: &str) {}

    /// Something that went wrong without changing any result (a cache that could not be
    /// written).
    fn warning(&self, _message: &str) {}
}

/// Ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}
