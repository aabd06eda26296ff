//! A build's artifacts on the dashboard: the section of `/builds/{id}` that lists them, and the
//! session-authenticated routes that serve the archive (`/builds/{id}/artifacts.zip`), one file
//! of it (`/builds/{id}/artifacts/{*path}`) and delete it. The work is the JSON API's
//! (`handlers/artifacts.rs`); only the authentication and the error pages differ.

use crate::app::AppState;
use crate::blocking::with_conn;
use crate::handlers::artifacts::{delete_artifacts, download_archive, one_file};
use crate::web::format;
use crate::web::session::CsrfForm;
use crate::web::{PageError, PageId, PageResult, Viewer, bad_id, see_other};
use axum::Form;
use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use lockstep_domain::BuildId;
use lockstep_storage_pg::{ArtifactEntry, ArtifactView, load_artifact};

/// How many entries the page lists: a build that keeps 50 000 files still opens at once, and
/// the archive has them all.
pub(crate) const SHOWN_ENTRIES: usize = 200;

/// The artifacts section of a build page.
pub(crate) struct ArtifactsSection {
    pub(crate) file_name: String,
    pub(crate) size: String,
    pub(crate) expiry: String,
    pub(crate) entries: Vec<EntryRow>,
    /// How many entries were left off the list.
    pub(crate) more: usize,
}

/// One entry of the list.
pub(crate) struct EntryRow {
    pub(crate) path: String,
    /// For a file: the address that downloads it.
    pub(crate) href: Option<String>,
    /// The file's size, or what the entry is instead (`directory`, `symlink`).
    pub(crate) size: String,
    /// For a symlink: where it points.
    pub(crate) target: Option<String>,
}

/// The section of build `id`'s page, or `None` when it kept no artifacts.
pub(crate) async fn section(
    state: &AppState,
    id: BuildId,
) -> Result<Option<ArtifactsSection>, PageError> {
    let view = with_conn(state, move |conn, _| load_artifact(conn, id)).await?;
    Ok(view.map(|view| laid_out(&view, Utc::now())))
}

fn laid_out(view: &ArtifactView, now: DateTime<Utc>) -> ArtifactsSection {
    let build = view.build_id.0;
    ArtifactsSection {
        file_name: view.file_name.clone(),
        size: format::size(view.size),
        expiry: expiry(view.expires_at, now),
        entries: view
            .entries
            .iter()
            .take(SHOWN_ENTRIES)
            .map(|entry| row(build, entry))
            .collect(),
        more: view.entries.len().saturating_sub(SHOWN_ENTRIES),
    }
}

fn row(build: i64, entry: &ArtifactEntry) -> EntryRow {
    let file = entry.kind == "file";
    EntryRow {
        path: entry.path.clone(),
        href: file.then(|| format!("/builds/{build}/artifacts/{}", path_of(&entry.path))),
        size: if file {
            format::size(entry.size)
        } else {
            entry.kind.clone()
        },
        target: entry.target.clone(),
    }
}

/// An archive path as an address's path: each segment percent-encoded, the `/` kept.
fn path_of(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            // `byte_serialize` writes a space as `+`, which a path reads literally; a `+` in
            // the name itself comes out as `%2B`, so the replacement is safe.
            form_urlencoded::byte_serialize(segment.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// When the artifacts go, as people say it.
fn expiry(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(at) = expires_at else {
        return "kept until deleted".to_owned();
    };
    let minutes = (at - now).num_minutes();
    match minutes {
        ..1 => "expired, to be deleted soon".to_owned(),
        1..60 => format!("expires in {minutes} min"),
        60..1440 => format!("expires in {} h", minutes / 60),
        1440..2160 => "expires in 1 day".to_owned(),
        // To the nearest day: an archive kept for 6 days says so just after its upload.
        _ => format!("expires in {} days", (minutes + 720) / 1440),
    }
}

/// `GET /builds/{id}/artifacts.zip`.
#[utoipa::path(get, path = "/builds/{id}/artifacts.zip", tag = "dashboard",
    params(("id" = i64, Path, description = "build id")),
    responses(
        (status = 200, description = "the archive, an attachment named by the job's `artifacts: name`", content_type = "application/zip"),
        (status = 303, description = "no session: to `/login?next=` this address"),
        (status = 400, description = "the id is not a number", content_type = "text/html"),
        (status = 404, description = "no such build, or it has no artifacts", content_type = "text/html"),
        (status = 503, description = "the object store cannot be reached", content_type = "text/html")
    ),
    security(("session" = [])))]
pub(crate) async fn archive(
    State(state): State<AppState>,
    _: Viewer,
    PageId(id): PageId,
) -> PageResult {
    Ok(download_archive(&state, id).await?)
}

/// `GET /builds/{id}/artifacts/{path}`.
#[utoipa::path(get, path = "/builds/{id}/artifacts/{path}", tag = "dashboard",
    params(("id" = i64, Path, description = "build id"),
        ("path" = String, Path, description = "the file's path in the archive, as the page lists it (may hold `/`)")),
    responses(
        (status = 200, description = "the file, as an attachment", content_type = "application/octet-stream"),
        (status = 303, description = "no session: to `/login?next=` this address"),
        (status = 400, description = "the id is not a number, or the path names a directory or a symlink", content_type = "text/html"),
        (status = 404, description = "no such build, no artifacts, or no such file in them", content_type = "text/html"),
        (status = 503, description = "the object store cannot be reached", content_type = "text/html")
    ),
    security(("session" = [])))]
pub(crate) async fn file(
    State(state): State<AppState>,
    _: Viewer,
    path: Result<Path<(String, String)>, PathRejection>,
) -> PageResult {
    let Ok(Path((id, path))) = path else {
        return Err(bad_id());
    };
    let id = id.parse().map_err(|_| bad_id())?;
    Ok(one_file(&state, id, &path).await?)
}

/// `POST /builds/{id}/delete-artifacts`.
///
/// The CSRF check is `actions::act`'s, but deleting is object-store work rather than a
/// transition, so it is not run through `act`.
#[utoipa::path(post, path = "/builds/{id}/delete-artifacts", tag = "dashboard",
    params(("id" = i64, Path, description = "build id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`csrf`: the session's CSRF token, as the page's form sends it"),
    responses(
        (status = 303, description = "deleted: back to the build"),
        (status = 400, description = "the id is not a number", content_type = "text/html"),
        (status = 403, description = "the CSRF token is missing or not this session's; nothing changed", content_type = "text/html"),
        (status = 404, description = "no such build, or it has no artifacts", content_type = "text/html"),
        (status = 503, description = "the object store cannot be reached", content_type = "text/html")
    ),
    security(("session" = [])))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    viewer: Viewer,
    PageId(id): PageId,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> PageResult {
    let csrf = form.map(|Form(form)| form.csrf).unwrap_or_default();
    viewer.check(&csrf)?;
    delete_artifacts(&state, id).await?;
    Ok(see_other(&format!("/builds/{id}")))
}

#[cfg(test)]
mod tests {
    use super::{SHOWN_ENTRIES, expiry, laid_out, path_of};
    use chrono::{TimeDelta, Utc};
    use lockstep_domain::{BuildId, PipelineId};
    use lockstep_storage_pg::{ArtifactEntry, ArtifactView};

    #[test]
    fn expiry_reads_as_how_long_is_left() {
        let now = Utc::now();
        assert_eq!(expiry(None, now), "kept until deleted");
        for (minutes, text) in [
            (-5, "expired, to be deleted soon"),
            (30, "expires in 30 min"),
            (150, "expires in 2 h"),
            (1500, "expires in 1 day"),
            (6 * 1440 - 3, "expires in 6 days"),
            (6 * 1440 + 800, "expires in 7 days"),
        ] {
            assert_eq!(
                expiry(Some(now + TimeDelta::minutes(minutes)), now),
                text,
                "{minutes}"
            );
        }
    }

    #[test]
    fn a_path_is_encoded_segment_by_segment() {
        assert_eq!(path_of("out/app"), "out/app");
        assert_eq!(path_of("out/my file+1.txt"), "out/my%20file%2B1.txt");
        assert_eq!(path_of("a/%/b#c?d"), "a/%25/b%23c%3Fd");
    }

    #[test]
    fn a_long_listing_is_cut_and_says_how_many_are_left() {
        let entry = |path: String, kind: &str| ArtifactEntry {
            path,
            kind: kind.to_owned(),
            size: 2048,
            target: (kind == "symlink").then(|| "app".to_owned()),
        };
        let mut entries = vec![
            entry("out".into(), "directory"),
            entry("out/link".into(), "symlink"),
        ];
        entries.extend((0..250).map(|n| entry(format!("out/{n}"), "file")));
        let now = Utc::now();
        let view = ArtifactView {
            build_id: BuildId(7),
            pipeline_id: PipelineId(1),
            job_name: "build".into(),
            file_name: "artifacts.zip".into(),
            object_key: "k".into(),
            size: 3 * 1_048_576,
            sha256: String::new(),
            entries,
            created_at: now,
            expires_at: None,
        };
        let section = laid_out(&view, now);
        assert_eq!(section.entries.len(), SHOWN_ENTRIES);
        assert_eq!(section.more, 52);
        assert_eq!(section.size, "3.0 MiB");
        let [directory, link, file, ..] = section.entries.as_slice() else {
            panic!("three rows at least");
        };
        assert_eq!(
            (directory.href.as_deref(), directory.size.as_str()),
            (None, "directory")
        );
        assert_eq!(
            (link.href.as_deref(), link.target.as_deref()),
            (None, Some("app"))
        );
        assert_eq!(file.href.as_deref(), Some("/builds/7/artifacts/out/0"));
        assert_eq!(file.size, "2 KiB");
    }
}
