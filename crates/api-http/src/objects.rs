//! The object store that holds artifacts' and caches' bytes (the database holds one row per
//! object): a directory by default, any S3-compatible store by URL, behind `object_store`.

use futures_util::StreamExt as _;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload, WriteMultipart};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Parts of a multipart upload; S3 takes parts of 5 MiB and more.
const PART_BYTES: usize = 8 * 1024 * 1024;

/// Where objects live, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectsConfig {
    /// A directory of this machine (`LOCKSTEP_OBJECTS_DIR`), created when missing.
    Dir(PathBuf),
    /// A URL `object_store` understands (`s3://bucket/prefix`), with its options
    /// (`aws_endpoint`, `aws_access_key_id`, …; `LOCKSTEP_OBJECTS_URL` and the `AWS_*` variables).
    Url {
        url: String,
        options: Vec<(String, String)>,
    },
}

/// The opened store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    describe: String,
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    #[error("cannot create the objects directory {dir}: {source}")]
    Dir { dir: String, source: std::io::Error },
    #[error("LOCKSTEP_OBJECTS_URL `{url}` is not a URL: {source}")]
    Url {
        url: String,
        source: url::ParseError,
    },
    #[error("LOCKSTEP_OBJECTS_URL `{url}` cannot be opened: {source}")]
    Store {
        url: String,
        source: object_store::Error,
    },
}

impl Objects {
    /// Opens the configured store.
    pub fn open(config: &ObjectsConfig) -> Result<Self, ObjectsError> {
        match config {
            ObjectsConfig::Dir(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| ObjectsError::Dir {
                    dir: dir.display().to_string(),
                    source,
                })?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(
                    |source| ObjectsError::Store {
                        url: dir.display().to_string(),
                        source,
                    },
                )?;
                Ok(Self {
                    store: Arc::new(store),
                    prefix: ObjectPath::default(),
                    describe: format!("directory {}", dir.display()),
                })
            }
            ObjectsConfig::Url { url, options } => {
                let parsed = url_of(url)?;
                let (store, prefix) = object_store::parse_url_opts(&parsed, options.clone())
                    .map_err(|source| ObjectsError::Store {
                        url: url.clone(),
                        source,
                    })?;
                Ok(Self {
                    store: Arc::from(store),
                    prefix,
                    describe: url.clone(),
                })
            }
        }
    }

    /// A store in this process's memory: for tests that do not look at the objects.
    pub fn memory() -> Self {
        Self {
            store: Arc::new(object_store::memory::InMemory::new()),
            prefix: ObjectPath::default(),
            describe: "memory".to_owned(),
        }
    }

    /// What the store is, for the log.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    fn path(&self, key: &str) -> ObjectPath {
        key.split('/')
            .fold(self.prefix.clone(), |path, part| path.clone().join(part))
    }

    /// Uploads a file whole: in one request when small, in parts when not.
    pub(crate) async fn put_file(&self, key: &str, file: &Path) -> Result<(), object_store::Error> {
        let path = self.path(key);
        let mut source = tokio::fs::File::open(file).await.map_err(io_error)?;
        let size = source.metadata().await.map_err(io_error)?.len();
        if size <= PART_BYTES as u64 {
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            source.read_to_end(&mut bytes).await.map_err(io_error)?;
            self.store.put(&path, PutPayload::from(bytes)).await?;
            return Ok(());
        }
        let upload = self.store.put_multipart(&path).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut buffer = vec![0; 1024 * 1024];
        loop {
            let read = match source.read(&mut buffer).await {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) => {
                    let _ = writer.abort().await;
                    return Err(io_error(error));
                }
            };
            writer.wait_for_capacity(2).await?;
            writer.write(&buffer[..read]);
        }
        writer.finish().await?;
        Ok(())
    }

    /// Downloads an object into a file.
    pub(crate) async fn get_to_file(
        &self,
        key: &str,
        file: &Path,
    ) -> Result<u64, object_store::Error> {
        let mut stream = self.store.get(&self.path(key)).await?.into_stream();
        let mut target = tokio::fs::File::create(file).await.map_err(io_error)?;
        let mut written = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            target.write_all(&chunk).await.map_err(io_error)?;
            written += chunk.len() as u64;
        }
        target.flush().await.map_err(io_error)?;
        Ok(written)
    }

    /// An object's bytes as a stream, for a response body.
    pub(crate) async fn stream(
        &self,
        key: &str,
    ) -> Result<
        futures_util::stream::BoxStream<'static, Result<bytes::Bytes, object_store::Error>>,
        object_store::Error,
    > {
        Ok(self.store.get(&self.path(key)).await?.into_stream())
    }

    /// Deletes an object; one already gone is not an error (deletes are repeated safely).
    pub(crate) async fn delete(&self, key: &str) -> Result<(), object_store::Error> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

fn url_of(url: &str) -> Result<url::Url, ObjectsError> {
    url::Url::parse(url).map_err(|source| ObjectsError::Url {
        url: url.to_owned(),
        source,
    })
}

fn io_error(error: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "lockstep",
        source: Box::new(error),
    }
}

/// A fresh object key: random, so that no two uploads ever share an object (a retried upload
/// of the same bytes included), and deleting a replaced object never deletes a live one.
pub(crate) fn fresh_key(kind: &str, owner: i64) -> String {
    let mut random = [0u8; 16];
    // The OS's generator failing is not something a request can recover from differently; a
    // time-based fallback would still be unique per process and owner.
    if getrandom::fill(&mut random).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        random = nanos.to_le_bytes();
    }
    format!("{kind}/{owner}/{}.zip", hex::encode(random))
}
