//! Files that pass between jobs, runner side: before the script, the dependencies' artifacts
//! and the caches are fetched and unpacked into the build directory; after it, the job's
//! artifacts and caches are archived and uploaded, each as its `when` says. Every step writes
//! a line to the build's log.

use crate::client::{CallError, Client, Job};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// A dependency's archive the job payload lists.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Fetch {
    pub(crate) build_id: i64,
    pub(crate) job: String,
    pub(crate) size: u64,
}

/// When a job's artifacts or cache are uploaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum When {
    #[default]
    OnSuccess,
    OnFailure,
    Always,
}

impl When {
    fn uploads(self, succeeded: bool) -> bool {
        match self {
            Self::OnSuccess => succeeded,
            Self::OnFailure => !succeeded,
            Self::Always => true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ArtifactsSpec {
    pub(crate) paths: Vec<String>,
    #[serde(default)]
    pub(crate) exclude: Vec<String>,
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) when: When,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum CacheKey {
    Text(String),
    Files {
        files: Vec<String>,
        #[serde(default)]
        prefix: Option<String>,
    },
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CacheSpec {
    pub(crate) key: CacheKey,
    pub(crate) paths: Vec<String>,
    /// `pull-push`, `pull` or `push`.
    pub(crate) policy: String,
    #[serde(default)]
    pub(crate) when: When,
}

impl CacheSpec {
    fn pulls(&self) -> bool {
        self.policy != "push"
    }
    fn pushes(&self) -> bool {
        self.policy != "pull"
    }
}

/// Where a build's archives go while they travel: beside its directory, never in it, so that
/// no glob of the job can match them.
fn scratch(dir: &Path, what: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map_or_else(|| "build".to_owned(), |n| n.to_string_lossy().into_owned());
    dir.with_file_name(format!(".{name}.{what}.zip"))
}

/// The log, shared with the script's output.
type Notes = mpsc::Sender<Vec<u8>>;

async fn note(notes: &Notes, line: String) {
    let _ = notes
        .send(format!("lockstep-worker: {line}\n").into_bytes())
        .await;
}

/// Fetches and unpacks what the job needs before its script. `Err` says why the build cannot
/// run (a dependency's artifacts could not be fetched or unpacked); a missing cache is only a
/// note.
pub(crate) async fn fetch(
    client: &Client,
    job: &Job,
    dir: &Path,
    notes: &Notes,
) -> Result<(), String> {
    for fetch in &job.fetch {
        note(
            notes,
            format!(
                "fetching the artifacts of `{}` (build {}, {} bytes)",
                fetch.job, fetch.build_id, fetch.size
            ),
        )
        .await;
        let path = format!("/jobs/{}/artifacts/{}", job.id, fetch.build_id);
        match download_and_unpack(client, &path, dir, "fetch").await {
            Ok(true) => {}
            Ok(false) => {
                return Err(format!(
                    "the artifacts of `{}` are gone (expired or deleted)",
                    fetch.job
                ));
            }
            Err(error) => {
                return Err(format!(
                    "cannot fetch the artifacts of `{}`: {error}",
                    fetch.job
                ));
            }
        }
    }
    for cache in job.caches.iter().filter(|c| c.pulls()) {
        let key = cache_key(&cache.key, &job.variables, dir);
        let path = format!("/jobs/{}/cache?key={}", job.id, encode(&key));
        let line = match download_and_unpack(client, &path, dir, "cache").await {
            Ok(true) => format!("restored the cache `{key}`"),
            Ok(false) => format!("no cache `{key}` yet"),
            // A cache is an optimisation: the job runs without it.
            Err(error) => format!("WARNING: cannot restore the cache `{key}`: {error}"),
        };
        note(notes, line).await;
    }
    Ok(())
}

async fn download_and_unpack(
    client: &Client,
    path: &str,
    dir: &Path,
    what: &str,
) -> Result<bool, String> {
    let archive = scratch(dir, what);
    let found = client
        .download(path, &archive)
        .await
        .map_err(|e| e.to_string())?;
    if !found {
        return Ok(false);
    }
    let root = dir.to_path_buf();
    let unpacked = {
        let archive = archive.clone();
        tokio::task::spawn_blocking(move || {
            lockstep_archive::unpack(&archive, &root, &lockstep_archive::Limits::DEFAULT)
        })
        .await
    };
    let _ = std::fs::remove_file(&archive);
    unpacked
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(true)
}

/// Archives and uploads what the job keeps, now that its script ended (`succeeded` or not).
/// `Err` says why the build must fail: its artifacts could not be kept. A cache that could not
/// be kept is only a warning.
pub(crate) async fn keep(
    client: &Client,
    job: &Job,
    dir: &Path,
    succeeded: bool,
    notes: &Notes,
) -> Result<(), String> {
    if let Some(artifacts) = job.artifacts.as_ref().filter(|a| a.when.uploads(succeeded)) {
        let path = match &artifacts.name {
            Some(name) => format!(
                "/jobs/{}/artifacts?name={}",
                job.id,
                encode(&expand(name, &job.variables))
            ),
            None => format!("/jobs/{}/artifacts", job.id),
        };
        let kept = archive_and_upload(
            client,
            &path,
            dir,
            &artifacts.paths,
            &artifacts.exclude,
            notes,
        )
        .await
        .map_err(|error| format!("cannot upload the artifacts: {error}"))?;
        note(notes, format!("uploaded the artifacts: {kept}")).await;
    }
    for cache in job
        .caches
        .iter()
        .filter(|c| c.pushes() && c.when.uploads(succeeded))
    {
        let key = cache_key(&cache.key, &job.variables, dir);
        let path = format!("/jobs/{}/cache?key={}", job.id, encode(&key));
        let line = match archive_and_upload(client, &path, dir, &cache.paths, &[], notes).await {
            Ok(kept) => format!("saved the cache `{key}`: {kept}"),
            Err(error) => format!("WARNING: cannot save the cache `{key}`: {error}"),
        };
        note(notes, line).await;
    }
    Ok(())
}

/// Archives `paths` (less `exclude`) and uploads them; says what went up.
async fn archive_and_upload(
    client: &Client,
    path: &str,
    dir: &Path,
    paths: &[String],
    exclude: &[String],
    notes: &Notes,
) -> Result<String, String> {
    let archive = scratch(dir, "upload");
    let created = {
        let (root, out) = (dir.to_path_buf(), archive.clone());
        let (paths, exclude) = (paths.to_vec(), exclude.to_vec());
        tokio::task::spawn_blocking(move || lockstep_archive::create(&root, &paths, &exclude, &out))
            .await
            .map_err(|e| e.to_string())?
    };
    let created = match created {
        Ok(created) => created,
        Err(error) => {
            let _ = std::fs::remove_file(&archive);
            return Err(error.to_string());
        }
    };
    for pattern in &created.unmatched {
        // GitLab's behaviour: a path that matched nothing is worth a warning, not a failure.
        note(notes, format!("WARNING: `{pattern}` matched no files")).await;
    }
    let sent = upload_with_retries(client, path, &archive).await;
    let _ = std::fs::remove_file(&archive);
    sent?;
    Ok(format!(
        "{} entries, {} bytes",
        created.entries, created.bytes
    ))
}

/// Uploads are retried whole while the server is unavailable (the server keeps nothing of an
/// upload that broke off); a refusal (too large, a bad archive, the lease lost) is final.
async fn upload_with_retries(client: &Client, path: &str, archive: &Path) -> Result<(), String> {
    let mut backoff = crate::backoff::Backoff::new(
        std::time::Duration::from_millis(200),
        std::time::Duration::from_secs(5),
    );
    for _ in 0..5 {
        match client.upload(path, archive).await {
            Ok(_) => return Ok(()),
            Err(CallError::Unavailable(why)) => {
                tracing::warn!(why, "archive upload failed; sending it again");
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(CallError::Refused { body, .. }) => return Err(refusal(&body)),
            Err(other) => return Err(other.to_string()),
        }
    }
    Err("the server stayed unavailable".to_owned())
}

/// The server's message out of its error body.
fn refusal(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.to_owned())
}

/// A cache's key: its text with `$NAME` and `${NAME}` expanded from the job's variables, or
/// the prefix and a hash of the named files' contents (a missing file hashes as absent).
pub(crate) fn cache_key(
    key: &CacheKey,
    variables: &BTreeMap<String, String>,
    dir: &Path,
) -> String {
    match key {
        CacheKey::Text(text) => expand(text, variables),
        CacheKey::Files { files, prefix } => {
            let mut hasher = Sha256::new();
            for file in files {
                hasher.update(file.as_bytes());
                hasher.update([0]);
                match std::fs::read(dir.join(file)) {
                    Ok(contents) => {
                        hasher.update([1]);
                        hasher.update(&contents);
                    }
                    Err(_) => hasher.update([0]),
                }
            }
            let hash = hex::encode(&hasher.finalize()[..20]);
            match prefix {
                Some(prefix) => format!("{}-{hash}", expand(prefix, variables)),
                None => hash,
            }
        }
    }
}

/// `$NAME` and `${NAME}` replaced by the variable's value (empty when unset), `$$` by `$`.
fn expand(text: &str, variables: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(braced) = after.strip_prefix('{')
            && let Some(end) = braced.find('}')
        {
            out.push_str(variables.get(&braced[..end]).map_or("", String::as_str));
            rest = &braced[end + 1..];
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if end == 0 {
                out.push('$');
            } else {
                out.push_str(variables.get(&after[..end]).map_or("", String::as_str));
            }
            rest = &after[end..];
        }
    }
    out.push_str(rest);
    out
}

/// A query value, percent-encoded.
fn encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_expand_variables_and_hash_files() {
        let variables = BTreeMap::from([("CI_COMMIT_REF_NAME".to_owned(), "feature/x".to_owned())]);
        let dir = tempfile::tempdir().unwrap();
        let text = |t: &str| cache_key(&CacheKey::Text(t.to_owned()), &variables, dir.path());
        assert_eq!(text("deps-$CI_COMMIT_REF_NAME"), "deps-feature/x");
        assert_eq!(text("${CI_COMMIT_REF_NAME}-a"), "feature/x-a");
        assert_eq!(text("$$x-$UNSET-$"), "$x--$");
        let files = CacheKey::Files {
            files: vec!["Cargo.lock".to_owned()],
            prefix: Some("rust".to_owned()),
        };
        let before = cache_key(&files, &variables, dir.path());
        std::fs::write(dir.path().join("Cargo.lock"), "a").unwrap();
        let after = cache_key(&files, &variables, dir.path());
        std::fs::write(dir.path().join("Cargo.lock"), "b").unwrap();
        let changed = cache_key(&files, &variables, dir.path());
        assert!(before.starts_with("rust-") && after.starts_with("rust-"));
        assert_ne!(before, after);
        assert_ne!(after, changed);
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn upload_when_table() {
        for (when, success, failure) in [
            (When::OnSuccess, true, false),
            (When::OnFailure, false, true),
            (When::Always, true, true),
        ] {
            assert_eq!(
                (when.uploads(true), when.uploads(false)),
                (success, failure)
            );
        }
    }
}
