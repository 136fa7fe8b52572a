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
    fn a_request_over_the_time_limit_is_408() {
        let config = ServerConfig {
            timeout: std::time::Duration::from_millis(1),
            ..ServerConfig::default()
        };
        let server = TestServer::start(config);
        // Decoding, resampling and MERT take far longer than a millisecond.
        let mp3 = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../audio/tests/fixtures/a05_mp3_44k_stereo.mp3"),
        )
        .unwrap();
        let (status, body) = server.post_bytes("/v1/embed/file?filename=song.mp3", &mp3);
        assert_eq!(status, 408, "{body}");
        assert!(body["error"].is_string());
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
    fn without_a_token_only_loopback_names_are_answered() {
        let server = TestServer::start(ServerConfig::default());
        let (status, body) = answer(
            server
                .request("GET", "/v1/health")
                .set("Host", "rebound.example:8000")
                .call(),
        );
        assert_eq!(status, 403, "{body}");
        let (status, _) = answer(
            server
                .request("GET", "/v1/health")
                .set("Host", "localhost:8000")
                .call(),
        );
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

mod library_routes {
    use super::*;
    use serde_json::Value;

    fn ids_of(body: &Value) -> Vec<String> {
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["item"]["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// The id of the library item whose path ends with `name`.
    fn id_of(server: &TestServer, name: &str) -> String {
        let (_, body) = server.get("/v1/items?limit=100");
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["path"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("no {name} in {body}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_text_search_ranks_the_library() {
        let server = TestServer::with_library(ServerConfig::default());
        let (status, body) = server.post_json(
            "/v1/search",
            r#"{"text": "a chorale for four voices", "top_k": 5}"#,
        );
        assert_eq!(status, 200, "{body}");
        let scores: Vec<f64> = body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["score"].as_f64().unwrap())
            .collect();
        assert_eq!(scores.len(), 5);
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        let (status, body) = server.post_json(
            "/v1/search",
            r#"{"text": "чайковский", "filter": "modality=sheet,midi", "top_k": 100}"#,
        );
        assert_eq!(status, 200, "{body}");
        let modalities: Vec<&str> = body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["item"]["modality"].as_str().unwrap())
            .collect();
        assert_eq!(modalities.len(), 5, "{body}");
        assert!(modalities.iter().all(|m| *m == "sheet" || *m == "midi"));
        let (status, _) =
            server.post_json("/v1/search", r#"{"text": "x", "filter": "modality=piano"}"#);
        assert_eq!(status, 400);
        let (status, _) = server.post_json("/v1/search", r#"{"text": "x", "top_k": 0}"#);
        assert_eq!(status, 400);
        let (status, _) = server.post_json("/v1/search", r#"{"text": "  "}"#);
        assert_eq!(status, 400);
    }

    #[test]
    fn a_file_search_finds_the_same_file_first() {
        let server = TestServer::with_library(ServerConfig::default());
        let (status, body) = server.post_bytes("/v1/search/file?filename=query.abc", &abc());
        assert_eq!(status, 200, "{body}");
        assert_eq!(ids_of(&body)[0], id_of(&server, "sheet/short.abc"));
        assert!((body["results"][0]["score"].as_f64().unwrap() - 1.0).abs() < 1e-4);
    }

    #[test]
    fn an_image_is_searched_as_its_caption() {
        let server = TestServer::with_library(ServerConfig::default());
        let png = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../images/tests/fixtures/blip/images/p01_astronaut.png"),
        )
        .unwrap();
        let (status, body) = server.post_bytes("/v1/search/file?filename=photo.png", &png);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["caption"], "cake");
        // The caption's own text, and the library's copy of the image, both embedded as "cake".
        for hit in &body["results"].as_array().unwrap()[..2] {
            assert!(
                (hit["score"].as_f64().unwrap() - 1.0).abs() < 1e-4,
                "{body}"
            );
        }
        let id = id_of(&server, "images/astronaut.png");
        let (_, item) = server.get(&format!("/v1/items/{id}"));
        assert_eq!(item["modality"], "image");
        let response = server
            .request("GET", &format!("/v1/items/{id}/media"))
            .call()
            .unwrap();
        assert_eq!(response.content_type(), "image/png");
    }

    #[test]
    fn more_like_this_leaves_the_item_out() {
        let server = TestServer::with_library(ServerConfig::default());
        let id = id_of(&server, "sheet/short.abc");
        let (status, body) = server.get(&format!("/v1/items/{id}/similar?top_k=100"));
        assert_eq!(status, 200, "{body}");
        let ids = ids_of(&body);
        assert_eq!(ids.len(), super::common::library_files().len() - 1);
        assert!(!ids.contains(&id));
        let (status, _) = server.get("/v1/items/00000000000000ff/similar");
        assert_eq!(status, 404);
    }

    #[test]
    fn items_are_listed_and_fetched_by_id() {
        let server = TestServer::with_library(ServerConfig::default());
        let (status, body) = server.get("/v1/items?limit=2");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["items"].as_array().unwrap().len(), 2);
        let (_, audio) = server.get("/v1/items?filter=modality%3Daudio");
        assert_eq!(audio["items"].as_array().unwrap().len(), 2, "{audio}");
        let id = id_of(&server, "midi/short.mtf");
        let (status, item) = server.get(&format!("/v1/items/{id}"));
        assert_eq!(status, 200);
        assert_eq!(item["modality"], "midi");
        let (status, _) = server.get("/v1/items/00000000000000ff");
        assert_eq!(status, 404);
        let (status, _) = server.get("/v1/items/not-an-id");
        assert_eq!(status, 400);
        let (status, _) = server.get("/v1/items?limit=0");
        assert_eq!(status, 400);
        let (status, info) = server.get("/v1/library");
        assert_eq!(status, 200, "{info}");
    }

    #[test]
    fn media_is_served_with_its_type_and_ranges() {
        let server = TestServer::with_library(ServerConfig::default());
        let id = id_of(&server, "audio/stereo.mp3");
        let response = server
            .request("GET", &format!("/v1/items/{id}/media"))
            .call()
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.content_type(), "audio/mpeg");
        let expected = std::fs::read(server.dir.path().join("music/audio/stereo.mp3")).unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes).unwrap();
        assert_eq!(bytes, expected);
        let part = server
            .request("GET", &format!("/v1/items/{id}/media"))
            .set("Range", "bytes=0-9")
            .call()
            .unwrap();
        assert_eq!(part.status(), 206);
        assert_eq!(part.header("Content-Length"), Some("10"));
    }

    #[test]
    fn paths_never_reach_files_outside_the_library() {
        let server = TestServer::with_library(ServerConfig::default());
        let addr = server.url.trim_start_matches("http://").to_string();
        for path in [
            "/v1/items/..%2F..%2F..%2Fetc%2Fpasswd/media",
            "/v1/items/../../../etc/passwd/media",
            "/v1/items/%2Fetc%2Fpasswd/media",
            "/assets/..%2F..%2FCargo.toml",
            "/assets/../../Cargo.toml",
        ] {
            // Sent as typed: an HTTP client would normalise the dots away.
            let status = raw_get(&addr, path);
            assert!(status == 400 || status == 404, "{path}: {status}");
        }
    }

    /// `GET path` over a plain socket, exactly as given; the status code.
    fn raw_get(addr: &str, path: &str) -> u16 {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(!response.contains("root:"), "{path} leaked a file");
        response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap()
    }

    #[test]
    fn scores_are_rendered_as_abc_and_midi_as_smf() {
        let server = TestServer::with_library(ServerConfig::default());
        for name in ["sheet/short.abc", "sheet/bwv66.6.mxl"] {
            let id = id_of(&server, name);
            let (status, body) = server.get(&format!("/v1/items/{id}/notation"));
            assert_eq!(status, 200, "{name}: {body}");
            assert!(body["text"].as_str().unwrap().contains("K:"), "{name}");
        }
        for name in ["midi/short.mtf", "midi/wikimt_0024.mid"] {
            let id = id_of(&server, name);
            let response = server
                .request("GET", &format!("/v1/items/{id}/midi"))
                .call()
                .unwrap();
            assert_eq!(response.content_type(), "audio/midi");
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes).unwrap();
            assert_eq!(&bytes[..4], b"MThd", "{name}");
        }
        let audio = id_of(&server, "audio/mono.wav");
        let (status, _) = server.get(&format!("/v1/items/{audio}/notation"));
        assert_eq!(status, 404);
        let (status, _) = server.get(&format!("/v1/items/{audio}/midi"));
        assert_eq!(status, 404);
    }

    #[test]
    fn score_and_classify_take_items() {
        let server = TestServer::with_library(ServerConfig::default());
        let id = id_of(&server, "sheet/short.abc");
        let body = format!(r#"{{"a": [{{"item": "{id}"}}], "b": [{{"item": "{id}"}}]}}"#);
        let (status, answer) = server.post_json("/v1/score", &body);
        assert_eq!(status, 200, "{answer}");
        assert!((answer["score"].as_f64().unwrap() - 1.0).abs() < 1e-4);
        let body = format!(r#"{{"labels": ["jazz", "chorale"], "inputs": [{{"item": "{id}"}}]}}"#);
        let (status, answer) = server.post_json("/v1/classify", &body);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["results"][0]["input"]["item"], id.as_str());
        let (status, _) = server.post_json(
            "/v1/score",
            r#"{"a": [{"item": "00000000000000ff"}], "b": [{"text": "x"}]}"#,
        );
        assert_eq!(status, 404);
    }

    #[test]
    fn every_path_in_the_openapi_description_is_routed() {
        let server = TestServer::with_library(ServerConfig::default());
        let (status, doc) = server.get("/v1/openapi.json");
        assert_eq!(status, 200);
        let id = id_of(&server, "sheet/short.abc");
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.len() >= 16, "{}", paths.len());
        for (path, operations) in paths {
            let concrete = path.replace("{id}", &id);
            for method in operations.as_object().unwrap().keys() {
                let (status, body) = answer(
                    server
                        .request(&method.to_uppercase(), &concrete)
                        .set("Content-Type", "application/json")
                        .send_string("{}"),
                );
                let unrouted = status == 405
                    || body["error"]
                        .as_str()
                        .is_some_and(|e| e.starts_with("no route"));
                assert!(!unrouted, "{method} {path}: {status} {body}");
                assert!(status < 500, "{method} {path}: {status} {body}");
            }
        }
    }
}
