//! The browser pages: built into the binary, or read from `--static-dir`.

use std::path::{Component, Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../static/"]
struct Embedded;

/// Where pages come from.
#[derive(Debug, Clone)]
pub enum Pages {
    Embedded,
    Dir(PathBuf),
}

impl Pages {
    /// The file for a request path, mapping `dir/` to `dir/index.html`.
    pub async fn get(&self, path: &str) -> Option<(Vec<u8>, String)> {
        let rel = relative_path(path)?;
        match self {
            Pages::Embedded => {
                let file = Embedded::get(&rel)?;
                Some((file.data.into_owned(), mime_for(&rel)))
            }
            Pages::Dir(dir) => {
                let data = tokio::fs::read(dir.join(&rel)).await.ok()?;
                Some((data, mime_for(&rel)))
            }
        }
    }

    /// Serves `uri` or answers 404 (a directory without its slash is
    /// redirected, so relative links inside the page resolve).
    pub async fn serve(&self, uri: &Uri) -> Response {
        let path = uri.path();
        if let Some((data, mime)) = self.get(path).await {
            return file_response(data, &mime);
        }
        if !path.ends_with('/') && self.get(&format!("{path}/")).await.is_some() {
            return (
                StatusCode::PERMANENT_REDIRECT,
                [(header::LOCATION, format!("{path}/"))],
            )
                .into_response();
        }
        (StatusCode::NOT_FOUND, "not found\n").into_response()
    }
}

fn file_response(data: Vec<u8>, mime: &str) -> Response {
    let mut res = Response::new(Body::from(data));
    if let Ok(v) = HeaderValue::from_str(mime) {
        res.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    // Pages change with the binary; let browsers revalidate.
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

fn mime_for(rel: &str) -> String {
    let guess = mime_guess::from_path(rel).first_or_octet_stream();
    let textual = guess.type_() == mime_guess::mime::TEXT
        || matches!(guess.subtype().as_str(), "javascript" | "json");
    if textual {
        format!("{guess}; charset=utf-8")
    } else {
        guess.to_string()
    }
}

/// A safe relative path inside the pages folder, or `None` for anything that
/// tries to leave it.
fn relative_path(path: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?;
    let mut rel = decoded.trim_start_matches('/').to_string();
    if rel.is_empty() || rel.ends_with('/') {
        rel.push_str("index.html");
    }
    let ok = Path::new(&rel)
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    ok.then_some(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_escape_the_pages_folder() {
        assert_eq!(relative_path("/").as_deref(), Some("index.html"));
        assert_eq!(
            relative_path("/ticker/").as_deref(),
            Some("ticker/index.html")
        );
        assert_eq!(
            relative_path("/ticker/app.js").as_deref(),
            Some("ticker/app.js")
        );
        assert_eq!(relative_path("/../etc/passwd"), None);
        assert_eq!(relative_path("/ticker/%2e%2e/%2e%2e/x"), None);
    }

    #[test]
    fn text_types_carry_utf8() {
        assert_eq!(mime_for("a.html"), "text/html; charset=utf-8");
        assert!(mime_for("a.js").ends_with("javascript; charset=utf-8"));
        assert_eq!(mime_for("a.png"), "image/png");
    }
}
