//! The dashboard's static files, embedded in the binary: our stylesheet
//! and script, and the front-end libraries vendored from npm at pinned
//! versions (`assets/vendor/README.md` lists each with its version,
//! integrity and licence). Served with a strong `ETag` and revalidated, so
//! a new binary's files are never stale.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// One embedded file.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "dashboard.css",
        media_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/dashboard.css"),
    },
    Asset {
        name: "dashboard.js",
        media_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/dashboard.js"),
    },
    Asset {
        name: "favicon.svg",
        media_type: "image/svg+xml",
        body: include_bytes!("../assets/favicon.svg"),
    },
    Asset {
        name: "uPlot.iife.min.js",
        media_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/vendor/uPlot.iife.min.js"),
    },
    Asset {
        name: "uPlot.min.css",
        media_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/vendor/uPlot.min.css"),
    },
    Asset {
        name: "htmx.min.js",
        media_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/vendor/htmx.min.js"),
    },
    Asset {
        name: "uPlot.LICENSE",
        media_type: "text/plain; charset=utf-8",
        body: include_bytes!("../assets/vendor/uPlot.LICENSE"),
    },
    Asset {
        name: "htmx.LICENSE",
        media_type: "text/plain; charset=utf-8",
        body: include_bytes!("../assets/vendor/htmx.LICENSE"),
    },
];

fn etags() -> &'static Vec<String> {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| format!("\"{}\"", &hex::encode(Sha256::digest(a.body))[..16]))
            .collect()
    })
}

/// Total bytes of the files every page loads (for the page-weight check).
pub fn page_bytes() -> usize {
    ASSETS
        .iter()
        .filter(|a| !a.name.ends_with(".LICENSE"))
        .map(|a| a.body.len())
        .sum()
}

/// `GET /dashboard/assets/{name}`: the file, or 404; 304 when the caller's
/// `If-None-Match` has its tag.
pub async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some((index, asset)) = ASSETS.iter().enumerate().find(|(_, a)| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let etag = &etags()[index];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.media_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300, must-revalidate"),
    );
    if let Ok(value) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, value);
    }
    response
}
