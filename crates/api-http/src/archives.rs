//! Archives over HTTP: receiving an upload (size-limited, hashed, checked entry by entry before
//! anything is stored), storing it in the object store, and streaming one back.

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::metrics::ArchiveKind;
use axum::body::Body;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use lockstep_storage_pg::ArtifactEntry;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;

/// The most entries an uploaded archive may hold: its listing is kept in the database.
pub(crate) const MAX_ENTRIES: u64 = 50_000;
/// The most bytes an uploaded archive may unpack to.
const MAX_UNPACKED_BYTES: u64 = 16 << 30;

/// An upload, received whole into a temporary file and checked.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) file: tempfile::TempPath,
    pub(crate) size: u64,
    pub(crate) sha256: [u8; 32],
    pub(crate) entries: Vec<ArtifactEntry>,
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "archive_too_large",
        format!(
            "the archive is larger than this server takes ({limit} bytes; the server's \
             LOCKSTEP_MAX_ARTIFACT_BYTES sets it)"
        ),
    )
    .with_field("body")
}

fn io_failure(error: &std::io::Error) -> ApiError {
    ApiError::internal(&format!(
        "cannot write an upload to a temporary file: {error}"
    ))
}

/// Reads the body into a temporary file, refusing it (413) once it passes the server's limit
/// (at once when `Content-Length` says so), then checks every entry: a name that would leave
/// the build directory, a symlink pointing out, too many entries or bytes is a 422.
pub(crate) async fn receive(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Received> {
    let limit = state.max_artifact_bytes;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large(limit));
    }
    let path = tempfile::NamedTempFile::new()
        .map_err(|e| io_failure(&e))?
        .into_temp_path();
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| io_failure(&e))?;
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| {
            ApiError::bad_request(
                Some("body".to_owned()),
                format!("the upload broke off: {error}"),
            )
        })?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(too_large(limit));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(|e| io_failure(&e))?;
    }
    file.flush().await.map_err(|e| io_failure(&e))?;
    drop(file);
    let checked = path.to_path_buf();
    let entries = tokio::task::spawn_blocking(move || {
        let limits = lockstep_archive::Limits {
            max_entries: MAX_ENTRIES,
            max_bytes: MAX_UNPACKED_BYTES,
        };
        lockstep_archive::inspect(&checked, &limits)
    })
    .await?
    .map_err(|error| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_archive",
            format!("the archive was refused: {error}"),
        )
        .with_field("body")
    })?;
    Ok(Received {
        file: path,
        size,
        sha256: hasher.finalize().into(),
        entries: entries.into_iter().map(entry).collect(),
    })
}

fn entry(entry: lockstep_archive::Entry) -> ArtifactEntry {
    use lockstep_archive::EntryKind;
    let (kind, target) = match entry.kind {
        EntryKind::File { .. } => ("file", None),
        EntryKind::Directory => ("directory", None),
        EntryKind::Symlink { target } => ("symlink", Some(target)),
    };
    ArtifactEntry {
        path: entry.path,
        kind: kind.to_owned(),
        size: entry.size,
        target,
    }
}

/// The object store failed: the server cannot do its part now, so the client should retry.
pub(crate) fn store_error(error: &object_store::Error) -> ApiError {
    tracing::warn!(%error, "object store call failed");
    ApiError::unavailable("the object store is unavailable; try again")
}

/// Deletes an object no row names any more; a failure leaves an orphan, logged.
pub(crate) async fn discard(state: &AppState, key: &str) {
    if let Err(error) = state.objects.delete(key).await {
        tracing::warn!(%error, object_key = key, "cannot delete an object no row names; it stays");
    }
}

/// Streams an object as a download: ZIP, its length, and, given a name, as an attachment.
pub(crate) async fn respond(
    state: &AppState,
    kind: ArchiveKind,
    key: &str,
    size: u64,
    file_name: Option<&str>,
) -> ApiResult<Response> {
    let stream = state
        .objects
        .stream(key)
        .await
        .map_err(|error| match error {
            object_store::Error::NotFound { .. } => {
                ApiError::not_found("the archive is gone (it expired or was deleted)")
            }
            other => store_error(&other),
        })?;
    state.metrics.downloaded(kind, size);
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/zip"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(size));
    if let Some(name) = file_name {
        headers.insert(CONTENT_DISPOSITION, attachment(name));
    }
    Ok(response)
}

/// `Content-Disposition: attachment` for a file name of any characters: an ASCII fallback
/// and the exact name in RFC 5987 form.
pub(crate) fn attachment(name: &str) -> HeaderValue {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}
