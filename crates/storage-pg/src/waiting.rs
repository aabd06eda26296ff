//! Why a build has not started: the read behind a build's `waiting` (GitLab's "why is my job
//! pending?"), and the queue figures `/metrics` shows.
//!
//! Each reason comes from the one place that decides it: the domain's `unsettled_needs` for
//! needs, the resource group's line for a group, and for a pending build the runners that are
//! online (not retired, in contact since a given moment) and the pending builds a runner that
//! could take it would take first (claims go in id order). Plain reads, no locks: a reason is
//! true of the moment it was read.

use crate::prepared::{Prepared, Statement};
use crate::reads::{BuildView, load_pipeline};
use crate::{StorageError, load_resource_group};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};
use lockstep_domain::{BuildId, BuildStatus, ProjectId, Standing, unsettled_needs};
use std::collections::HashMap;

/// Why a build that has not started waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waiting {
    /// Jobs it needs have not settled yet (their names).
    Needs(Vec<String>),
    /// A manual job: it waits for a person to play it.
    Manual,
    /// It waits for a slot of this resource group, at this place in its line (from 1).
    ResourceGroup { name: String, position: u64 },
    /// No online runner has all of its tags.
    NoRunner { tags: Vec<String> },
    /// A runner that can take it will take this many pending builds first.
    Queued { ahead: u64 },
}

/// Why each build of `builds` (every attempt of one pipeline, of project `project`) that has not
/// started waits; builds that run or ended have no entry. Runners count as online if they made
/// contact since `online_since`.
pub fn pipeline_waiting(
    conn: &mut PgConnection,
    project: ProjectId,
    builds: &[BuildView],
    online_since: DateTime<Utc>,
) -> Result<HashMap<BuildId, Waiting>, StorageError> {
    let latest = latest_attempts(builds);
    let stages = stage_indexes(&latest);
    let standings: Vec<Standing<'_>> = latest
        .iter()
        .map(|b| Standing {
            name: &b.name,
            stage_idx: stages[b.stage.as_str()],
            needs: b.needs.as_deref(),
            status: b.status,
        })
        .collect();
    let mut lines: HashMap<String, Vec<BuildId>> = HashMap::new();
    let pipeline = latest.first().map(|b| b.pipeline_id);
    let mut pending = match pipeline {
        Some(pipeline) if latest.iter().any(|b| b.status == BuildStatus::Pending) => {
            pending_reasons(conn, pipeline, online_since)?
        }
        _ => HashMap::new(),
    };
    let mut reasons = HashMap::new();
    for build in latest {
        let reason = match build.status {
            BuildStatus::Created => Waiting::Needs(
                unsettled_needs(&standings, &build.name)
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            ),
            BuildStatus::Manual => Waiting::Manual,
            BuildStatus::WaitingForResource => {
                let Some(group) = &build.resource_group else {
                    continue;
                };
                if !lines.contains_key(group) {
                    let line = load_resource_group(conn, project, group)?.waiting;
                    lines.insert(group.clone(), line);
                }
                // Not in the line: it was granted between the two reads.
                let Some(place) = lines[group].iter().position(|id| *id == build.id) else {
                    continue;
                };
                Waiting::ResourceGroup {
                    name: group.clone(),
                    position: place as u64 + 1,
                }
            }
            BuildStatus::Pending => match pending.remove(&build.id) {
                Some((runners, ahead)) => pending_waiting(runners, ahead, &build.tags),
                // It stopped being pending between the two reads.
                None => continue,
            },
            _ => continue,
        };
        reasons.insert(build.id, reason);
    }
    Ok(reasons)
}

/// Why `build` waits, if it has not started; `None` once it runs or ended.
pub fn build_waiting(
    conn: &mut PgConnection,
    build: &BuildView,
    online_since: DateTime<Utc>,
) -> Result<Option<Waiting>, StorageError> {
    match build.status {
        BuildStatus::Pending => pending_reason(conn, build.id, &build.tags, online_since).map(Some),
        BuildStatus::Manual => Ok(Some(Waiting::Manual)),
        BuildStatus::Created | BuildStatus::WaitingForResource => {
            let pipeline = load_pipeline(conn, build.pipeline_id)?;
            let mut reasons = pipeline_waiting(
                conn,
                pipeline.summary.project_id,
                &pipeline.builds,
                online_since,
            )?;
            Ok(reasons.remove(&build.id))
        }
        _ => Ok(None),
    }
}

/// The latest attempt of each job, in job order (`builds` is in id order, and first attempts
/// were inserted in job order).
fn latest_attempts(builds: &[BuildView]) -> Vec<&BuildView> {
    let mut latest: Vec<&BuildView> = Vec::new();
    for build in builds {
        match latest.iter_mut().find(|b| b.name == build.name) {
            Some(slot) if slot.attempt < build.attempt => *slot = build,
            Some(_) => {}
            None => latest.push(build),
        }
    }
    latest
}

/// Each stage's place, in order of first appearance in job order, as validation numbered them.
fn stage_indexes<'a>(jobs: &[&'a BuildView]) -> HashMap<&'a str, u32> {
    let mut indexes = HashMap::new();
    for job in jobs {
        let next = u32::try_from(indexes.len()).unwrap_or(u32::MAX);
        indexes.entry(job.stage.as_str()).or_insert(next);
    }
    indexes
}

const PENDING_SQL: &str = include_str!("waiting/pending.sql");

struct Pending;

impl Statement for Pending {
    const SQL: &'static str = PENDING_SQL;
}

#[derive(QueryableByName)]
struct PendingRow {
    #[diesel(sql_type = BigInt)]
    runners: i64,
    #[diesel(sql_type = BigInt)]
    ahead: i64,
}

fn pending_reason(
    conn: &mut PgConnection,
    build: BuildId,
    tags: &[String],
    online_since: DateTime<Utc>,
) -> Result<Waiting, StorageError> {
    let row = Prepared::<Pending>::new()
        .bind::<BigInt, _>(build.0)
        .bind::<Array<Text>, _>(tags)
        .bind::<Timestamptz, _>(online_since)
        .get_result::<PendingRow>(conn)?;
    Ok(pending_waiting(row.runners, row.ahead, tags))
}

fn pending_waiting(runners: i64, ahead: i64, tags: &[String]) -> Waiting {
    if runners == 0 {
        Waiting::NoRunner {
            tags: tags.to_vec(),
        }
    } else {
        Waiting::Queued {
            ahead: u64::try_from(ahead).unwrap_or(0),
        }
    }
}

const PIPELINE_PENDING_SQL: &str = include_str!("waiting/pipeline_pending.sql");

struct PipelinePending;

impl Statement for PipelinePending {
    const SQL: &'static str = PIPELINE_PENDING_SQL;
}

#[derive(QueryableByName)]
struct PipelinePendingRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    runners: i64,
    #[diesel(sql_type = BigInt)]
    ahead: i64,
}

/// (online runners able, builds ahead) for each pending build of `pipeline`.
fn pending_reasons(
    conn: &mut PgConnection,
    pipeline: lockstep_domain::PipelineId,
    online_since: DateTime<Utc>,
) -> Result<HashMap<BuildId, (i64, i64)>, StorageError> {
    Ok(Prepared::<PipelinePending>::new()
        .bind::<BigInt, _>(pipeline.0)
        .bind::<Timestamptz, _>(online_since)
        .load::<PipelinePendingRow>(conn)?
        .into_iter()
        .map(|row| (BuildId(row.id), (row.runners, row.ahead)))
        .collect())
}

/// Pending builds, by whether an online runner could take them, and the oldest one's wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFigures {
    /// Pending builds some online runner has all the tags of.
    pub queued: u64,
    /// Pending builds no online runner can take.
    pub no_runner: u64,
    /// When the longest-waiting pending build became pending.
    pub oldest_queued_at: Option<DateTime<Utc>>,
}

const QUEUE_SQL: &str = include_str!("waiting/queue.sql");

struct Queue;

impl Statement for Queue {
    const SQL: &'static str = QUEUE_SQL;
}

#[derive(QueryableByName)]
struct QueueRow {
    #[diesel(sql_type = BigInt)]
    queued: i64,
    #[diesel(sql_type = BigInt)]
    no_runner: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    oldest_queued_at: Option<DateTime<Utc>>,
}

/// The pending builds by reason (`queue.sql`), for `/metrics`.
pub fn queue_figures(
    conn: &mut PgConnection,
    online_since: DateTime<Utc>,
) -> Result<QueueFigures, StorageError> {
    let row = Prepared::<Queue>::new()
        .bind::<Timestamptz, _>(online_since)
        .get_result::<QueueRow>(conn)?;
    Ok(QueueFigures {
        queued: u64::try_from(row.queued).unwrap_or(0),
        no_runner: u64::try_from(row.no_runner).unwrap_or(0),
        oldest_queued_at: row.oldest_queued_at,
    })
}

#[cfg(test)]
mod tests {
    /// The statements spell the status as a literal, for the partial index: it must be the
    /// domain's name.
    #[test]
    fn the_queue_reads_name_the_domains_pending_status() {
        let pending = format!("status = '{}'", lockstep_domain::BuildStatus::Pending);
        for sql in [
            super::PENDING_SQL,
            super::PIPELINE_PENDING_SQL,
            super::QUEUE_SQL,
        ] {
            assert!(sql.contains(&pending), "{sql}");
        }
    }
}
