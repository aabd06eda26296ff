//! Invariant checks over the whole database, for tests and the stress harness.
//!
//! They read everything in one repeatable-read snapshot, so they are meant for a quiet
//! database (after a storm), not for production traffic.

use crate::StorageError;
use crate::rows::parse;
use crate::schema::pipelines;
use crate::transitions::snapshot::{StoredBuild, load_builds};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use lockstep_domain::{
    DeploymentStatus, PipelineEvent, PipelineState, PipelineStatus, plan, undecided_builds,
};
use std::collections::BTreeMap;
use std::fmt;

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: &'static str,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.detail)
    }
}

mod groups;

/// Checks the resource-group invariants only (see [`check_invariants`]). Unlike the others they
/// hold in every committed state, not only on a quiet database (a grant commits with the
/// transition that frees its slot), so the storm also checks them while it runs.
pub fn check_group_invariants(conn: &mut PgConnection) -> Result<Vec<Violation>, StorageError> {
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(|conn| {
            let mut violations = Vec::new();
            groups::check(conn, &mut violations)?;
            Ok(violations)
        })
}

/// Every pipeline marked as superseded names a newer pipeline of its project and ref.
fn check_superseded(conn: &mut PgConnection, out: &mut Vec<Violation>) -> Result<(), StorageError> {
    let newer = diesel::alias!(pipelines as newer);
    let marked = pipelines::table
        .left_join(newer.on(pipelines::auto_canceled_by.eq(newer.field(pipelines::id).nullable())))
        .filter(pipelines::auto_canceled_by.is_not_null())
        .select((
            pipelines::id,
            pipelines::project_id,
            pipelines::ref_,
            pipelines::auto_canceled_by,
            newer.field(pipelines::project_id).nullable(),
            newer.field(pipelines::ref_).nullable(),
        ))
        .load::<(i64, i64, String, Option<i64>, Option<i64>, Option<String>)>(conn)?;
    for (id, project, git_ref, by, by_project, by_ref) in marked {
        let fits = by.is_some_and(|by| by > id)
            && by_project == Some(project)
            && by_ref.as_deref() == Some(git_ref.as_str());
        if !fits {
            out.push(Violation {
                rule: "a superseded pipeline names a newer one of its ref",
                detail: format!("pipeline {id} of ref `{git_ref}` names {by:?}"),
            });
        }
    }
    Ok(())
}

/// Checks every pipeline, build and deployment:
/// - each deployment's status is the one its build's status maps to, and a build has a
///   deployment exactly when it has an environment;
/// - a running or canceling build has a runner and a lease;
/// - a terminal pipeline has no active build;
/// - each pipeline's stored status is what its builds imply, and no created build could already
///   have been decided (processing is complete);
/// - no resource group has more holders than slots (but for holders from before its limit was
///   lowered), none could grant a slot it has not, and an `oldest_first` group never granted a
///   build of a newer pipeline while an older pipeline's build was waiting. The last one reads
///   the grant times builds keep, so it assumes the group's mode never changed;
/// - a pipeline marked `auto_canceled_by` names a newer pipeline of the same project and ref.
pub fn check_invariants(conn: &mut PgConnection) -> Result<Vec<Violation>, StorageError> {
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(|conn| {
            let statuses = pipelines::table
                .select((pipelines::id, pipelines::status))
                .load::<(i64, String)>(conn)?;
            let ids: Vec<i64> = statuses.iter().map(|(id, _)| *id).collect();
            let mut by_pipeline: BTreeMap<i64, Vec<StoredBuild>> = BTreeMap::new();
            for build in load_builds(conn, &ids)? {
                by_pipeline
                    .entry(build.pipeline_id)
                    .or_default()
                    .push(build);
            }
            let mut violations = Vec::new();
            for (id, status) in statuses {
                let status: PipelineStatus = parse("pipelines.status", &status)?;
                let builds = by_pipeline.remove(&id).unwrap_or_default();
                check_pipeline(id, status, builds, &mut violations);
            }
            groups::check(conn, &mut violations)?;
            check_superseded(conn, &mut violations)?;
            Ok(violations)
        })
}

fn check_pipeline(
    id: i64,
    status: PipelineStatus,
    builds: Vec<StoredBuild>,
    out: &mut Vec<Violation>,
) {
    let mut violation = |rule, detail: String| out.push(Violation { rule, detail });
    for build in &builds {
        let b = &build.state;
        let expected = DeploymentStatus::for_build(b.status);
        match (build.environment.is_some(), build.deployment_status) {
            (true, Some(actual)) if actual != expected => violation(
                "deployment follows build",
                format!(
                    "build {} is {} but its deployment is {actual}",
                    b.id, b.status
                ),
            ),
            (true, None) => violation(
                "deployment exists",
                format!("build {} has an environment but no deployment", b.id),
            ),
            (false, Some(_)) => violation(
                "deployment exists",
                format!("build {} has a deployment but no environment", b.id),
            ),
            _ => {}
        }
        if b.status.holds_lease() && (b.runner_id.is_none() || b.lease_expires_at.is_none()) {
            violation(
                "running build has runner and lease",
                format!("build {} is {} without them", b.id, b.status),
            );
        }
        if status.is_terminal() && b.status.is_active() {
            violation(
                "terminal pipeline is settled",
                format!(
                    "pipeline {id} is {status} but build {} is {}",
                    b.id, b.status
                ),
            );
        }
    }
    let state = PipelineState {
        status,
        builds: builds.into_iter().map(|b| b.state).collect(),
    };
    match plan(&state, &PipelineEvent::Refresh) {
        Ok(p) if p.pipeline_status() != status || !p.changes().is_empty() => violation(
            "pipeline status follows builds",
            format!(
                "pipeline {id} is stored as {status}, its builds say {}",
                p.pipeline_status()
            ),
        ),
        Ok(_) => {}
        Err(e) => violation("pipeline can be planned", format!("pipeline {id}: {e}")),
    }
    if let Ok(undecided) = undecided_builds(&state)
        && !undecided.is_empty()
    {
        violation(
            "processing is complete",
            format!("pipeline {id}: builds {undecided:?} could run or skip but did not"),
        );
    }
}
