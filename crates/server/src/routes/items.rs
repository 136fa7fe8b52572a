//! `GET /v1/items`, `/v1/items/{id}` and an item's files: `/media` (the file itself, with
//! ranges, so audio can seek), `/notation` (sheet music as ABC, for the page's renderer) and
//! `/midi` (MIDI or MTF as a Standard MIDI File, for its player). Items are named by id only:
//! no request ever names a path, so nothing outside the library can be fetched.

use crate::error::ApiError;
use crate::routes::{filter, item_id, on_library};
use crate::state::AppState;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use clamp3_library::ItemRecord;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;
use tower_http::services::ServeFile;

/// The most items one page lists.
const MAX_PAGE: usize = 1000;

#[derive(Deserialize)]
pub struct ListQuery {
    offset: Option<usize>,
    limit: Option<usize>,
    filter: Option<String>,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let offset = query.offset.unwrap_or(0);
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(format!("`limit` is 1 to {MAX_PAGE}")));
    }
    let filter = filter(query.filter.as_deref())?;
    let items = on_library(&state, move |library, _| {
        library.items(offset, limit, &filter)
    })
    .await?;
    Ok(Json(
        json!({"offset": offset, "limit": limit, "items": items}),
    ))
}

/// The record of an item, or 404.
async fn record(state: &Arc<AppState>, id: &str) -> Result<ItemRecord, ApiError> {
    let id = item_id(id)?;
    on_library(state, move |library, _| library.item(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no item {id}")))
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<ItemRecord>, ApiError> {
    Ok(Json(record(&state, &id).await?))
}

pub async fn media(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let record = record(&state, &id).await?;
    let mime: mime::Mime = content_type(&record.format)
        .parse()
        .unwrap_or(mime::APPLICATION_OCTET_STREAM);
    let response = ServeFile::new_with_mime(&record.path, &mime)
        .oneshot(request)
        .await
        .map_err(|e| ApiError::not_found(format!("item {id}: {e}")))?;
    let mut response = response.into_response();
    // Library files are served as what they are, never sniffed into something else.
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

pub async fn notation(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let record = record(&state, &id).await?;
    if record.modality != "sheet" {
        return Err(ApiError::not_found(format!(
            "item {id} is {}, not sheet music",
            record.modality
        )));
    }
    let abc = tokio::task::spawn_blocking(move || -> Result<String, ApiError> {
        let unreadable = |e: &dyn std::fmt::Display| {
            ApiError::unprocessable(format!("{}: {e}", record.path.display()))
        };
        match record.format.as_str() {
            "abc" => std::fs::read_to_string(&record.path).map_err(|e| unreadable(&e)),
            _ => {
                let xml = clamp3_formats::musicxml::read_score(&record.path)
                    .map_err(|e| unreadable(&e))?;
                clamp3_formats::xml2abc::convert(&xml).map_err(|e| unreadable(&e))
            }
        }
    })
    .await
    .map_err(|e| ApiError::unavailable(e.to_string()))??;
    Ok(([(header::CONTENT_TYPE, "text/vnd.abc; charset=utf-8")], abc).into_response())
}

pub async fn midi(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let record = record(&state, &id).await?;
    if record.modality != "midi" {
        return Err(ApiError::not_found(format!(
            "item {id} is {}, not MIDI",
            record.modality
        )));
    }
    let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ApiError> {
        let unreadable = |e: &dyn std::fmt::Display| {
            ApiError::unprocessable(format!("{}: {e}", record.path.display()))
        };
        match record.format.as_str() {
            "mtf" => {
                let text = std::fs::read_to_string(&record.path).map_err(|e| unreadable(&e))?;
                clamp3_formats::mtf::mtf_to_midi(&text).map_err(|e| unreadable(&e))
            }
            _ => std::fs::read(&record.path).map_err(|e| unreadable(&e)),
        }
    })
    .await
    .map_err(|e| ApiError::unavailable(e.to_string()))??;
    Ok(([(header::CONTENT_TYPE, "audio/midi")], bytes).into_response())
}

/// The content type of a library file by its format.
fn content_type(format: &str) -> &'static str {
    match format {
        "txt" => "text/plain; charset=utf-8",
        "abc" => "text/vnd.abc; charset=utf-8",
        "mtf" => "text/plain; charset=utf-8",
        "xml" | "musicxml" => "application/vnd.recordare.musicxml+xml",
        "mxl" => "application/vnd.recordare.musicxml",
        "mid" | "midi" => "audio/midi",
        "wav" => "audio/wav",
        "mp3" => "audio/mpeg",
        "flac" => "audio/flac",
        "ogg" => "audio/ogg",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        _ => "application/octet-stream",
    }
}
