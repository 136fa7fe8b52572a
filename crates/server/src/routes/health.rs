//! `GET /v1/health`: the server is up; which model it runs and how it has batched.

use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub async fn health(State(state): State<Arc<AppState>>) -> Json<Value> {
    let stats = &state.embedder.stats;
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "model": state.engine.family().name(),
        "accepts": state.engine.family().accepts(),
        "batching": {
            "batches": stats.batches.load(Ordering::Relaxed),
            "inputs": stats.inputs.load(Ordering::Relaxed),
            "largest_batch": stats.largest_batch.load(Ordering::Relaxed),
        },
    }))
}
