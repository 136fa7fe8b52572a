//! `GET /v1/library`: what the library holds (counts by modality and model, bytes on disk).

use crate::error::ApiError;
use crate::routes::on_library;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use clamp3_library::LibraryInfo;
use std::sync::Arc;

pub async fn info(State(state): State<Arc<AppState>>) -> Result<Json<LibraryInfo>, ApiError> {
    Ok(Json(on_library(&state, |library, _| library.info()).await?))
}
