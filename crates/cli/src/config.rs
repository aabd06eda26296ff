//! Where the server URL and the token come from: the flag, else the environment, else the
//! config file `lockstep login` writes, else the default; and that file, read and written.
//!
//! The file is TOML (`config.toml`): two keys a person may want to edit by hand, with
//! comments, as in cargo's and rustup's config. It holds a token, so it is written with mode
//! 0600 in a directory of mode 0700, through a temporary file renamed into place (a crash never
//! leaves half a token).

use crate::exit::usage;
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub(crate) const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// The config file's contents.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) token: Option<String>,
}

/// The URL and token as the flags and the environment give them (`None` when absent).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Given {
    pub(crate) url: Option<String>,
    pub(crate) token: Option<String>,
}

impl Given {
    /// `LOCKSTEP_URL` and `LOCKSTEP_TOKEN`.
    pub(crate) fn from_env() -> Self {
        Self {
            url: std::env::var("LOCKSTEP_URL").ok(),
            token: std::env::var("LOCKSTEP_TOKEN").ok(),
        }
    }
}

/// What a command uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) url: String,
    pub(crate) token: Option<String>,
}

/// Flag, else environment, else file, else default. An empty value counts as absent, so
/// `LOCKSTEP_TOKEN=` does not hide the file's token.
pub(crate) fn resolve(flags: &Given, env: &Given, file: &ConfigFile) -> Settings {
    let url = first([&flags.url, &env.url, &file.url]).unwrap_or(DEFAULT_URL);
    let token = first([&flags.token, &env.token, &file.token]);
    Settings {
        url: url.to_owned(),
        token: token.map(str::to_owned),
    }
}

fn first(values: [&Option<String>; 3]) -> Option<&str> {
    values
        .into_iter()
        .flatten()
        .map(|v| v.trim())
        .find(|v| !v.is_empty())
}

/// `$XDG_CONFIG_HOME/lockstep/config.toml`, else `~/.config/lockstep/config.toml`.
pub(crate) fn path() -> anyhow::Result<PathBuf> {
    use etcetera::BaseStrategy as _;
    let base = etcetera::choose_base_strategy().map_err(|_| {
        usage("cannot find your home directory for the config file: set HOME or XDG_CONFIG_HOME")
    })?;
    Ok(base.config_dir().join("lockstep").join("config.toml"))
}

/// The file at `path`; an empty one when there is none.
pub(crate) fn load(path: &Path) -> anyhow::Result<ConfigFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    toml::from_str(&text).map_err(|e| {
        usage(format!(
            "the config file {} does not read ({}): fix it, or run `lockstep login` again",
            path.display(),
            e.message()
        ))
    })
}

/// Writes `file` to `path`, readable by its owner only.
pub(crate) fn save(path: &Path, file: &ConfigFile) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .context("the config file's path has no directory")?;
    create_private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let text = format!(
        "# Written by `lockstep login`. The flags --url and --token and the variables\n\
         # LOCKSTEP_URL and LOCKSTEP_TOKEN take precedence over it.\n{}",
        toml::to_string(file).context("cannot write the config as TOML")?
    );
    let temporary = path.with_extension(format!("toml.{}.tmp", std::process::id()));
    write_private(&temporary, text.as_bytes())
        .and_then(|()| std::fs::rename(&temporary, path))
        .with_context(|| format!("cannot write {}", path.display()))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&temporary);
        })
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(url: Option<&str>, token: Option<&str>) -> Given {
        Given {
            url: url.map(str::to_owned),
            token: token.map(str::to_owned),
        }
    }

    fn file(url: Option<&str>, token: Option<&str>) -> ConfigFile {
        ConfigFile {
            url: url.map(str::to_owned),
            token: token.map(str::to_owned),
        }
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let flags = given(Some("http://flag"), Some("flag-token"));
        let env = given(Some("http://env"), Some("env-token"));
        let config = file(Some("http://file"), Some("file-token"));
        let none = Given::default();
        let check =
            |flags: &Given, env: &Given, config: &ConfigFile, url: &str, token: Option<&str>| {
                let settings = resolve(flags, env, config);
                assert_eq!(settings.url, url);
                assert_eq!(settings.token.as_deref(), token);
            };
        check(&flags, &env, &config, "http://flag", Some("flag-token"));
        check(&none, &env, &config, "http://env", Some("env-token"));
        check(&none, &none, &config, "http://file", Some("file-token"));
        check(&none, &none, &ConfigFile::default(), DEFAULT_URL, None);
    }

    #[test]
    fn each_setting_falls_back_on_its_own() {
        let settings = resolve(
            &given(Some("http://flag"), None),
            &given(None, Some("env-token")),
            &file(Some("http://file"), Some("file-token")),
        );
        assert_eq!(settings.url, "http://flag");
        assert_eq!(settings.token.as_deref(), Some("env-token"));
    }

    #[test]
    fn empty_values_count_as_absent() {
        let settings = resolve(
            &Given::default(),
            &given(Some(""), Some("  ")),
            &file(None, Some("file-token")),
        );
        assert_eq!(settings.url, DEFAULT_URL);
        assert_eq!(settings.token.as_deref(), Some("file-token"));
    }

    #[test]
    fn the_file_round_trips_and_is_private() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("lockstep").join("config.toml");
        assert_eq!(load(&path).expect("no file yet"), ConfigFile::default());
        let written = file(Some("http://127.0.0.1:9"), Some("secret"));
        save(&path, &written).expect("saved");
        save(&path, &written).expect("saved again over the old one");
        assert_eq!(load(&path).expect("read back"), written);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_broken_file_says_how_to_fix_it() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "tokn = 'x'\n").expect("written");
        let error = load(&path).expect_err("an unknown key");
        assert!(error.to_string().contains("lockstep login"), "{error}");
    }
}
