//! Where the cluster's files live: the state directory `target/lockstep-db/` always, the cluster
//! itself beside it when the server user can reach it, else a `/tmp` directory keyed by the
//! checkout so that several checkouts never share a cluster.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Unix socket paths are limited to 108 bytes on Linux and 104 on macOS, terminator included;
/// PostgreSQL refuses to start with a longer one, so a deep checkout gets the `/tmp` directory.
const MAX_SOCKET_PATH: usize = 103;

/// The socket file PostgreSQL creates in its socket directory for our port.
pub(crate) const SOCKET_FILE: &str = ".s.PGSQL.5432";

/// `<root>/target/lockstep-db/`: what `db start` wrote, for the other commands and for tests.
#[derive(Debug)]
pub(crate) struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    pub(crate) fn new(root: &Path) -> Self {
        Self {
            dir: root.join("target").join("lockstep-db"),
        }
    }

    /// Where the cluster lives when it can live in the checkout.
    pub(crate) fn in_tree_cluster(&self) -> PathBuf {
        self.dir.join("cluster")
    }

    /// The URL of the dev database, as `db start` last wrote it.
    pub(crate) fn database_url(&self) -> anyhow::Result<Option<String>> {
        Ok(read_optional(&self.database_url_file())?.map(|url| url.trim().to_owned()))
    }

    pub(crate) fn write_database_url(&self, url: &str) -> anyhow::Result<()> {
        self.write(&self.database_url_file(), url)
    }

    /// The cluster directory in use, as `db start` recorded it.
    pub(crate) fn cluster_dir(&self) -> anyhow::Result<Option<PathBuf>> {
        Ok(read_optional(&self.cluster_dir_file())?.map(|dir| PathBuf::from(dir.trim())))
    }

    pub(crate) fn record_cluster_dir(&self, cluster_dir: &Path) -> anyhow::Result<()> {
        let text = cluster_dir
            .to_str()
            .context("the cluster directory path is not UTF-8")?;
        self.write(&self.cluster_dir_file(), text)
    }

    /// Forgets the cluster (for `db reset`): the next `db start` places a new one.
    pub(crate) fn forget(&self) -> anyhow::Result<()> {
        for file in [self.database_url_file(), self.cluster_dir_file()] {
            match fs::remove_file(&file) {
                Err(err) if err.kind() != ErrorKind::NotFound => {
                    return Err(err).with_context(|| format!("removing {}", file.display()));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn database_url_file(&self) -> PathBuf {
        self.dir.join("database-url")
    }

    fn cluster_dir_file(&self) -> PathBuf {
        self.dir.join("cluster-dir")
    }

    fn write(&self, file: &Path, contents: &str) -> anyhow::Result<()> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        fs::write(file, format!("{contents}\n"))
            .with_context(|| format!("writing {}", file.display()))
    }
}

fn read_optional(file: &Path) -> anyhow::Result<Option<String>> {
    match fs::read_to_string(file) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", file.display())),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    InTree,
    /// In `/tmp`: the socket path in the checkout would be too long.
    TmpForSocketPath,
    /// In `/tmp`: the server user cannot enter the checkout.
    TmpForAccess,
}

/// Decides where a new cluster goes. `server_user_reaches_in_tree` is only asked (it creates and
/// chowns the directory) when the answer matters: we run as root and the socket path fits.
pub(crate) fn placement(
    in_tree_socket: &Path,
    as_root: bool,
    server_user_reaches_in_tree: impl FnOnce() -> anyhow::Result<bool>,
) -> anyhow::Result<Placement> {
    if !socket_path_fits(in_tree_socket) {
        return Ok(Placement::TmpForSocketPath);
    }
    if as_root && !server_user_reaches_in_tree()? {
        return Ok(Placement::TmpForAccess);
    }
    Ok(Placement::InTree)
}

fn socket_path_fits(socket_dir: &Path) -> bool {
    socket_dir.join(SOCKET_FILE).as_os_str().len() <= MAX_SOCKET_PATH
}

/// `/tmp/lockstep-db-<hash>`, the hash of the checkout's canonical path so each checkout keeps
/// its own cluster across runs.
pub(crate) fn tmp_cluster_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let canonical = root
        .canonicalize()
        .with_context(|| format!("resolving {}", root.display()))?;
    let hash = fnv1a_64(canonical.as_os_str().as_encoded_bytes());
    // Not `$TMPDIR`: on macOS it is long enough to push the socket path over the limit.
    Ok(Path::new("/tmp").join(format!("lockstep-db-{hash:016x}")))
}

/// 64-bit FNV-1a: tiny, stable across Rust versions and platforms (unlike `DefaultHasher`).
fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{Placement, fnv1a_64, placement};

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        // From the FNV reference test suite; a change here would move every /tmp cluster.
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn ordinary_user_keeps_the_cluster_in_the_checkout_without_probing() {
        let socket = Path::new("/home/dev/lockstep/target/lockstep-db/cluster/socket");
        let placed = placement(socket, false, || panic!("must not probe")).unwrap();
        assert_eq!(placed, Placement::InTree);
    }

    #[test]
    fn root_uses_tmp_only_when_the_server_user_cannot_reach_the_checkout() {
        let socket = Path::new("/root/lockstep/target/lockstep-db/cluster/socket");
        assert_eq!(
            placement(socket, true, || Ok(false)).unwrap(),
            Placement::TmpForAccess
        );
        assert_eq!(
            placement(socket, true, || Ok(true)).unwrap(),
            Placement::InTree
        );
    }

    #[test]
    fn too_long_a_socket_path_uses_tmp() {
        let deep = format!(
            "/home/dev/{}/target/lockstep-db/cluster/socket",
            "d".repeat(80)
        );
        let placed = placement(Path::new(&deep), false, || panic!("must not probe")).unwrap();
        assert_eq!(placed, Placement::TmpForSocketPath);
    }
}
