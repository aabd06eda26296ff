//! The few admin calls `dev` and `demo` make to the server (see docs/api.md), over plain HTTP.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use ureq::Agent;
use ureq::http::{Response, StatusCode};

/// A registered runner: its id for messages, its token for the worker.
#[derive(Debug)]
pub(crate) struct Runner {
    pub(crate) id: i64,
    pub(crate) token: String,
}

/// An admin client for one server.
#[derive(Debug)]
pub(crate) struct Api {
    agent: Agent,
    base: String,
    auth: String,
}

impl Api {
    /// A client for the server at `base` (`http://127.0.0.1:8080`) with the admin `token`.
    pub(crate) fn new(base: &str, token: &str) -> Self {
        let config = Agent::config_builder()
            // We read every status ourselves, so a 409 is an answer, not an error.
            .http_status_as_error(false)
            // Only ever localhost: a proxy from the environment must not come in between.
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(10)))
            .build();
        Self {
            agent: config.into(),
            base: base.to_owned(),
            auth: format!("Bearer {token}"),
        }
    }

    /// Whether `/readyz` answers 200 (the server listens and reaches its database).
    pub(crate) fn ready(&self) -> bool {
        self.agent
            .get(format!("{}/readyz", self.base))
            .call()
            .is_ok_and(|response| response.status() == StatusCode::OK)
    }

    /// The id of the project called `name`, creating it unless it exists.
    pub(crate) fn ensure_project(&self, name: &str) -> anyhow::Result<i64> {
        let response = self
            .post("/api/v1/projects")
            .send_json(json!({ "name": name }))
            .context("cannot create the project")?;
        if response.status() == StatusCode::CONFLICT {
            let list = self.get_json("/api/v1/projects")?;
            return project_id_by_name(&list, name)
                .ok_or_else(|| anyhow!("project {name} exists but is not in the project list"));
        }
        let created = json_body(response, StatusCode::CREATED, "creating the project")?;
        id_of(&created)
    }

    /// Registers a runner with these tags.
    pub(crate) fn register_runner(&self, name: &str, tags: &[&str]) -> anyhow::Result<Runner> {
        let response = self
            .post("/api/v1/runners")
            .send_json(json!({ "name": name, "tags": tags }))
            .context("cannot register a runner")?;
        let runner = json_body(response, StatusCode::CREATED, "registering a runner")?;
        let token = runner["token"]
            .as_str()
            .context("the runner registration has no token")?;
        Ok(Runner {
            id: id_of(&runner)?,
            token: token.to_owned(),
        })
    }

    /// Retires a runner, so its token stops working.
    pub(crate) fn retire_runner(&self, id: i64) -> anyhow::Result<()> {
        let response = self
            .agent
            .delete(format!("{}/api/v1/runners/{id}", self.base))
            .header("Authorization", &self.auth)
            .call()
            .context("cannot retire the runner")?;
        expect_status(response, StatusCode::NO_CONTENT, "retiring the runner").map(drop)
    }

    fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .get(path)
            .call()
            .with_context(|| format!("GET {path} failed"))?;
        json_body(response, StatusCode::OK, &format!("GET {path}"))
    }

    fn get(&self, path: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        self.agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", &self.auth)
    }

    fn post(&self, path: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        self.agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", &self.auth)
    }
}

fn expect_status(
    mut response: Response<ureq::Body>,
    expected: StatusCode,
    what: &str,
) -> anyhow::Result<Response<ureq::Body>> {
    if response.status() != expected {
        let body = response.body_mut().read_to_string().unwrap_or_default();
        bail!("{what}: the server answered {}: {body}", response.status());
    }
    Ok(response)
}

fn json_body(
    response: Response<ureq::Body>,
    expected: StatusCode,
    what: &str,
) -> anyhow::Result<Value> {
    expect_status(response, expected, what)?
        .body_mut()
        .read_json()
        .with_context(|| format!("{what}: the answer is not JSON"))
}

fn id_of(object: &Value) -> anyhow::Result<i64> {
    object["id"]
        .as_i64()
        .with_context(|| format!("no numeric id in {object}"))
}

/// The id of the project named `name` in the answer to `GET /api/v1/projects`.
pub(crate) fn project_id_by_name(list: &Value, name: &str) -> Option<i64> {
    list.as_array()?
        .iter()
        .find(|project| project["name"].as_str() == Some(name))
        .and_then(|project| project["id"].as_i64())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::project_id_by_name;

    #[test]
    fn an_existing_project_is_found_by_its_exact_name() {
        let list = json!([
            {"id": 1, "name": "demo-old", "created_at": "2026-01-01T00:00:00Z"},
            {"id": 4, "name": "demo", "created_at": "2026-01-02T00:00:00Z"},
        ]);
        assert_eq!(project_id_by_name(&list, "demo"), Some(4));
        assert_eq!(project_id_by_name(&list, "dem"), None);
        assert_eq!(project_id_by_name(&json!({"error": {}}), "demo"), None);
    }
}
