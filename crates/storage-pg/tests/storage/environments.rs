//! Environments with their last deployment, and deployment history newest first.

use crate::support::{Fixture, latest, now, release_pipeline};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use lockstep_domain::{DeploymentStatus, ProjectId};
use lockstep_storage_pg::{StorageError, create_project, list_deployments, list_environments};

#[test]
fn environments_list_by_name_with_their_newest_deployment() {
    let mut f = Fixture::new();
    let first = f.create(release_pipeline());
    let second = f.create(release_pipeline());
    let view = f.pipeline(second.id);
    let newest_staging = latest(&view, "staging").clone();

    let environments = list_environments(&mut f.conn, f.project).unwrap();
    let names: Vec<&str> = environments.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["production", "staging"]);
    let staging = &environments[1];
    assert_eq!(staging.project_id, f.project);
    let last = staging
        .last_deployment
        .clone()
        .expect("staging was deployed");
    assert_eq!(Some(last.id), newest_staging.deployment.map(|d| d.id));
    assert_eq!(last.build_id, newest_staging.id);
    assert_eq!(last.pipeline_id, second.id);
    assert_ne!(last.pipeline_id, first.id);
    assert_eq!(last.environment_id, staging.id);
    assert_eq!(last.environment, "staging");
    assert_eq!(last.status, DeploymentStatus::Created);
    assert_eq!(last.finished_at, None);
}

#[test]
fn deployments_list_newest_first_up_to_the_limit_with_their_status() {
    let mut f = Fixture::new();
    let first = f.create(release_pipeline());
    let second = f.create(release_pipeline());
    let third = f.create(release_pipeline());
    let staging = list_environments(&mut f.conn, f.project).unwrap()[1].clone();

    let all = list_deployments(&mut f.conn, staging.id, 10).unwrap();
    let pipelines: Vec<_> = all.iter().map(|d| d.pipeline_id).collect();
    assert_eq!(pipelines, [third.id, second.id, first.id]);
    assert!(all.iter().all(|d| d.environment == "staging"));
    assert_eq!(Some(&all[0]), staging.last_deployment.as_ref());

    let page = list_deployments(&mut f.conn, staging.id, 2).unwrap();
    assert_eq!(page, all[..2]);
    assert_eq!(
        list_deployments(&mut f.conn, staging.id, 0).unwrap(),
        vec![]
    );

    // A finished deployment shows its status and end.
    f.tx().cancel_pipeline(first.id, now()).unwrap();
    let refreshed = list_deployments(&mut f.conn, staging.id, 10).unwrap();
    assert_eq!(refreshed[2].status, DeploymentStatus::Canceled);
    assert!(refreshed[2].finished_at.is_some());
}

#[test]
fn a_project_or_environment_without_history_lists_nothing() {
    let mut f = Fixture::new();
    let empty = create_project(&mut f.conn, "empty").unwrap();
    assert_eq!(list_environments(&mut f.conn, empty.id).unwrap(), vec![]);

    let id: i64 = diesel::sql_query(
        "INSERT INTO environments (project_id, name) VALUES ($1, $2) RETURNING id",
    )
    .bind::<BigInt, _>(empty.id.0)
    .bind::<Text, _>("review")
    .get_result::<Inserted>(&mut f.conn)
    .unwrap()
    .id;
    let environments = list_environments(&mut f.conn, empty.id).unwrap();
    assert_eq!(environments.len(), 1);
    assert_eq!(environments[0].id, id);
    assert_eq!(environments[0].last_deployment, None);
    assert_eq!(list_deployments(&mut f.conn, id, 10).unwrap(), vec![]);
}

#[derive(QueryableByName)]
struct Inserted {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[test]
fn unknown_projects_and_environments_are_not_found() {
    let mut f = Fixture::new();
    let err = list_environments(&mut f.conn, ProjectId(404)).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::NotFound {
                entity: "project",
                id: 404
            }
        ),
        "{err}"
    );
    let err = list_deployments(&mut f.conn, 404, 10).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::NotFound {
                entity: "environment",
                id: 404
            }
        ),
        "{err}"
    );
}
