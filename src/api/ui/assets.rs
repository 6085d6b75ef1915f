//! The UI's static files, embedded in the binary: request → bytes with an ETag (a hash of
//! the content computed at compile time), cached for a year when asked for by the versioned
//! URL pages link to.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One embedded file.
pub struct Asset {
    pub path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    /// FNV-1a of `bytes`: the version in URLs and the ETag.
    hash: u64,
}

impl Asset {
    const fn new(path: &'static str, content_type: &'static str, bytes: &'static [u8]) -> Asset {
        Asset {
            path,
            content_type,
            bytes,
            hash: content_hash(bytes),
        }
    }

    /// The URL pages use: changes whenever the content does, so it can be cached forever.
    pub fn url(&self) -> String {
        format!("{}?v={}", self.path, self.version())
    }

    fn version(&self) -> String {
        format!("{:016x}", self.hash)
    }

    fn etag(&self) -> String {
        format!("\"{}\"", self.version())
    }
}

pub static CSS: Asset = Asset::new(
    "/assets/vctp.css",
    "text/css; charset=utf-8",
    include_bytes!("assets/vctp.css"),
);

pub static FAVICON: Asset = Asset::new(
    "/favicon.svg",
    "image/svg+xml",
    include_bytes!("assets/favicon.svg"),
);

/// 64-bit FNV-1a: enough to tell versions of a file apart, and computable in a const.
const fn content_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// Answers `asset`: 304 when the client has this version, else the bytes. Only the versioned
/// URL is immutable; the bare path must be revalidated, as its content changes with releases.
pub fn serve(asset: &Asset, version: Option<&str>, headers: &HeaderMap) -> Response {
    let etag = asset.etag();
    let cache = if version == Some(asset.version().as_str()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.bytes).into_response()
    };
    let response_headers = response.headers_mut();
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response_headers.insert(header::ETAG, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_urls_carry_the_content_hash() {
        assert_eq!(
            CSS.url(),
            format!("/assets/vctp.css?v={:016x}", content_hash(CSS.bytes))
        );
        // The published FNV-1a test vector.
        assert_eq!(content_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(content_hash(b"a"), content_hash(b"b"));
    }

    #[test]
    fn a_matching_etag_is_not_modified_and_only_the_current_version_is_immutable() {
        let mut headers = HeaderMap::new();
        let fresh = serve(&CSS, Some(CSS.version().as_str()), &headers);
        assert_eq!(fresh.status(), StatusCode::OK);
        assert_eq!(
            fresh.headers()[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        let old = serve(&CSS, Some("0123"), &headers);
        assert_eq!(old.headers()[header::CACHE_CONTROL], "no-cache");
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&CSS.etag()).unwrap(),
        );
        assert_eq!(
            serve(&CSS, None, &headers).status(),
            StatusCode::NOT_MODIFIED
        );
    }
}
