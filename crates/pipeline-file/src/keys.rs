//! The keys a pipeline file may use, the GitLab keys it refuses for now, and the check that
//! names a mapping's unknown keys.

use crate::error::{Problems, did_you_mean, shown};
use crate::tree::{Entry, join};

/// Keys of the top level that are settings; every other top-level key is a job (or, starting
/// with `.`, a hidden job).
pub const TOP_KEYS: &[&str] = &[
    "stages",
    "variables",
    "default",
    "workflow",
    "before_script",
    "after_script",
];

/// GitLab's top-level keys that Lockstep does not support yet.
pub const REFUSED_TOP_KEYS: &[&str] = &["include", "image", "services", "cache", "pages"];

/// Keys of `default`: values a job takes when it does not set them.
pub const DEFAULT_KEYS: &[&str] = &[
    "tags",
    "timeout",
    "retry",
    "interruptible",
    "before_script",
    "after_script",
    "variables",
    "artifacts",
    "cache",
];

/// GitLab's `default` keys that Lockstep does not support yet.
pub const REFUSED_DEFAULT_KEYS: &[&str] = &["hooks", "id_tokens", "image", "services"];

/// Keys of a job.
pub const JOB_KEYS: &[&str] = &[
    "stage",
    "script",
    "before_script",
    "after_script",
    "needs",
    "when",
    "allow_failure",
    "environment",
    "resource_group",
    "interruptible",
    "retry",
    "timeout",
    "tags",
    "variables",
    "extends",
    "parallel",
    "artifacts",
    "cache",
    "dependencies",
];

/// GitLab's job keys that Lockstep does not support yet: refused, never silently ignored, since
/// a job that ignored its `rules` would run when it should not.
pub const REFUSED_JOB_KEYS: &[&str] = &[
    "rules",
    "only",
    "except",
    "include",
    "trigger",
    "image",
    "services",
    "coverage",
    "inherit",
    "pages",
    "release",
    "secrets",
    "start_in",
    "hooks",
    "id_tokens",
    "identity",
    "manual_confirmation",
    "run",
];

/// Keys of `workflow`.
pub const WORKFLOW_KEYS: &[&str] = &["auto_cancel"];

/// GitLab's `workflow` keys that Lockstep does not support yet.
pub const REFUSED_WORKFLOW_KEYS: &[&str] = &["rules", "name"];

/// Keys of `workflow: auto_cancel`.
pub(crate) const AUTO_CANCEL_KEYS: &[&str] = &["on_new_commit"];
pub(crate) const REFUSED_AUTO_CANCEL_KEYS: &[&str] = &["on_job_failure"];

/// Keys of `environment` in its long form.
pub(crate) const ENVIRONMENT_KEYS: &[&str] = &["name", "action"];
pub(crate) const REFUSED_ENVIRONMENT_KEYS: &[&str] = &[
    "url",
    "on_stop",
    "auto_stop_in",
    "deployment_tier",
    "kubernetes",
];

/// Keys of `retry` and `allow_failure` in their long forms.
pub(crate) const RETRY_KEYS: &[&str] = &["max", "when", "exit_codes"];
pub(crate) const ALLOW_FAILURE_KEYS: &[&str] = &["exit_codes"];

/// Keys of one `needs` entry in its long form.
pub(crate) const NEED_KEYS: &[&str] = &["job", "optional", "artifacts"];
pub(crate) const REFUSED_NEED_KEYS: &[&str] = &["pipeline", "project", "ref", "parallel"];

/// Keys of `artifacts`, of one `cache` and of a cache's `key` in its long form.
pub(crate) const ARTIFACTS_KEYS: &[&str] = &["paths", "exclude", "name", "when", "expire_in"];
pub(crate) const REFUSED_ARTIFACTS_KEYS: &[&str] =
    &["reports", "untracked", "expose_as", "public", "access"];
pub(crate) const CACHE_KEYS: &[&str] = &["key", "paths", "policy", "when"];
pub(crate) const REFUSED_CACHE_KEYS: &[&str] = &["untracked", "unprotect", "fallback_keys"];
pub(crate) const CACHE_KEY_KEYS: &[&str] = &["files", "prefix"];

/// Keys of a variable in its long form.
pub(crate) const VARIABLE_KEYS: &[&str] = &["value", "description"];
pub(crate) const REFUSED_VARIABLE_KEYS: &[&str] = &["expand", "options"];

/// The keys one kind of mapping takes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keys {
    pub(crate) allowed: &'static [&'static str],
    pub(crate) refused: &'static [&'static str],
}

pub(crate) const JOB: Keys = Keys {
    allowed: JOB_KEYS,
    refused: REFUSED_JOB_KEYS,
};
pub(crate) const DEFAULT: Keys = Keys {
    allowed: DEFAULT_KEYS,
    refused: REFUSED_DEFAULT_KEYS,
};
pub(crate) const WORKFLOW: Keys = Keys {
    allowed: WORKFLOW_KEYS,
    refused: REFUSED_WORKFLOW_KEYS,
};
pub(crate) const AUTO_CANCEL: Keys = Keys {
    allowed: AUTO_CANCEL_KEYS,
    refused: REFUSED_AUTO_CANCEL_KEYS,
};
pub(crate) const ENVIRONMENT: Keys = Keys {
    allowed: ENVIRONMENT_KEYS,
    refused: REFUSED_ENVIRONMENT_KEYS,
};
pub(crate) const RETRY: Keys = Keys {
    allowed: RETRY_KEYS,
    refused: &[],
};
pub(crate) const ALLOW_FAILURE: Keys = Keys {
    allowed: ALLOW_FAILURE_KEYS,
    refused: &[],
};
pub(crate) const NEED: Keys = Keys {
    allowed: NEED_KEYS,
    refused: REFUSED_NEED_KEYS,
};
pub(crate) const ARTIFACTS: Keys = Keys {
    allowed: ARTIFACTS_KEYS,
    refused: REFUSED_ARTIFACTS_KEYS,
};
pub(crate) const CACHE: Keys = Keys {
    allowed: CACHE_KEYS,
    refused: REFUSED_CACHE_KEYS,
};
pub(crate) const CACHE_KEY: Keys = Keys {
    allowed: CACHE_KEY_KEYS,
    refused: &[],
};
pub(crate) const VARIABLE: Keys = Keys {
    allowed: VARIABLE_KEYS,
    refused: REFUSED_VARIABLE_KEYS,
};

/// Reports every key of `entries` that `keys` does not allow; true when there was none.
pub(crate) fn check(entries: &[Entry], keys: Keys, path: &str, problems: &mut Problems) -> bool {
    let mut clean = true;
    for entry in entries {
        if keys.allowed.contains(&entry.key.as_str()) {
            continue;
        }
        clean = false;
        let field = join(path, &entry.key);
        problems.at(entry.key_pos, &field, refusal(&entry.key, keys));
    }
    clean
}

/// Why a key is refused: not supported yet, or unknown (with the likely intended key).
pub(crate) fn refusal(key: &str, keys: Keys) -> String {
    if keys.refused.contains(&key) {
        not_supported(key)
    } else {
        format!(
            "unknown key `{}`{}",
            shown(key),
            did_you_mean(key, keys.allowed.iter().copied())
        )
    }
}

pub(crate) fn not_supported(what: &str) -> String {
    format!("`{what}` is not supported yet")
}
