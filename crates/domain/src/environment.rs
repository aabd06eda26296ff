//! A job's `environment`, in GitLab's shapes: a name, or `{name, action}`, where the action
//! says whether the job deploys to the environment, only prepares it, or stops it.

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// What a job does to its environment (GitLab's `environment:action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentAction {
    /// Deploys to it: a deployment follows the build (the default).
    #[default]
    Start,
    /// Only gets it ready (say, provisions a database); no deployment is recorded.
    Prepare,
    /// Tears it down; no deployment is recorded.
    Stop,
}

impl EnvironmentAction {
    pub const ALL: [Self; 3] = [Self::Start, Self::Prepare, Self::Stop];

    /// The name stored in the database and used in definitions.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Prepare => "prepare",
            Self::Stop => "stop",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == value)
    }
}

/// A job's environment as written: `"staging"` or `{"name": "staging", "action": "stop"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Environment {
    pub name: String,
    pub action: EnvironmentAction,
}

impl Environment {
    /// An environment the job deploys to.
    pub fn deploy(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            action: EnvironmentAction::Start,
        }
    }
}

impl From<&str> for Environment {
    fn from(name: &str) -> Self {
        Self::deploy(name)
    }
}

impl<'de> Deserialize<'de> for Environment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EnvironmentVisitor)
    }
}

struct EnvironmentVisitor;

impl<'de> Visitor<'de> for EnvironmentVisitor {
    type Value = Environment;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an environment name or {name, action}")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Environment, E> {
        Ok(Environment::deploy(value))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Environment, A::Error> {
        let mut name = None;
        let mut action = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "name" => name = Some(map.next_value::<String>()?),
                "action" => action = Some(map.next_value::<EnvironmentAction>()?),
                other => return Err(de::Error::unknown_field(other, &["name", "action"])),
            }
        }
        Ok(Environment {
            name: name.ok_or_else(|| de::Error::missing_field("name"))?,
            action: action.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Environment, EnvironmentAction};

    #[test]
    fn both_shapes_parse_and_the_action_defaults_to_start() {
        let table = [
            (r#""staging""#, Some(Environment::deploy("staging"))),
            (
                r#"{"name": "staging"}"#,
                Some(Environment::deploy("staging")),
            ),
            (
                r#"{"name": "review/x", "action": "stop"}"#,
                Some(Environment {
                    name: "review/x".into(),
                    action: EnvironmentAction::Stop,
                }),
            ),
            (r#"{"action": "stop"}"#, None),
            (r#"{"name": "x", "action": "verify"}"#, None),
            (r#"{"name": "x", "url": "https://x"}"#, None),
            ("3", None),
        ];
        for (json, expected) in table {
            let parsed = serde_json::from_str::<Environment>(json).ok();
            assert_eq!(parsed, expected, "{json}");
        }
    }
}
