//! Read models of environments and their deployment history.

use crate::StorageError;
use crate::rows::parse;
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use lockstep_domain::{BuildId, DeploymentId, DeploymentStatus, PipelineId, ProjectId};

/// An environment of a project, with what was deployed to it last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentView {
    /// The row of `environments`. A plain integer: no domain type refers to environments.
    pub id: i64,
    pub project_id: ProjectId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// The newest deployment, whatever its status.
    pub last_deployment: Option<DeploymentSummary>,
}

/// One deployment to an environment, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentSummary {
    pub id: DeploymentId,
    pub build_id: BuildId,
    pub pipeline_id: PipelineId,
    pub environment_id: i64,
    pub environment: String,
    pub status: DeploymentStatus,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A row of either statement: an environment (NULL only for a project without any) with one of
/// its deployments (NULL when it has none).
#[derive(Debug, QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    project_id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    environment_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    environment: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    environment_created_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<BigInt>)]
    deployment_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    build_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pipeline_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    deployment_status: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    deployment_created_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    deployment_finished_at: Option<DateTime<Utc>>,
}

impl Row {
    fn deployment(&self) -> Result<Option<DeploymentSummary>, StorageError> {
        let Some(id) = self.deployment_id else {
            return Ok(None);
        };
        let (
            Some(build_id),
            Some(pipeline_id),
            Some(status),
            Some(created_at),
            Some(environment_id),
            Some(environment),
        ) = (
            self.build_id,
            self.pipeline_id,
            self.deployment_status.as_deref(),
            self.deployment_created_at,
            self.environment_id,
            self.environment.clone(),
        )
        else {
            return Err(StorageError::corrupt(format!(
                "deployment {id} arrived without its build or environment"
            )));
        };
        Ok(Some(DeploymentSummary {
            id: DeploymentId(id),
            build_id: BuildId(build_id),
            pipeline_id: PipelineId(pipeline_id),
            environment_id,
            environment,
            status: parse("deployments.status", status)?,
            created_at,
            finished_at: self.deployment_finished_at,
        }))
    }

    fn environment(&self) -> Result<Option<EnvironmentView>, StorageError> {
        let (Some(id), Some(name), Some(created_at)) = (
            self.environment_id,
            self.environment.clone(),
            self.environment_created_at,
        ) else {
            return Ok(None);
        };
        Ok(Some(EnvironmentView {
            id,
            project_id: ProjectId(self.project_id),
            name,
            created_at,
            last_deployment: self.deployment()?,
        }))
    }
}

const LIST_SQL: &str = include_str!("environments/list.sql");
const DEPLOYMENTS_SQL: &str = include_str!("environments/deployments.sql");

/// A project's environments by name, each with its newest deployment.
pub fn list_environments(
    conn: &mut PgConnection,
    project: ProjectId,
) -> Result<Vec<EnvironmentView>, StorageError> {
    let rows = diesel::sql_query(LIST_SQL)
        .bind::<BigInt, _>(project.0)
        .load::<Row>(conn)?;
    if rows.is_empty() {
        return Err(StorageError::NotFound {
            entity: "project",
            id: project.0,
        });
    }
    rows.iter()
        .filter_map(|r| r.environment().transpose())
        .collect()
}

/// An environment's newest `limit` deployments, newest first.
pub fn list_deployments(
    conn: &mut PgConnection,
    environment_id: i64,
    limit: u32,
) -> Result<Vec<DeploymentSummary>, StorageError> {
    let rows = diesel::sql_query(DEPLOYMENTS_SQL)
        .bind::<BigInt, _>(environment_id)
        .bind::<BigInt, _>(i64::from(limit))
        .load::<Row>(conn)?;
    if rows.is_empty() {
        return Err(StorageError::NotFound {
            entity: "environment",
            id: environment_id,
        });
    }
    rows.iter()
        .filter_map(|r| r.deployment().transpose())
        .collect()
}
