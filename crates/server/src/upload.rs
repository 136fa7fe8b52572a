//! An uploaded query file: `multipart/form-data` (the first part with a file name, as a browser
//! form or `curl -F file=@tune.abc` sends it) or the raw body with its name in `?filename=`
//! (`curl --data-binary @tune.abc '…?filename=tune.abc'`). The engine reads it from memory; the
//! name only gives its kind (by extension), and errors quote it.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header;
use clamp3_engine::Item;
use std::path::{Path, PathBuf};

/// An uploaded file.
pub struct Upload {
    /// Its name without any folder (only the extension matters).
    pub name: PathBuf,
    /// Its contents.
    pub bytes: Vec<u8>,
}

impl Upload {
    /// The engine input.
    pub fn into_item(self) -> Item {
        Item::Bytes {
            name: self.name,
            bytes: self.bytes,
        }
    }

    /// Reads the upload from a request; `filename` is the `?filename=` of a raw body.
    pub async fn read(request: Request, filename: Option<&str>) -> Result<Upload, ApiError> {
        let is_multipart = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/form-data"));
        if is_multipart {
            let mut multipart = Multipart::from_request(request, &())
                .await
                .map_err(|e| ApiError::new(e.status(), e.body_text()))?;
            while let Some(field) = multipart
                .next_field()
                .await
                .map_err(|e| ApiError::new(e.status(), e.body_text()))?
            {
                let Some(name) = field.file_name().map(base_name) else {
                    continue;
                };
                let name = name?;
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| ApiError::new(e.status(), e.body_text()))?;
                return Ok(Upload {
                    name,
                    bytes: bytes.to_vec(),
                });
            }
            return Err(ApiError::bad_request(
                "the multipart body has no file part (a part with a filename)",
            ));
        }
        let Some(filename) = filename else {
            return Err(ApiError::bad_request(
                "send the file as multipart/form-data, or as the raw body with ?filename=NAME.EXT",
            ));
        };
        let name = base_name(filename)?;
        let bytes = Bytes::from_request(request, &())
            .await
            .map_err(|e| ApiError::new(e.status(), e.body_text()))?;
        Ok(Upload {
            name,
            bytes: bytes.to_vec(),
        })
    }
}

/// The last component of a client's file name: a client names a file, never a place.
fn base_name(name: &str) -> Result<PathBuf, ApiError> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    match Path::new(last).file_name() {
        Some(base) if !last.is_empty() => Ok(PathBuf::from(base)),
        _ => Err(ApiError::bad_request(format!(
            "{name:?} is not a file name (the extension gives the file's kind: tune.abc, song.mp3)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::base_name;
    use std::path::PathBuf;

    #[test]
    fn only_the_last_component_of_a_name_is_kept() {
        assert_eq!(base_name("tune.abc").unwrap(), PathBuf::from("tune.abc"));
        assert_eq!(
            base_name("../../etc/passwd.abc").unwrap(),
            PathBuf::from("passwd.abc")
        );
        assert_eq!(base_name("C:\\a\\b.mid").unwrap(), PathBuf::from("b.mid"));
        assert!(base_name("..").is_err());
        assert!(base_name("dir/").is_err());
    }
}
