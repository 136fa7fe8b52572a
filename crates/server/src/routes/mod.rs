//! The routes, a file each. `/v1/…` is the JSON API (token-checked, time-limited); `/` and
//! `/assets/…` are the page. Every error is `{"error": "…"}` ([`crate::error::json_errors`]).

mod classify;
mod embed;
mod health;
mod openapi;
mod page;
mod score;

use crate::auth::require_token;
use crate::error::{json_errors, no_route, ApiError};
use crate::state::AppState;
use crate::ServerConfig;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use clamp3_engine::Item;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tower_http::timeout::TimeoutLayer;

/// One input of `score` or `classify`: a text, or an item of the library by id.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<String>,
}

impl Input {
    /// The engine input it names.
    fn into_item(self, _state: &AppState) -> Result<Item, ApiError> {
        match (self.text, self.item) {
            (Some(text), None) => Ok(Item::Text(text)),
            (None, Some(_)) => Err(ApiError::bad_request("items need a library")),
            _ => Err(ApiError::bad_request(
                "each input is {\"text\": \"…\"} or {\"item\": \"<id>\"}",
            )),
        }
    }
}

/// The whole application.
pub fn router(state: Arc<AppState>, config: &ServerConfig) -> Router {
    let api = Router::new()
        .route("/health", get(health::health))
        .route("/openapi.json", get(openapi::openapi))
        .route("/embed", post(embed::texts))
        .route("/embed/file", post(embed::file))
        .route("/score", post(score::score))
        .route("/classify", post(classify::classify))
        .route("/classify/file", post(classify::file))
        .fallback(no_route)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.timeout,
        ));
    Router::new()
        .nest("/v1", api)
        .route("/", get(page::index))
        .route("/assets/{*path}", get(page::asset))
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(config.max_upload_bytes))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(state)
}
