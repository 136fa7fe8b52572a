//! `GET /v1/openapi.json`: the API's description, written by hand beside the routes (a test
//! checks that every path it lists is routed).

use axum::http::header;
use axum::response::IntoResponse;

pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}
