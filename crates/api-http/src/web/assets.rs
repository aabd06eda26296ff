//! The dashboard's stylesheet and script, embedded in the binary: nothing to install or serve
//! beside the server, and no build step but cargo's.

use crate::error::ApiError;
use crate::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
    etag: LazyLock<String>,
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_str!(concat!("../../assets/", $name)),
            etag: LazyLock::new(|| {
                let digest = Sha256::digest(include_str!(concat!("../../assets/", $name)));
                format!("\"{}\"", hex::encode(&digest[..8]))
            }),
        }
    };
}

static ASSETS: [Asset; 2] = [
    asset!("dashboard.css", "text/css; charset=utf-8"),
    asset!("dashboard.js", "text/javascript; charset=utf-8"),
];

/// `GET /assets/{name}`. Browsers revalidate each time (the answer is a 304 while unchanged),
/// so a new server version's assets are picked up at once.
pub(crate) async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return ApiError::not_found("no such asset").into_response();
    };
    let etag = HeaderValue::from_str(&asset.etag).unwrap_or(HeaderValue::from_static("\"\""));
    let fresh = headers.get(IF_NONE_MATCH).is_some_and(|sent| *sent == etag);
    let cache = [
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (ETAG, etag),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        cache,
        [(CONTENT_TYPE, HeaderValue::from_static(asset.content_type))],
        asset.body,
    )
        .into_response()
}
