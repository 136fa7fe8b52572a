//! The JSON API end to end over loopback HTTP, with the tiny golden model: each route's answer,
//! and what a malformed or hostile request gets (a 4xx with a message, never a 5xx).

#![allow(clippy::unwrap_used, reason = "tests panic on failure")]

mod common;

use clamp3_server::ServerConfig;
use common::{answer, golden, multipart, TestServer};

fn abc() -> Vec<u8> {
    std::fs::read(golden().join("cases/symbolic/s01_abc_short.abc")).unwrap()
}

mod engine_routes {
    use super::*;

    #[test]
    fn health_names_the_model() {
        let server = TestServer::start(ServerConfig::default());
        let (status, body) = server.get("/v1/health");
        assert_eq!(status, 200);
        assert_eq!(body["status"], "ok");
        assert!(body["model"].as_str().unwrap().contains("clamp3"), "{body}");
    }

    #[test]
    fn embed_returns_one_vector_per_text() {
        let server = TestServer::start(ServerConfig::default());
        let (status, body) = server.post_json(
            "/v1/embed",
            r#"{"texts": ["a calm piano piece", "一首爵士乐"]}"#,
        );
        assert_eq!(status, 200, "{body}");
        let vectors = body["vectors"].as_array().unwrap();
        assert_eq!(vectors.len(), 2);
        assert!(!vectors[0].as_array().unwrap().is_empty());
        assert_ne!(vectors[0], vectors[1]);
    }

    #[test]
    fn an_uploaded_file_is_embedded_raw_or_multipart() {
        let server = TestServer::start(ServerConfig::default());
        let (status, raw) = server.post_bytes("/v1/embed/file?filename=tune.abc", &abc());
        assert_eq!(status, 200, "{raw}");
        assert_eq!(raw["modality"], "symbolic");
        let (content_type, body) = multipart("tune.abc", &abc());
        let (status, form) = answer(
            server
                .request("POST", "/v1/embed/file")
                .set("Content-Type", &content_type)
                .send_bytes(&body),
        );
        assert_eq!(status, 200, "{form}");
        assert_eq!(raw["vector"], form["vector"]);
    }

    #[test]
    fn score_compares_two_sets() {
        let server = TestServer::start(ServerConfig::default());
        let (status, body) = server.post_json(
            "/v1/score",
            r#"{"a": [{"text": "piano"}, {"text": "jazz"}], "b": [{"text": "piano"}], "pairwise": true}"#,
        );
        assert_eq!(status, 200, "{body}");
        let score = body["score"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&score));
        let pairwise = body["pairwise"].as_array().unwrap();
        assert_eq!(pairwise.len(), 2);
        // A text against itself.
        assert!((pairwise[0][0].as_f64().unwrap() - 1.0).abs() < 1e-4);
    }

    #[test]
    fn classify_ranks_every_label() {
        let server = TestServer::start(ServerConfig::default());
        let (status, body) = server.post_json(
            "/v1/classify",
            r#"{"labels": ["jazz", "rock", "folk"], "inputs": [{"text": "a jazz trio"}]}"#,
        );
        assert_eq!(status, 200, "{body}");
        let labels = body["results"][0]["labels"].as_array().unwrap();
        assert_eq!(labels.len(), 3);
        let (status, body) = server.post_bytes(
            "/v1/classify/file?labels=jazz,rock&filename=t.abc&top_k=1",
            &abc(),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["labels"].as_array().unwrap().len(), 1);
    }
}

mod bad_requests {
    use super::*;

    #[test]
    fn malformed_json_is_400_with_a_message() {
        let server = TestServer::start(ServerConfig::default());
        let (status, body) = server.post_json("/v1/embed", r#"{"texts": ["#);
        assert_eq!(status, 400, "{body}");
        assert!(!body["error"].as_str().unwrap().is_empty());
    }

    #[test]
    fn json_of_the_wrong_shape_is_422() {
        let server = TestServer::start(ServerConfig::default());
        let (status, body) = server.post_json("/v1/embed", r#"{"text": "x"}"#);
        assert_eq!(status, 422, "{body}");
        let (status, _) = server.post_json(
            "/v1/score",
            r#"{"a": [{"text": "x", "item": "y"}], "b": [{"text": "x"}]}"#,
        );
        assert_eq!(status, 400);
        let (status, _) = server.post_json(
            "/v1/classify",
            r#"{"labels": [], "inputs": [{"text": "x"}]}"#,
        );
        assert_eq!(status, 400);
    }

    #[test]
    fn an_unsupported_or_broken_upload_is_refused_by_name() {
        let server = TestServer::start(ServerConfig::default());
        let (status, body) = server.post_bytes("/v1/embed/file?filename=notes.docx", b"PK..");
        assert_eq!(status, 415, "{body}");
        let (status, body) =
            server.post_bytes("/v1/embed/file?filename=bad.mid", b"not a midi file");
        assert_eq!(status, 422, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("bad.mid"),
            "{body}"
        );
        let (status, _) = server.post_bytes("/v1/embed/file", &abc());
        assert_eq!(status, 400);
        let (status, _) = server.post_bytes("/v1/embed/file?filename=..", &abc());
        assert_eq!(status, 400);
    }

    #[test]
    fn an_upload_over_the_limit_is_413() {
        let config = ServerConfig {
            max_upload_bytes: 1000,
            ..ServerConfig::default()
        };
        let server = TestServer::start(config);
        let big = vec![b'a'; 5000];
        let (status, body) = server.post_bytes("/v1/embed/file?filename=big.txt", &big);
        assert_eq!(status, 413, "{body}");
        let (content_type, form) = multipart("big.txt", &big);
        let (status, body) = answer(
            server
                .request("POST", "/v1/embed/file")
                .set("Content-Type", &content_type)
                .send_bytes(&form),
        );
        assert_eq!(status, 413, "{body}");
    }

    #[test]
    fn unknown_routes_and_methods_are_json_4xx() {
        let server = TestServer::start(ServerConfig::default());
        let (status, body) = server.get("/v1/nothing");
        assert_eq!(status, 404);
        assert!(body["error"].as_str().unwrap().contains("/v1/nothing"));
        let (status, body) = server.get("/v1/embed");
        assert_eq!(status, 405, "{body}");
        assert!(body["error"].is_string());
    }
}

mod safety {
    use super::*;

    #[test]
    fn a_token_is_required_when_set() {
        let config = ServerConfig {
            token: Some("s3cret".into()),
            ..ServerConfig::default()
        };
        let server = TestServer::start(config);
        let (status, body) = server.get("/v1/health");
        assert_eq!(status, 401, "{body}");
        let (status, _) = answer(
            server
                .request("GET", "/v1/health")
                .set("Authorization", "Bearer wrong")
                .call(),
        );
        assert_eq!(status, 401);
        let (status, _) = answer(
            server
                .request("GET", "/v1/health")
                .set("Authorization", "Bearer s3cret")
                .call(),
        );
        assert_eq!(status, 200);
        let (status, _) = server.get("/v1/health?token=s3cret");
        assert_eq!(status, 200);
        // The page itself is public; it asks for the token.
        let (status, _) = server.get("/");
        assert_eq!(status, 200);
    }

    #[test]
    fn listening_beyond_loopback_needs_a_token() {
        let open = ServerConfig {
            addr: "0.0.0.0:8000".parse().unwrap(),
            ..ServerConfig::default()
        };
        let error = open.check().unwrap_err().to_string();
        assert!(error.contains("token"), "{error}");
        let with_token = ServerConfig {
            token: Some("t".into()),
            ..open.clone()
        };
        assert!(with_token.check().is_ok());
        let empty = ServerConfig {
            token: Some(" ".into()),
            ..ServerConfig::default()
        };
        assert!(empty.check().is_err());
        assert!(ServerConfig::default().check().is_ok());
    }
}

mod page {
    use super::*;

    #[test]
    fn the_page_and_its_assets_are_served() {
        let server = TestServer::start(ServerConfig::default());
        let (status, body) = server.get("/");
        assert_eq!(status, 200);
        assert!(body["text"].as_str().unwrap().contains("<title>clamp3"));
        for asset in [
            "app.js",
            "player.js",
            "style.css",
            "vendor/abcjs-basic-min.js",
            "vendor/piano/C4.mp3",
        ] {
            let response = server
                .request("GET", &format!("/assets/{asset}"))
                .call()
                .unwrap();
            assert_eq!(response.status(), 200, "{asset}");
        }
        let (status, _) = server.get("/assets/../Cargo.toml");
        assert_eq!(status, 404);
        let (status, _) = server.get("/assets/nothing.js");
        assert_eq!(status, 404);
    }
}
