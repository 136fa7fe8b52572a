//! `POST /v1/score`: how similar two sets are, as `clamp3 score` (the cosine of their mean
//! vectors), and optionally every pair's cosine.

use crate::error::ApiError;
use crate::routes::{vectors, Input};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use clamp3_retrieval::pairing::score_group;
use clamp3_retrieval::similarity::cosine;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreRequest {
    a: Vec<Input>,
    b: Vec<Input>,
    #[serde(default)]
    pairwise: bool,
}

pub async fn score(
    State(state): State<Arc<AppState>>,
    Json(request): Json<ScoreRequest>,
) -> Result<Json<Value>, ApiError> {
    if request.a.is_empty() || request.b.is_empty() {
        return Err(ApiError::bad_request(
            "`a` and `b` each need at least one entry",
        ));
    }
    let (n_a, n_b) = (request.a.len(), request.b.len());
    let mut sources = Vec::with_capacity(n_a + n_b);
    for input in request.a.into_iter().chain(request.b) {
        sources.push(input.resolve(&state).await?);
    }
    let mut vectors = vectors(&state, sources).await?;
    let b = vectors.split_off(n_a);
    let a = vectors;
    let score = score_group(&a, &b).map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let mut answer = json!({"score": score, "a": n_a, "b": n_b});
    if request.pairwise {
        let matrix: Vec<Vec<f32>> = a
            .iter()
            .map(|x| b.iter().map(|y| cosine(x, y)).collect())
            .collect();
        answer["pairwise"] = json!(matrix);
    }
    Ok(Json(answer))
}
