//! The routes, a file each. `/v1/…` is the JSON API (token-checked, time-limited); `/` and
//! `/assets/…` are the page. Every error is `{"error": "…"}` ([`crate::error::json_errors`]).

mod classify;
mod embed;
mod health;
mod items;
mod library;
mod openapi;
mod page;
mod score;
mod search;

use crate::auth::require_token;
use crate::error::{json_errors, no_route, ApiError};
use crate::state::AppState;
use crate::ServerConfig;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use clamp3_engine::{Engine, Item};
use clamp3_library::{Filter, ItemId, Library};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::catch_panic::CatchPanicLayer;
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
    /// Where its vector comes from: the text, embedded; the item's stored vector of this
    /// model, or else its file, embedded.
    async fn resolve(self, state: &Arc<AppState>) -> Result<VectorOf, ApiError> {
        match (self.text, self.item) {
            (Some(text), None) => Ok(VectorOf::Embed(Item::Text(text))),
            (None, Some(id)) => {
                let id = item_id(&id)?;
                let found = on_library(state, move |library, engine| {
                    let Some(record) = library.item(id)? else {
                        return Ok(None);
                    };
                    Ok(Some(
                        match library.vector(&Library::model_key(engine), id)? {
                            Some(vector) => VectorOf::Stored(vector),
                            None => VectorOf::Embed(Item::File(record.path)),
                        },
                    ))
                })
                .await?;
                found.ok_or_else(|| ApiError::not_found(format!("no item {id}")))
            }
            _ => Err(ApiError::bad_request(
                "each input is {\"text\": \"…\"} or {\"item\": \"<id>\"}",
            )),
        }
    }
}

/// Where a vector comes from.
enum VectorOf {
    /// An input to embed.
    Embed(Item),
    /// A vector the library holds.
    Stored(Vec<f32>),
}

/// The vectors of `sources`, in order; those to embed are queued together, so they share
/// engine calls.
async fn vectors(state: &AppState, sources: Vec<VectorOf>) -> Result<Vec<Vec<f32>>, ApiError> {
    let mut slots = Vec::with_capacity(sources.len());
    let mut to_embed = Vec::new();
    for source in sources {
        match source {
            VectorOf::Embed(item) => {
                to_embed.push(item);
                slots.push(None);
            }
            VectorOf::Stored(vector) => slots.push(Some(vector)),
        }
    }
    let mut embedded = state.embedder.embed_all(to_embed).await?.into_iter();
    slots
        .into_iter()
        .map(|slot| {
            slot.or_else(|| embedded.next())
                .ok_or_else(|| ApiError::unprocessable("a vector is missing"))
        })
        .collect()
}

/// The most results one search returns.
const MAX_TOP_K: usize = 1000;

/// `top_k` as given (default 10), or why not.
fn top_k(given: Option<usize>) -> Result<usize, ApiError> {
    match given.unwrap_or(10) {
        k @ 1..=MAX_TOP_K => Ok(k),
        _ => Err(ApiError::bad_request(format!(
            "`top_k` is 1 to {MAX_TOP_K}"
        ))),
    }
}

/// A `filter` as given (`modality=audio`, `modality=sheet,midi`, `format=abc`); none: all.
fn filter(given: Option<&str>) -> Result<Filter, ApiError> {
    match given.map(str::trim) {
        None | Some("") => Ok(Filter::default()),
        Some(text) => text
            .parse()
            .map_err(|e| ApiError::bad_request(format!("filter {text:?}: {e}"))),
    }
}

/// An item id from a URL or body.
fn item_id(given: &str) -> Result<ItemId, ApiError> {
    given
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{given:?} is not an item id (16 hex digits)")))
}

/// A library error as an answer: what the request got wrong is a 4xx; a library that cannot
/// answer is the server's fault.
fn library_error(error: clamp3_library::Error) -> ApiError {
    use clamp3_library::Error as E;
    let status = match &error {
        E::Invalid(_) => StatusCode::BAD_REQUEST,
        E::NotFound(_) => StatusCode::NOT_FOUND,
        // The library was built with another model than the server runs.
        E::NoVectors { .. } | E::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
        E::Engine(e) => return ApiError::from(e.clone()),
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, error.to_string())
}

/// Runs a library call on the blocking pool (the library reads disk and may compute).
async fn on_library<T: Send + 'static>(
    state: &Arc<AppState>,
    call: impl FnOnce(&Library, &Engine) -> clamp3_library::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || call(&state.library, &state.engine))
        .await
        .map_err(|e| ApiError::unavailable(format!("the library call failed: {e}")))?
        .map_err(library_error)
}

/// Uploads read at once; the others wait. Each may be as large as the upload limit, so this
/// bounds the memory uploads take.
const CONCURRENT_UPLOADS: usize = 8;

/// The whole application.
pub fn router(state: Arc<AppState>, config: &ServerConfig) -> Router {
    let uploads = GlobalConcurrencyLimitLayer::with_semaphore(Arc::new(
        tokio::sync::Semaphore::new(CONCURRENT_UPLOADS),
    ));
    let api = Router::new()
        .route("/health", get(health::health))
        .route("/openapi.json", get(openapi::openapi))
        .route("/library", get(library::info))
        .route("/search", post(search::text))
        .route("/search/file", post(search::file).layer(uploads.clone()))
        .route("/items", get(items::list))
        .route("/items/{id}", get(items::get))
        .route("/items/{id}/similar", get(search::similar))
        .route("/items/{id}/media", get(items::media))
        .route("/items/{id}/notation", get(items::notation))
        .route("/items/{id}/midi", get(items::midi))
        .route("/embed", post(embed::texts))
        .route("/embed/file", post(embed::file).layer(uploads.clone()))
        .route("/score", post(score::score))
        .route("/classify", post(classify::classify))
        .route("/classify/file", post(classify::file).layer(uploads))
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
        // A bug in a handler answers 500 instead of dropping the connection.
        .layer(CatchPanicLayer::new())
        .layer(axum::middleware::map_response(json_errors))
        .with_state(state)
}
