//! The OpenAPI document, generated from the handlers' annotations, served at
//! `/api/v1/openapi.json` and checked in at `docs/openapi.json`.

use crate::handlers::{
    archives, artifacts, batch, builds, environments, health, jobs, pipelines, projects,
    resource_groups, runners,
};
use crate::web;
use crate::web::SESSION_COOKIE;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Lockstep",
        description = "A CI build coordinator: pipelines of builds, deployments that follow them, and the protocol runners use to take and run builds. Conventions: docs/api.md.",
    ),
    paths(
        projects::create, projects::list, projects::update,
        pipelines::create, pipelines::lint, pipelines::list, pipelines::get, pipelines::cancel, pipelines::retry,
        builds::get, builds::cancel, builds::retry, builds::play, builds::log,
        artifacts::list, artifacts::download, artifacts::file, artifacts::delete,
        environments::list, environments::deployments,
        resource_groups::list, resource_groups::get, resource_groups::put,
        runners::create, runners::list, runners::delete,
        jobs::request, jobs::watch, jobs::heartbeat, jobs::finish, jobs::append,
        batch::request, batch::finish,
        archives::upload_artifacts, archives::fetch_artifacts, archives::fetch_cache,
        archives::upload_cache,
        health::healthz, health::readyz, health::metrics,
        web::home::index, web::home::project, web::pipeline::page, web::build::page,
        web::build::raw, web::artifacts::archive, web::artifacts::file, web::artifacts::delete,
        web::environments::page, web::runners::page,
        web::live::pipeline, web::live::build, web::live::project, web::live::environments,
        web::live::runners,
        web::actions::cancel_pipeline, web::actions::retry_pipeline, web::actions::cancel_build,
        web::actions::retry_build, web::actions::play_build,
        web::session::login_form, web::session::login, web::session::logout,
    ),
    modifiers(&Security),
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, description) in [
            ("admin", "The server's LOCKSTEP_API_TOKEN."),
            (
                "runner",
                "A runner token, as returned once by POST /api/v1/runners.",
            ),
        ] {
            let mut scheme = Http::new(HttpAuthScheme::Bearer);
            scheme.description = Some(description.to_owned());
            components.add_security_scheme(name, SecurityScheme::Http(scheme));
        }
        let mut session = ApiKeyValue::new(SESSION_COOKIE);
        session.description = Some(
            "The dashboard's session cookie, set by POST /login; pages take only this, the JSON \
             API never does."
                .to_owned(),
        );
        components.add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(session)));
    }
}

/// The document as pretty JSON with a trailing newline, exactly as `docs/openapi.json` holds it.
pub fn openapi_json() -> String {
    let mut json = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    json.push('\n');
    json
}

pub(crate) async fn serve() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], openapi_json())
}

/// The JSON Schema of pipeline files, for editors, as checked in at
/// `docs/pipeline-file.schema.json` (the pipeline-file crate's tests keep it in step with its
/// reader).
const PIPELINE_FILE_SCHEMA: &str = include_str!("../../../docs/pipeline-file.schema.json");

pub(crate) async fn serve_pipeline_schema() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "application/schema+json")],
        PIPELINE_FILE_SCHEMA,
    )
}

#[cfg(test)]
mod tests {
    use super::openapi_json;

    #[test]
    fn the_checked_in_openapi_document_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == openapi_json(),
            "docs/openapi.json differs from the server's document: run `cargo xtask openapi` and commit the result"
        );
    }

    /// Every name a request takes states the domain's limit, so the document cannot drift
    /// from `limits::MAX_NAME_CHARS`. (The count keeps the check from passing on no names.)
    #[test]
    fn documented_name_lengths_are_the_domains_limit() {
        let document: serde_json::Value =
            serde_json::from_str(&openapi_json()).expect("valid JSON");
        let schemas = document["components"]["schemas"]
            .as_object()
            .expect("schemas");
        let mut names = 0;
        for (schema, body) in schemas {
            let Some(properties) = body["properties"].as_object() else {
                continue;
            };
            for field in ["name", "ref", "stage", "environment"] {
                if schema == "JobSpec" && field == "environment" {
                    continue; // a name or an object: checked below
                }
                let Some(max) = properties.get(field).map(|p| &p["maxLength"]) else {
                    continue;
                };
                if schema.starts_with("Create") || schema == "JobSpec" {
                    names += 1;
                    assert_eq!(
                        max.as_u64(),
                        Some(lockstep_domain::limits::MAX_NAME_CHARS as u64),
                        "{schema}.{field}"
                    );
                }
            }
        }
        // A job's environment is a name or `{name, action}`: both state the limit.
        for max in [
            &schemas["EnvironmentName"]["maxLength"],
            &schemas["EnvironmentSpec"]["oneOf"][1]["properties"]["name"]["maxLength"],
        ] {
            names += 1;
            assert_eq!(
                max.as_u64(),
                Some(lockstep_domain::limits::MAX_NAME_CHARS as u64),
                "EnvironmentSpec"
            );
        }
        assert_eq!(
            names, 7,
            "CreateProject, CreatePipeline, CreateRunner, JobSpec and EnvironmentSpec"
        );
    }

    #[test]
    fn every_route_is_documented() {
        let document: serde_json::Value =
            serde_json::from_str(&openapi_json()).expect("valid JSON");
        let paths = document["paths"].as_object().expect("paths");
        for path in [
            "/api/v1/projects",
            "/api/v1/projects/{id}/pipelines",
            "/api/v1/pipelines/{id}/cancel",
            "/api/v1/builds/{id}/log",
            "/api/v1/jobs/request",
            "/api/v1/jobs/batch/request",
            "/api/v1/jobs/batch/finish",
            "/api/v1/jobs/{id}/log",
            "/metrics",
        ] {
            assert!(
                paths.contains_key(path),
                "{path} is missing from the document"
            );
        }
    }
}
