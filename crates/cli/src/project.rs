//! Which project a command means: `--project`, else the git checkout's directory name, else the
//! current directory's; found by name, and created on first use by `lockstep run`.

use crate::api::Project;
use crate::client::{Client, ClientError};
use crate::exit::usage;
use crate::git::Checkout;
use std::path::Path;

/// The project name to use when `--project` is absent.
pub(crate) fn default_name(checkout: Option<&Checkout>) -> anyhow::Result<String> {
    let dir = match checkout {
        Some(checkout) => checkout.top.clone(),
        None => std::env::current_dir()
            .map_err(|_| usage("cannot read the current directory: pass --project NAME"))?,
    };
    name_of(&dir).ok_or_else(|| {
        usage(format!(
            "cannot name a project after {}: pass --project NAME",
            dir.display()
        ))
    })
}

fn name_of(dir: &Path) -> Option<String> {
    let name = dir.file_name()?.to_str()?.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// The project called `name`.
pub(crate) fn find(client: &Client, name: &str) -> anyhow::Result<Project> {
    lookup(client, name)?.ok_or_else(|| {
        usage(format!(
            "no project named {name:?}: `lockstep run` creates it on first use, or pass --project NAME"
        ))
    })
}

/// The project called `name`, created if there is none.
pub(crate) fn find_or_create(client: &Client, name: &str) -> anyhow::Result<Project> {
    if let Some(project) = lookup(client, name)? {
        return Ok(project);
    }
    match client.create_project(name) {
        Ok(created) => Ok(created.value),
        // Someone created it since we looked.
        Err(ClientError::Conflict { .. }) => find(client, name),
        Err(error) => Err(error.into()),
    }
}

fn lookup(client: &Client, name: &str) -> Result<Option<Project>, ClientError> {
    let projects = client.projects()?.value;
    Ok(projects.into_iter().find(|p| p.name == name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn the_checkout_top_names_the_project() {
        let checkout = Checkout {
            top: PathBuf::from("/home/me/src/shop"),
            branch: None,
            sha: None,
        };
        assert_eq!(default_name(Some(&checkout)).expect("a name"), "shop");
        let root = Checkout {
            top: PathBuf::from("/"),
            ..checkout
        };
        let error = default_name(Some(&root)).expect_err("/ has no name");
        assert!(error.to_string().contains("--project"), "{error}");
    }
}
