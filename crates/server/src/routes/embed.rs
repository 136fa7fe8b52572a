//! `POST /v1/embed` (texts) and `POST /v1/embed/file` (an upload): global vectors.

use crate::error::ApiError;
use crate::state::AppState;
use crate::upload::Upload;
use axum::extract::{Query, Request, State};
use axum::Json;
use clamp3_engine::Item;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextsRequest {
    texts: Vec<String>,
}

pub async fn texts(
    State(state): State<Arc<AppState>>,
    Json(request): Json<TextsRequest>,
) -> Result<Json<Value>, ApiError> {
    if request.texts.is_empty() {
        return Err(ApiError::bad_request("`texts` is empty"));
    }
    let items = request.texts.into_iter().map(Item::Text).collect();
    let vectors = state.embedder.embed_all(items).await?;
    Ok(Json(json!({
        "model": state.engine.family().name(),
        "vectors": vectors,
    })))
}

#[derive(Deserialize)]
pub struct FileQuery {
    filename: Option<String>,
}

pub async fn file(
    State(state): State<Arc<AppState>>,
    Query(query): Query<FileQuery>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let upload = Upload::read(request, query.filename.as_deref()).await?;
    let name = upload.name.display().to_string();
    let embedded = state.embedder.embed(upload.into_item()).await?;
    Ok(Json(json!({
        "model": state.engine.family().name(),
        "file": name,
        "modality": embedded.modality.map(|m| m.name()),
        "caption": embedded.caption.map(|c| c.text),
        "vector": embedded.embedding.data,
    })))
}
