//! How pages say things: statuses with an icon and a word (never colour alone), durations,
//! times, and query strings.

use chrono::{DateTime, Utc};

/// A status as a page shows it: a CSS class for its colour, an icon and a word, so that it
/// reads without colour too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Badge {
    /// The status name, also the CSS class (`status-success`).
    pub(crate) name: &'static str,
    pub(crate) icon: &'static str,
    pub(crate) label: &'static str,
}

/// The badge of a build, pipeline or deployment status, by its name.
pub(crate) fn badge(name: &'static str) -> Badge {
    let (icon, label) = match name {
        "success" => ("✓", "passed"),
        "failed" => ("✗", "failed"),
        "running" => ("▶", "running"),
        "pending" => ("◷", "pending"),
        "created" => ("○", "created"),
        "canceling" => ("◌", "canceling"),
        "canceled" => ("⊘", "canceled"),
        "skipped" => ("»", "skipped"),
        "manual" => ("⚙", "manual"),
        "waiting_for_resource" => ("⧖", "waiting for resource"),
        "blocked" => ("■", "blocked"),
        _ => ("?", "unknown"),
    };
    Badge { name, icon, label }
}

/// A length of time to the second, as people say it: `45s`, `3m 12s`, `2h 05m`.
pub(crate) fn duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m {:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h {:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

/// How long from `start` to `end`, or to `now` while it has not ended.
pub(crate) fn elapsed(
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<String> {
    let start = start?;
    Some(duration((end.unwrap_or(now) - start).num_seconds()))
}

/// How long ago `at` was, roughly: `just now`, `5 min ago`, `3 h ago`, `2 days ago`.
pub(crate) fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds().max(0);
    match seconds {
        0..10 => "just now".to_owned(),
        10..60 => format!("{seconds} s ago"),
        60..3600 => format!("{} min ago", seconds / 60),
        3600..86_400 => format!("{} h ago", seconds / 3600),
        86_400..172_800 => "1 day ago".to_owned(),
        _ => format!("{} days ago", seconds / 86_400),
    }
}

/// A moment as a machine reads it, for `<time datetime=…>` and its tooltip.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The first 8 characters of a commit, as every CI shows it.
pub(crate) fn short_sha(sha: Option<&str>) -> String {
    sha.map(|sha| sha.chars().take(8).collect())
        .unwrap_or_default()
}

/// `key=value&…`, each part percent-encoded.
pub(crate) fn query(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A size in bytes, as people read it.
pub(crate) fn size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    match bytes {
        0..KIB => format!("{bytes} B"),
        KIB..1_048_576 => format!("{} KiB", bytes / KIB),
        _ => {
            let tenths = bytes / (1_048_576 / 10);
            format!("{}.{} MiB", tenths / 10, tenths % 10)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ago, badge, duration, query, short_sha, size};
    use chrono::{TimeDelta, Utc};

    #[test]
    fn durations_read_as_people_say_them() {
        for (seconds, text) in [
            (0, "0s"),
            (45, "45s"),
            (192, "3m 12s"),
            (7500, "2h 05m"),
            (-3, "0s"),
        ] {
            assert_eq!(duration(seconds), text);
        }
    }

    #[test]
    fn times_read_as_how_long_ago() {
        let now = Utc::now();
        for (seconds, text) in [
            (3, "just now"),
            (42, "42 s ago"),
            (300, "5 min ago"),
            (7200, "2 h ago"),
            (90_000, "1 day ago"),
            (300_000, "3 days ago"),
        ] {
            assert_eq!(ago(now - TimeDelta::seconds(seconds), now), text);
        }
    }

    #[test]
    fn every_status_has_an_icon_and_a_word() {
        use lockstep_domain::{BuildStatus, DeploymentStatus, PipelineStatus};
        let names = BuildStatus::ALL
            .iter()
            .map(|s| s.as_str())
            .chain(PipelineStatus::ALL.iter().map(|s| s.as_str()))
            .chain(DeploymentStatus::ALL.iter().map(|s| s.as_str()));
        for name in names {
            let badge = badge(name);
            assert_ne!(badge.label, "unknown", "{name}");
            assert_ne!(badge.icon, "?", "{name}");
        }
    }

    #[test]
    fn small_helpers() {
        assert_eq!(short_sha(Some("0123456789abcdef")), "01234567");
        assert_eq!(short_sha(None), "");
        assert_eq!(query(&[("next", "/a b?c=1")]), "next=%2Fa+b%3Fc%3D1");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(2048), "2 KiB");
        assert_eq!(size(3 * 1_048_576), "3.0 MiB");
    }
}
