//! The bearer token: when the server has one, every `/v1` request must carry it, as an
//! `Authorization: Bearer …` header or, for the media URLs an `<audio>` element fetches itself
//! (it cannot send headers), a `token` query parameter.
//!
//! Without a token the server listens on loopback only, and `/v1` answers only requests whose
//! `Host` is a loopback name: a web page elsewhere could otherwise point a name of its own at
//! 127.0.0.1 ("DNS rebinding") and read the API from the user's browser.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;

/// Lets a request through when no token is set or it carries the right one; else 401.
pub async fn require_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = state.token.as_deref() else {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok());
        return match host {
            Some(host) if is_loopback_host(host) => next.run(request).await,
            _ => ApiError::new(
                StatusCode::FORBIDDEN,
                "without a token this server answers only requests to a loopback name \
                 (localhost, 127.0.0.1, [::1])",
            )
            .into_response(),
        };
    };
    let from_header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let given = from_header.or_else(|| {
        Query::<HashMap<String, String>>::try_from_uri(request.uri())
            .ok()
            .and_then(|Query(mut query)| query.remove("token"))
    });
    match given {
        Some(given) if same(given.as_bytes(), expected.as_bytes()) => next.run(request).await,
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "wrong token").into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this server needs a token: send `Authorization: Bearer <token>`",
        )
        .into_response(),
    }
}

/// `localhost`, `*.localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Compares in time that depends on the lengths only, so timing does not reveal the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::{is_loopback_host, same};

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in [
            "localhost",
            "localhost:8000",
            "127.0.0.1:8000",
            "127.1.2.3",
            "[::1]:8000",
            "app.localhost",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8000",
            "10.0.0.1:8000",
            "localhost.evil.example",
            "[::2]:80",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn tokens_compare_by_content() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret2"));
        assert!(!same(b"", b"x"));
    }
}
