//! `POST /v1/search` (a text, any language), `POST /v1/search/file` (an uploaded file of any
//! modality) and `GET /v1/items/{id}/similar`: the library's items nearest to a query.

use crate::error::ApiError;
use crate::routes::{filter, item_id, on_library, top_k};
use crate::state::AppState;
use crate::upload::Upload;
use axum::extract::{Path, Query, Request, State};
use axum::Json;
use clamp3_engine::Item;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextSearch {
    text: String,
    top_k: Option<usize>,
    filter: Option<String>,
}

pub async fn text(
    State(state): State<Arc<AppState>>,
    Json(request): Json<TextSearch>,
) -> Result<Json<Value>, ApiError> {
    let (top_k, filter) = (top_k(request.top_k)?, filter(request.filter.as_deref())?);
    if request.text.trim().is_empty() {
        return Err(ApiError::bad_request("`text` is empty"));
    }
    let query = state.embedder.embed(Item::Text(request.text)).await?;
    let vector = query.embedding.data;
    let hits = on_library(&state, move |library, engine| {
        library.search(engine, &vector, top_k, &filter)
    })
    .await?;
    Ok(Json(json!({"results": hits})))
}

#[derive(Deserialize)]
pub struct FileSearch {
    filename: Option<String>,
    top_k: Option<usize>,
    filter: Option<String>,
}

pub async fn file(
    State(state): State<Arc<AppState>>,
    Query(query): Query<FileSearch>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let (top_k, filter) = (top_k(query.top_k)?, filter(query.filter.as_deref())?);
    let upload = Upload::read(request, query.filename.as_deref()).await?;
    let name = upload.name.display().to_string();
    let embedded = state.embedder.embed(upload.into_item()).await?;
    let vector = embedded.embedding.data;
    let hits = on_library(&state, move |library, engine| {
        library.search(engine, &vector, top_k, &filter)
    })
    .await?;
    Ok(Json(json!({
        "file": name,
        // An image is searched as its caption: it decides the results.
        "caption": embedded.caption.map(|c| c.text),
        "results": hits,
    })))
}

#[derive(Deserialize)]
pub struct SimilarQuery {
    top_k: Option<usize>,
    filter: Option<String>,
}

pub async fn similar(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(query): Query<SimilarQuery>,
) -> Result<Json<Value>, ApiError> {
    let id = item_id(&id)?;
    let (top_k, filter) = (top_k(query.top_k)?, filter(query.filter.as_deref())?);
    let hits = on_library(&state, move |library, engine| match library.item(id)? {
        Some(_) => library.similar(engine, id, top_k, &filter).map(Some),
        None => Ok(None),
    })
    .await?
    .ok_or_else(|| ApiError::not_found(format!("no item {id}")))?;
    Ok(Json(json!({"results": hits})))
}
