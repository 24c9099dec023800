//! `GET|HEAD /v1/files/{key}`: job files from the local store through signed,
//! time-limited URLs (no API key), streamed, with ranges for resumed downloads.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRef, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};

use super::error::{problem_response, ApiError, Problem};
use super::openapi::BinaryFile;
use super::AppState;
use crate::storage::{ObjectInfo, ReadError, Storage};

impl FromRef<AppState> for Arc<Storage> {
    fn from_ref(state: &AppState) -> Self {
        state.storage.clone()
    }
}

pub fn router() -> Router<AppState> {
    routes()
}

/// The routes over any state that holds the storage (the tests use the storage alone).
fn routes<S>() -> Router<S>
where
    Arc<Storage>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new().route(
        "/v1/files/{*key}",
        get(download_file).head(download_file_head),
    )
}

/// Download a job's file through its presigned URL.
#[utoipa::path(get, path = "/v1/files/{key}", tag = "files",
    params(
        ("key" = String, Path, description = "The object key, as in the presigned URL", example = "customers/demo/jobs/appointments_1758630144658_c7511999.ndjson.gz.cse"),
        ("expires" = i64, Query, description = "Expiry of the URL, unix seconds (from the presigned URL)"),
        ("signature" = String, Query, description = "Hex HMAC-SHA256 of the key and expiry (from the presigned URL)"),
        ("Range" = Option<String>, Header, description = "One range: `bytes=a-b`, `bytes=a-` or `bytes=-n`; several ranges are answered with the whole file"),
        ("If-None-Match" = Option<String>, Header, description = "ETag(s) already held; a match answers 304"),
        ("If-Range" = Option<String>, Header, description = "Apply `Range` only if the file still has this ETag (or Last-Modified date)"),
    ),
    responses(
        (status = 200, description = "The whole file, streamed",
            headers(("ETag" = String, description = "Quoted entity tag"), ("Content-Length" = u64), ("Accept-Ranges" = String, description = "bytes"),
                    ("Last-Modified" = String), ("Content-Disposition" = String, description = "attachment; filename=\"appointments_1758630144658_c7511999.ndjson.gz.cse\"")),
            content((inline(BinaryFile) = "application/octet-stream"))),
        (status = 206, description = "The requested range",
            headers(("Content-Range" = String, description = "bytes a-b/size"), ("ETag" = String), ("Content-Length" = u64)),
            content((inline(BinaryFile) = "application/octet-stream"))),
        (status = 304, description = "Not modified: If-None-Match matched the ETag", headers(("ETag" = String))),
        (status = 403, description = "The URL is missing its signature, tampered with or expired", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The file no longer exists (expired or deleted)", body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "The range starts past the end of the file", headers(("Content-Range" = String, description = "bytes */size")),
            body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn download_file(
    State(storage): State<Arc<Storage>>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve(&storage, &key, query.as_deref(), &headers, false).await
}

/// The headers of a job's file through its presigned URL (`Range` is ignored).
#[utoipa::path(head, path = "/v1/files/{key}", tag = "files",
    params(
        ("key" = String, Path, description = "The object key, as in the presigned URL"),
        ("expires" = i64, Query, description = "Expiry of the URL, unix seconds"),
        ("signature" = String, Query, description = "Hex HMAC-SHA256 of the key and expiry"),
        ("If-None-Match" = Option<String>, Header, description = "ETag(s) already held; a match answers 304"),
    ),
    responses(
        (status = 200, description = "The file's headers, no body",
            headers(("ETag" = String), ("Content-Length" = u64), ("Accept-Ranges" = String), ("Last-Modified" = String))),
        (status = 304, description = "Not modified: If-None-Match matched the ETag"),
        (status = 403, description = "The URL is missing its signature, tampered with or expired", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The file no longer exists (expired or deleted)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn download_file_head(
    State(storage): State<Arc<Storage>>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve(&storage, &key, query.as_deref(), &headers, true).await
}

async fn serve(
    storage: &Storage,
    key: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    head_only: bool,
) -> Result<Response, ApiError> {
    authorize(storage, key, query, Utc::now())?;
    let gone = || ApiError::NotFound("the file no longer exists; it may have expired".into());
    let info = storage.head(key).await?.ok_or_else(gone)?;
    let etag = format!("\"{}\"", info.etag);
    if header_text(headers, header::IF_NONE_MATCH).is_some_and(|v| none_match_hits(v, &etag)) {
        return Ok(not_modified(&info, &etag));
    }
    // Range handling is defined for GET only (RFC 9110 §14.2).
    let wanted = if head_only {
        Wanted::Full
    } else {
        wanted_range(headers, &info, &etag)
    };
    let range = match wanted {
        Wanted::Full => None,
        Wanted::Part(start, end) => Some((start, end)),
        Wanted::Unsatisfiable => return Ok(unsatisfiable(info.size)),
    };
    if head_only {
        let mut response = StatusCode::OK.into_response();
        file_headers(response.headers_mut(), key, &info, &etag, info.size);
        return Ok(response);
    }
    let read = match storage.get_range(key, range).await {
        Ok(read) => read,
        Err(ReadError::NotFound) => return Err(gone()),
        Err(ReadError::Unsatisfiable { size }) => return Ok(unsatisfiable(size)),
        Err(ReadError::InvalidKey(e)) => return Err(ApiError::Forbidden(e.to_string())),
        Err(ReadError::Other(e)) => return Err(ApiError::Internal(e)),
    };
    let etag = format!("\"{}\"", read.info.etag);
    let length = read.range.end - read.range.start;
    let mut response = Response::new(Body::from_stream(read.body));
    file_headers(response.headers_mut(), key, &read.info, &etag, length);
    if range.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let content_range = format!(
            "bytes {}-{}/{}",
            read.range.start,
            read.range.end.saturating_sub(1),
            read.info.size
        );
        response
            .headers_mut()
            .insert(header::CONTENT_RANGE, value(&content_range));
    }
    Ok(response)
}

/// The signature check: a URL without `expires` and `signature` is as bad as a forged one.
fn authorize(
    storage: &Storage,
    key: &str,
    query: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let mut expires = None;
    let mut signature = None;
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "expires" if expires.is_none() => expires = Some(value.into_owned()),
            "signature" if signature.is_none() => signature = Some(value.into_owned()),
            _ => {}
        }
    }
    let verified = match (expires.and_then(|e| e.parse::<i64>().ok()), signature) {
        (Some(expires), Some(signature)) => storage.verify(key, expires, &signature, now),
        _ => Err(crate::storage::Denied::Malformed),
    };
    verified.map_err(|denied| ApiError::Forbidden(denied.to_string()))
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `If-None-Match` uses the weak comparison: `W/"x"` matches `"x"`.
fn none_match_hits(value: &str, etag: &str) -> bool {
    value
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// What a `GET` asked for.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    Full,
    /// First and last byte, both inside the file.
    Part(u64, u64),
    Unsatisfiable,
}

fn wanted_range(headers: &HeaderMap, info: &ObjectInfo, etag: &str) -> Wanted {
    let Some(range) = header_text(headers, header::RANGE) else {
        return Wanted::Full;
    };
    if let Some(if_range) = headers.get(header::IF_RANGE) {
        if !if_range_holds(if_range.to_str().unwrap_or_default().trim(), info, etag) {
            return Wanted::Full;
        }
    }
    parse_range(range, info.size)
}

/// `If-Range`: a strong ETag match, or exactly the Last-Modified date; else the whole file.
fn if_range_holds(value: &str, info: &ObjectInfo, etag: &str) -> bool {
    if value.starts_with('"') || value.starts_with("W/") {
        return value == etag;
    }
    DateTime::parse_from_rfc2822(value)
        .is_ok_and(|date| date.timestamp() == info.last_modified.timestamp())
}

/// One `bytes=` range against a file of `size` bytes; anything else is ignored (full file).
fn parse_range(value: &str, size: u64) -> Wanted {
    let value = value.trim();
    let Some(spec) = value
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
        .map(|_| value[6..].trim())
    else {
        return Wanted::Full;
    };
    if spec.contains(',') {
        return Wanted::Full;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Wanted::Full;
    };
    let number = |text: &str| -> Option<u64> {
        let text = text.trim();
        let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        if digits {
            text.parse().ok()
        } else {
            None
        }
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // bytes=-n: the last n bytes.
        (true, false) => match number(last) {
            Some(0) => Wanted::Unsatisfiable,
            Some(_) if size == 0 => Wanted::Unsatisfiable,
            Some(n) => Wanted::Part(size.saturating_sub(n), size - 1),
            None => Wanted::Full,
        },
        // bytes=a- and bytes=a-b.
        (false, open) => {
            let (Some(start), end) = (
                number(first),
                if open { Some(u64::MAX) } else { number(last) },
            ) else {
                return Wanted::Full;
            };
            match end {
                None => Wanted::Full,
                Some(end) if end < start => Wanted::Full,
                Some(_) if start >= size => Wanted::Unsatisfiable,
                Some(end) => Wanted::Part(start, end.min(size - 1)),
            }
        }
        (true, true) => Wanted::Full,
    }
}

fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn http_date(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn file_headers(headers: &mut HeaderMap, key: &str, info: &ObjectInfo, etag: &str, length: u64) {
    let file_name = key.rsplit('/').next().unwrap_or(key);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        value(&format!("attachment; filename=\"{file_name}\"")),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::ETAG, value(etag));
    headers.insert(header::LAST_MODIFIED, value(&http_date(info.last_modified)));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
}

fn not_modified(info: &ObjectInfo, etag: &str) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    let headers = response.headers_mut();
    headers.insert(header::ETAG, value(etag));
    headers.insert(header::LAST_MODIFIED, value(&http_date(info.last_modified)));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

fn unsatisfiable(size: u64) -> Response {
    let mut response = problem_response(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "range-not-satisfiable",
        "Range not satisfiable",
        format!("the requested range is outside the file, which has {size} bytes"),
        Vec::new(),
    );
    response
        .headers_mut()
        .insert(header::CONTENT_RANGE, value(&format!("bytes */{size}")));
    response
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::storage::body_channel;

    const KEY: &str = "customers/demo/jobs/appointments_1758630144658_c7511999.ndjson.gz.cse";

    struct Fixture {
        _dir: tempfile::TempDir,
        storage: Arc<Storage>,
        app: Router,
        bytes: Vec<u8>,
        etag: String,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::local(dir.path().to_path_buf(), [5; 32]).unwrap());
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let (sender, body) = body_channel(2);
        let producer = async {
            sender.send(bytes::Bytes::from(bytes.clone())).await?;
            sender.finish().await
        };
        let (stored, sent) = tokio::join!(storage.put_stream(KEY, body), producer);
        sent.unwrap();
        let etag = format!("\"{}\"", stored.unwrap().etag);
        let app =
            routes::<Arc<Storage>>()
                .with_state(storage.clone())
                .layer(axum::middleware::from_fn(
                    crate::http::error::problem_context,
                ));
        Fixture {
            _dir: dir,
            storage,
            app,
            bytes,
            etag,
        }
    }

    impl Fixture {
        /// Path and query of a fresh presigned URL for `key`.
        fn url(&self, key: &str, valid_for: chrono::Duration) -> String {
            let url = self
                .storage
                .presign("http://localhost:8080", key, Utc::now() + valid_for);
            url.strip_prefix("http://localhost:8080")
                .unwrap()
                .to_string()
        }

        async fn send(
            &self,
            method: &str,
            uri: &str,
            headers: &[(&str, &str)],
        ) -> (StatusCode, HeaderMap, Vec<u8>) {
            let mut request = Request::builder().method(method).uri(uri);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let response = self
                .app
                .clone()
                .oneshot(request.body(Body::empty()).unwrap())
                .await
                .unwrap();
            let (parts, body) = response.into_parts();
            let body = to_bytes(body, usize::MAX).await.unwrap().to_vec();
            (parts.status, parts.headers, body)
        }

        async fn get(&self, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
            self.send("GET", &self.url(KEY, chrono::Duration::hours(1)), headers)
                .await
        }
    }

    fn text<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
        headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
    }

    #[tokio::test]
    async fn serves_the_whole_file_with_its_headers() {
        let f = fixture().await;
        let (status, headers, body) = f.get(&[]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body == f.bytes);
        assert_eq!(text(&headers, "content-length"), "1000");
        assert_eq!(text(&headers, "etag"), f.etag);
        assert!(f.etag.starts_with('"') && f.etag.ends_with('"') && f.etag.len() > 2);
        assert_eq!(text(&headers, "accept-ranges"), "bytes");
        assert_eq!(text(&headers, "content-type"), "application/octet-stream");
        assert_eq!(
            text(&headers, "content-disposition"),
            "attachment; filename=\"appointments_1758630144658_c7511999.ndjson.gz.cse\""
        );
        assert_eq!(text(&headers, "cache-control"), "private, no-store");
        assert!(text(&headers, "last-modified").ends_with(" GMT"));
        assert!(headers.get("content-range").is_none());

        let (status, headers, body) = f
            .send(
                "HEAD",
                &f.url(KEY, chrono::Duration::hours(1)),
                &[("range", "bytes=0-9")],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.is_empty());
        assert_eq!(text(&headers, "content-length"), "1000");
        assert_eq!(text(&headers, "etag"), f.etag);
    }

    #[tokio::test]
    async fn honours_single_ranges() {
        let f = fixture().await;
        for (range, start, end) in [
            ("bytes=10-19", 10, 19),
            ("bytes=990-", 990, 999),
            ("bytes=-5", 995, 999),
            ("bytes=-5000", 0, 999),
            ("bytes=10-5000", 10, 999),
            ("bytes=0-0", 0, 0),
            ("BYTES=7-8", 7, 8),
        ] {
            let (status, headers, body) = f.get(&[("range", range)]).await;
            assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
            assert_eq!(
                text(&headers, "content-range"),
                format!("bytes {start}-{end}/1000"),
                "{range}"
            );
            assert_eq!(
                text(&headers, "content-length"),
                (end - start + 1).to_string(),
                "{range}"
            );
            assert_eq!(text(&headers, "etag"), f.etag);
            assert!(body == f.bytes[start..=end], "{range}");
        }
        // Several ranges, other units and garbage: the whole file.
        for range in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=abc",
            "bytes=5-2",
            "bytes=-",
            "bytes=+1-2",
        ] {
            let (status, headers, body) = f.get(&[("range", range)]).await;
            assert_eq!(status, StatusCode::OK, "{range}");
            assert!(headers.get("content-range").is_none());
            assert_eq!(body.len(), 1000, "{range}");
        }
        for range in ["bytes=1000-", "bytes=5000-6000", "bytes=-0"] {
            let (status, headers, body) = f.get(&[("range", range)]).await;
            assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
            assert_eq!(text(&headers, "content-range"), "bytes */1000");
            assert_eq!(text(&headers, "content-type"), "application/problem+json");
            let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(problem["status"], 416);
        }
    }

    #[tokio::test]
    async fn conditional_requests() {
        let f = fixture().await;
        let weak = format!("W/{}", f.etag);
        let listed = format!("\"other\", {}", f.etag);
        for tag in [f.etag.as_str(), weak.as_str(), listed.as_str(), "*"] {
            let (status, headers, body) = f.get(&[("if-none-match", tag)]).await;
            assert_eq!(status, StatusCode::NOT_MODIFIED, "{tag}");
            assert_eq!(text(&headers, "etag"), f.etag);
            assert!(body.is_empty());
        }
        let (status, _, body) = f.get(&[("if-none-match", "\"other\"")]).await;
        assert_eq!((status, body.len()), (StatusCode::OK, 1000));

        let range = ("range", "bytes=100-199");
        let (status, _, body) = f.get(&[range, ("if-range", &f.etag)]).await;
        assert_eq!((status, body.len()), (StatusCode::PARTIAL_CONTENT, 100));
        for stale in [
            "\"changed\"",
            weak.as_str(),
            "Sun, 06 Nov 1994 08:49:37 GMT",
        ] {
            let (status, _, body) = f.get(&[range, ("if-range", stale)]).await;
            assert_eq!((status, body.len()), (StatusCode::OK, 1000), "{stale}");
        }
        let (_, headers, _) = f.get(&[]).await;
        let last_modified = text(&headers, "last-modified").to_string();
        let (status, _, _) = f.get(&[range, ("if-range", &last_modified)]).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    }

    #[tokio::test]
    async fn refuses_bad_urls_and_missing_files() {
        let f = fixture().await;
        let good = f.url(KEY, chrono::Duration::hours(1));
        let (path, query) = good.split_once('?').unwrap();
        let expires: i64 = query
            .split('&')
            .find_map(|p| p.strip_prefix("expires="))
            .unwrap()
            .parse()
            .unwrap();
        let signature = query
            .split('&')
            .find_map(|p| p.strip_prefix("signature="))
            .unwrap();
        let flipped = format!(
            "{}{}",
            if signature.starts_with('0') { "1" } else { "0" },
            &signature[1..]
        );
        let other_key = path.replace("c7511999", "c7511998");
        for uri in [
            path.to_string(),
            format!("{path}?expires={expires}"),
            format!("{path}?signature={signature}"),
            format!("{path}?expires={}&signature={signature}", expires + 60),
            format!("{path}?expires=soon&signature={signature}"),
            format!("{path}?expires={expires}&signature={flipped}"),
            format!("{other_key}?{query}"),
            f.url(KEY, chrono::Duration::seconds(-5)),
            format!("/v1/files/customers/%2e%2e/x?{query}"),
        ] {
            for method in ["GET", "HEAD"] {
                let (status, headers, body) = f.send(method, &uri, &[]).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}");
                assert_eq!(text(&headers, "content-type"), "application/problem+json");
                if method == "GET" {
                    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    assert_eq!(
                        problem["type"],
                        "https://docs.cipherstream.dev/errors/forbidden"
                    );
                }
            }
        }
        let (status, _, _) = f.send("GET", &good, &[]).await;
        assert_eq!(status, StatusCode::OK);

        f.storage.delete(KEY).await.unwrap();
        for method in ["GET", "HEAD"] {
            let (status, _, _) = f.send(method, &good, &[]).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
        }
    }

    #[test]
    fn parses_ranges() {
        use Wanted::*;
        for (value, size, wanted) in [
            ("bytes=0-499", 1000, Part(0, 499)),
            ("bytes=500-", 1000, Part(500, 999)),
            ("bytes=-1", 1000, Part(999, 999)),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=-1", 0, Unsatisfiable),
            ("bytes=18446744073709551615-", 10, Unsatisfiable),
            ("bytes=99999999999999999999-", 10, Full),
            ("bytes=", 10, Full),
            ("bytes=1", 10, Full),
            ("bytes=1-2-3", 10, Full),
            ("", 10, Full),
        ] {
            assert_eq!(parse_range(value, size), wanted, "{value}");
        }
    }
}
