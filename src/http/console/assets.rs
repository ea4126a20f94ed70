//! The console's static files, embedded in the binary (`cargo run -- serve` is the whole set-up)
//! and served with a year's cache: pages name them with [`version`], a digest of their bytes, so
//! a changed file is a new URL.

use super::AppState;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// htmx 2.0.11 (npm `htmx.org`, `dist/htmx.min.js`, BSD Zero Clause; see `assets/README.md`).
const HTMX: &[u8] = include_bytes!("../../../assets/htmx.min.js");
const CSS: &[u8] = include_bytes!("../../../assets/console.css");
const JS: &[u8] = include_bytes!("../../../assets/console.js");

static DIGEST: LazyLock<String> = LazyLock::new(|| {
    let mut h = Sha256::new();
    for part in [HTMX, CSS, JS] {
        h.update(part);
    }
    hex::encode(&h.finalize()[..6])
});

/// The assets' version as the pages' `?v=` names it.
pub fn version() -> &'static str {
    DIGEST.as_str()
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/assets/htmx.min.js",
            get(|| async { asset(HTMX, JAVASCRIPT) }),
        )
        .route(
            "/assets/console.js",
            get(|| async { asset(JS, JAVASCRIPT) }),
        )
        .route(
            "/assets/console.css",
            get(|| async { asset(CSS, "text/css; charset=utf-8") }),
        )
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

fn asset(bytes: &'static [u8], content_type: &'static str) -> Response {
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    resp
}
