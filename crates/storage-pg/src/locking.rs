//! The canonical lock order. Every row lock Lockstep takes is taken here.
//!
//! Tables are locked in this order, and rows within a table in ascending id:
//!
//! | rank | table             | locked by                                                  |
//! |------|-------------------|------------------------------------------------------------|
//! | 0    | `pipeline_refs`   | creating a pipeline, first: creations on one ref take turns |
//! | 1    | `pipelines`       | every transition of a pipeline, first (FOR NO KEY UPDATE)   |
//! | 2    | `resource_groups` | transitions that change a build of a group; inserted (ON    |
//! |      |                   | CONFLICT DO NOTHING) in name order by create, then locked   |
//! | 3    | `ci_builds`       | the builds a transition changes, and the waiting builds a   |
//! |      |                   | group grants a slot to; acquire with SKIP LOCKED            |
//! | 4    | `environments`    | only inserted (ON CONFLICT DO NOTHING), in name order       |
//! | 5    | `deployments`     | the deployments of the builds a transition changes          |
//! | 6    | `ci_job_artifacts`| a build's archive row, upserted by its upload (after the    |
//! |      |                   | build's lock, which proves the runner holds it)             |
//! | 7    | `ci_caches`       | a project's cache row, upserted by an upload, the same way  |
//!
//! The rows of ranks 6 and 7 are also deleted, by the sweeper and by people, in transactions
//! that take no other lock: a DELETE's row lock then waits on nothing that waits on it.
//! `projects` and `runners` are never locked: they are only referenced, and foreign-key checks
//! take FOR KEY SHARE, which conflicts with nothing we take because every lock here is
//! FOR NO KEY UPDATE and no key column is ever updated.
//!
//! [`Locks`] is a typestate cursor over that order: each method consumes it and returns it one
//! table further down, and a method is only defined while the cursor is still above its table.
//! So a transition cannot lock a table twice or go back up: it does not compile. Writes to
//! existing rows (in `write.rs`) take the `Locked*` values returned here, so an UPDATE can only
//! touch rows this transaction already holds and never takes a lock of its own.

use crate::StorageError;
use crate::prepared::{Prepared, Statement};
use crate::schema::{ci_builds, deployments, environments, pipelines, resource_groups};
use chrono::{DateTime, Utc};
use diesel::connection::{Connection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use lockstep_domain::{BuildId, DeploymentId, PipelineId, ProcessMode, ProjectId, ResourceGroupId};
use std::collections::BTreeMap;
use std::marker::PhantomData;

mod claim;

#[cfg(feature = "testing")]
pub use claim::explain_claim;
pub(crate) use claim::{ClaimRequest, ClaimedRow};

/// The lockable tables, in the canonical order, for the tests that check the locks a transition
/// really takes against it (the typestate below is what enforces the order in code).
#[cfg(feature = "testing")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    PipelineRefs,
    Pipelines,
    ResourceGroups,
    CiBuilds,
    Environments,
    Deployments,
    CiJobArtifacts,
    CiCaches,
}

#[cfg(feature = "testing")]
impl Table {
    /// The canonical order, first to last.
    pub const ORDER: [Self; 8] = [
        Self::PipelineRefs,
        Self::Pipelines,
        Self::ResourceGroups,
        Self::CiBuilds,
        Self::Environments,
        Self::Deployments,
        Self::CiJobArtifacts,
        Self::CiCaches,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::PipelineRefs => "pipeline_refs",
            Self::Pipelines => "pipelines",
            Self::ResourceGroups => "resource_groups",
            Self::CiBuilds => "ci_builds",
            Self::Environments => "environments",
            Self::Deployments => "deployments",
            Self::CiJobArtifacts => "ci_job_artifacts",
            Self::CiCaches => "ci_caches",
        }
    }

    /// The column that names one row of the table (a build's archive row is named by its
    /// build).
    pub fn key_column(self) -> &'static str {
        match self {
            Self::CiJobArtifacts => "build_id",
            _ => "id",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ORDER.into_iter().find(|t| t.name() == name)
    }
}

/// Cursor positions: nothing locked yet, or the last table locked.
#[derive(Debug)]
pub(crate) enum Start {}
#[derive(Debug)]
pub(crate) enum AtRefs {}
#[derive(Debug)]
pub(crate) enum AtPipelines {}
#[derive(Debug)]
pub(crate) enum AtGroups {}
#[derive(Debug)]
pub(crate) enum AtBuilds {}
#[derive(Debug)]
pub(crate) enum AtEnvironments {}
#[derive(Debug)]
pub(crate) enum AtDeployments {}
#[derive(Debug)]
pub(crate) enum AtArtifacts {}
#[derive(Debug)]
pub(crate) enum AtCaches {}

/// `S: Before<N>`: a cursor at `S` may still lock the table of `N`. Implemented only for
/// strictly earlier positions, which is the whole rule.
pub(crate) trait Before<N> {}
impl Before<AtRefs> for Start {}
impl Before<AtPipelines> for Start {}
impl Before<AtPipelines> for AtRefs {}
impl Before<AtGroups> for AtRefs {}
impl Before<AtBuilds> for AtRefs {}
impl Before<AtEnvironments> for AtRefs {}
impl Before<AtDeployments> for AtRefs {}
impl Before<AtGroups> for Start {}
impl Before<AtGroups> for AtPipelines {}
impl Before<AtBuilds> for Start {}
impl Before<AtBuilds> for AtPipelines {}
impl Before<AtBuilds> for AtGroups {}
impl Before<AtEnvironments> for Start {}
impl Before<AtEnvironments> for AtPipelines {}
impl Before<AtEnvironments> for AtGroups {}
impl Before<AtEnvironments> for AtBuilds {}
impl Before<AtDeployments> for Start {}
impl Before<AtDeployments> for AtPipelines {}
impl Before<AtDeployments> for AtGroups {}
impl Before<AtDeployments> for AtBuilds {}
impl Before<AtDeployments> for AtEnvironments {}
impl Before<AtArtifacts> for Start {}
impl Before<AtArtifacts> for AtRefs {}
impl Before<AtArtifacts> for AtPipelines {}
impl Before<AtArtifacts> for AtGroups {}
impl Before<AtArtifacts> for AtBuilds {}
impl Before<AtArtifacts> for AtEnvironments {}
impl Before<AtArtifacts> for AtDeployments {}
impl Before<AtCaches> for Start {}
impl Before<AtCaches> for AtRefs {}
impl Before<AtCaches> for AtPipelines {}
impl Before<AtCaches> for AtGroups {}
impl Before<AtCaches> for AtBuilds {}
impl Before<AtCaches> for AtEnvironments {}
impl Before<AtCaches> for AtDeployments {}
impl Before<AtCaches> for AtArtifacts {}

/// The lock cursor of one transaction.
pub(crate) struct Locks<'c, S> {
    conn: &'c mut PgConnection,
    at: PhantomData<S>,
}

impl<S> std::fmt::Debug for Locks<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locks")
            .field("at", &std::any::type_name::<S>())
            .finish_non_exhaustive()
    }
}

impl<'c> Locks<'c, Start> {
    /// Starts a cursor. Locks only mean something inside a transaction, so outside one this is
    /// refused rather than silently taking locks that end with the statement.
    pub(crate) fn begin(conn: &'c mut PgConnection) -> Result<Self, StorageError> {
        let depth =
            <PgConnection as Connection>::TransactionManager::transaction_manager_status_mut(conn)
                .transaction_depth()?;
        if depth.is_none() {
            return Err(StorageError::corrupt(
                "lock cursor used outside a transaction",
            ));
        }
        Ok(Self {
            conn,
            at: PhantomData,
        })
    }
}

impl<'c, S> Locks<'c, S> {
    /// The connection, for reads and for writes to rows already held.
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        self.conn
    }

    fn advance<N>(self) -> Locks<'c, N>
    where
        S: Before<N>,
    {
        Locks {
            conn: self.conn,
            at: PhantomData,
        }
    }
}

impl<'c, S: Before<AtRefs>> Locks<'c, S> {
    /// Locks a project's ref, creating its row on first use, so that pipelines created on one
    /// ref take turns: the second waits here until the first commits, and then sees it.
    pub(crate) fn lock_ref(
        self,
        project: ProjectId,
        git_ref: &str,
    ) -> Result<Locks<'c, AtRefs>, StorageError> {
        let mut next = self.advance();
        // One statement: the upsert takes the row lock (FOR NO KEY UPDATE strength, as no key
        // column changes) whether the row is new or not, and counts the ref's pipelines.
        Prepared::<LockRef>::new()
            .bind::<diesel::sql_types::BigInt, _>(project.0)
            .bind::<diesel::sql_types::Text, _>(git_ref)
            .execute(next.conn())
            .map_err(|e| match e {
                diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                    ref info,
                ) if info.constraint_name() == Some("pipeline_refs_project_id_fkey") => {
                    StorageError::NotFound {
                        entity: "project",
                        id: project.0,
                    }
                }
                other => other.into(),
            })?;
        Ok(next)
    }
}

struct LockRef;

impl Statement for LockRef {
    const SQL: &'static str = "INSERT INTO pipeline_refs (project_id, ref) VALUES ($1, $2) \
        ON CONFLICT (project_id, ref) DO UPDATE SET pipelines = pipeline_refs.pipelines + 1";
}

/// A pipeline row this transaction holds.
#[derive(Debug, Clone, Queryable)]
pub(crate) struct LockedPipeline {
    pub(crate) id: i64,
    pub(crate) status: String,
}

/// The fresh state of a build row this transaction holds. Locking returns the latest committed
/// version, which may differ from what a plain read saw a moment earlier.
#[derive(Debug, Clone, Queryable, PartialEq, Eq)]
pub(crate) struct LockedBuild {
    pub(crate) id: i64,
    pub(crate) status: String,
    pub(crate) runner_id: Option<i64>,
    pub(crate) lease_expires_at: Option<DateTime<Utc>>,
    pub(crate) acknowledged_at: Option<DateTime<Utc>>,
}

/// Build rows this transaction holds, by id.
#[derive(Debug, Default)]
pub(crate) struct LockedBuilds(BTreeMap<i64, LockedBuild>);

impl LockedBuilds {
    pub(crate) fn get(&self, id: BuildId) -> Option<&LockedBuild> {
        self.0.get(&id.0)
    }

    pub(crate) fn holds(&self, id: BuildId) -> bool {
        self.0.contains_key(&id.0)
    }
}

/// Deployment rows this transaction holds.
#[derive(Debug, Default)]
pub(crate) struct LockedDeployments(Vec<i64>);

impl LockedDeployments {
    pub(crate) fn holds(&self, id: DeploymentId) -> bool {
        self.0.binary_search(&id.0).is_ok()
    }
}

fn sorted_unique(ids: impl IntoIterator<Item = i64>) -> Vec<i64> {
    let mut ids: Vec<i64> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// What locking a row another transaction holds does: wait for it, or leave the row out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Busy {
    Wait,
    /// SKIP LOCKED: never waits, so it can never be part of a wait cycle either.
    Skip,
}

/// Which pipeline a transition is about: by its id, or the one a build belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PipelineOf {
    Id(PipelineId),
    Build(BuildId),
}

impl<'c, S: Before<AtPipelines>> Locks<'c, S> {
    /// Locks pipeline rows in ascending id. Every transition of a pipeline starts here, so
    /// transitions of the same pipeline run one after another; acquire is the only exception
    /// (see `claim`). A pipeline that does not exist (or, with [`Busy::Skip`], that another
    /// transaction holds) is simply not returned. Pipelines named by one of their builds are
    /// found in the same statement: a build never changes pipeline, so the unlocked subquery is
    /// safe, and it saves a round trip on every build transition.
    pub(crate) fn lock_pipelines(
        self,
        targets: impl IntoIterator<Item = PipelineOf>,
        busy: Busy,
    ) -> Result<(Vec<LockedPipeline>, Locks<'c, AtPipelines>), StorageError> {
        let mut next = self.advance();
        let (mut ids, mut builds) = (Vec::new(), Vec::new());
        for target in targets {
            match target {
                PipelineOf::Id(id) => ids.push(id.0),
                PipelineOf::Build(build) => builds.push(build.0),
            }
        }
        let columns = (pipelines::id, pipelines::status);
        if ids.is_empty() && builds.is_empty() {
            // A creation that supersedes nothing: no statement.
            return Ok((Vec::new(), next));
        }
        if ids.is_empty() {
            let query = pipelines::table
                .filter(
                    pipelines::id.eq_any(
                        ci_builds::table
                            .filter(ci_builds::id.eq_any(sorted_unique(builds)))
                            .select(ci_builds::pipeline_id),
                    ),
                )
                .order(pipelines::id.asc())
                .select(columns)
                .for_no_key_update();
            let rows = match busy {
                Busy::Wait => query.load::<LockedPipeline>(next.conn())?,
                Busy::Skip => query.skip_locked().load::<LockedPipeline>(next.conn())?,
            };
            return Ok((rows, next));
        }
        if !builds.is_empty() {
            // Both kinds at once (no caller does this on a hot path): find the builds'
            // pipelines first, so that one statement locks them all in order.
            ids.extend(
                ci_builds::table
                    .filter(ci_builds::id.eq_any(sorted_unique(builds)))
                    .select(ci_builds::pipeline_id)
                    .load::<i64>(next.conn())?,
            );
        }
        let query = pipelines::table
            .filter(pipelines::id.eq_any(sorted_unique(ids)))
            .order(pipelines::id.asc())
            .select(columns)
            .for_no_key_update();
        let rows = match busy {
            Busy::Wait => query.load::<LockedPipeline>(next.conn())?,
            Busy::Skip => query.skip_locked().load::<LockedPipeline>(next.conn())?,
        };
        Ok((rows, next))
    }
}

/// A resource group row this transaction holds: while it does, no other transaction changes a
/// build of the group except acquire (pending to running), so its holders and its line stand
/// still.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LockedGroup {
    pub(crate) id: ResourceGroupId,
    pub(crate) name: String,
    pub(crate) limit: u32,
    pub(crate) mode: ProcessMode,
}

/// Resource group rows this transaction holds, in ascending id.
#[derive(Debug, Default)]
pub(crate) struct LockedGroups(Vec<LockedGroup>);

impl LockedGroups {
    pub(crate) fn iter(&self) -> impl Iterator<Item = &LockedGroup> {
        self.0.iter()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn by_name(&self, name: &str) -> Option<&LockedGroup> {
        self.0.iter().find(|g| g.name == name)
    }

    pub(crate) fn by_id(&self, id: ResourceGroupId) -> Option<&LockedGroup> {
        self.0.iter().find(|g| g.id == id)
    }

    /// The same groups after group `id` was given `mode` and `limit`.
    pub(crate) fn configured(mut self, id: ResourceGroupId, mode: ProcessMode, limit: u32) -> Self {
        for group in &mut self.0 {
            if group.id == id {
                group.mode = mode;
                group.limit = limit;
            }
        }
        self
    }
}

pub(crate) type GroupRow = (i64, String, i32, String);

/// Group rows as read, whether locked here or read in a snapshot (`resource_groups.rs`).
pub(crate) fn group_rows(rows: Vec<GroupRow>) -> Result<LockedGroups, StorageError> {
    rows.into_iter()
        .map(|(id, name, limit, mode)| {
            Ok(LockedGroup {
                id: ResourceGroupId(id),
                name,
                limit: crate::rows::count("resource_groups.slot_limit", limit)?,
                mode: ProcessMode::parse(&mode).ok_or_else(|| {
                    StorageError::corrupt(format!(
                        "resource_groups.process_mode holds unknown value `{mode}`"
                    ))
                })?,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(LockedGroups)
}

impl<'c, S: Before<AtGroups>> Locks<'c, S> {
    /// Locks resource group rows in ascending id: those named by `ids`, and, when `ensure` says
    /// so, a project's groups by name, created first when absent (for a pipeline being created).
    /// A group that does not exist is left out.
    pub(crate) fn lock_groups(
        self,
        ensure: Option<(ProjectId, Vec<&str>)>,
        ids: impl IntoIterator<Item = ResourceGroupId>,
    ) -> Result<(LockedGroups, Locks<'c, AtGroups>), StorageError> {
        let ids = sorted_unique(ids.into_iter().map(|id| id.0));
        let (project, names) = ensure.unwrap_or((ProjectId(0), Vec::new()));
        let mut next = self.advance();
        if ids.is_empty() && names.is_empty() {
            return Ok((LockedGroups::default(), next));
        }
        let names = insert_groups(next.conn(), project, &names)?;
        let rows = resource_groups::table
            .filter(
                resource_groups::id
                    .eq_any(&ids)
                    .or(resource_groups::project_id
                        .eq(project.0)
                        .and(resource_groups::name.eq_any(&names))),
            )
            .order(resource_groups::id.asc())
            .select(GROUP_COLUMNS)
            .for_no_key_update()
            .load::<GroupRow>(next.conn())?;
        Ok((group_rows(rows)?, next))
    }

    /// Makes sure a project's groups named `names` exist (with the default mode and limit when
    /// new) and locks them. Inserting can wait on another transaction inserting the same name,
    /// so names go in sorted order, before any group is locked; the locks then follow in
    /// ascending id, as everywhere.
    pub(crate) fn ensure_groups(
        self,
        project: ProjectId,
        names: &[&str],
    ) -> Result<(LockedGroups, Locks<'c, AtGroups>), StorageError> {
        let mut next = self.advance();
        let names = insert_groups(next.conn(), project, names)?;
        if names.is_empty() {
            return Ok((LockedGroups::default(), next));
        }
        let rows = resource_groups::table
            .filter(resource_groups::project_id.eq(project.0))
            .filter(resource_groups::name.eq_any(&names))
            .order(resource_groups::id.asc())
            .select(GROUP_COLUMNS)
            .for_no_key_update()
            .load::<GroupRow>(next.conn())?;
        Ok((group_rows(rows)?, next))
    }
}

/// Inserts a project's groups named `names` that do not exist yet, in name order (an insert can
/// wait on another transaction inserting the same name); returns the names, sorted, once each.
fn insert_groups<'n>(
    conn: &mut PgConnection,
    project: ProjectId,
    names: &[&'n str],
) -> Result<Vec<&'n str>, StorageError> {
    let mut names: Vec<&str> = names.to_vec();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        return Ok(names);
    }
    let rows: Vec<_> = names
        .iter()
        .map(|name| {
            (
                resource_groups::project_id.eq(project.0),
                resource_groups::name.eq(*name),
            )
        })
        .collect();
    diesel::insert_into(resource_groups::table)
        .values(&rows)
        .on_conflict_do_nothing()
        .execute(conn)
        .map_err(|e| match e {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                ref info,
            ) if info.constraint_name() == Some("resource_groups_project_id_fkey") => {
                StorageError::NotFound {
                    entity: "project",
                    id: project.0,
                }
            }
            other => other.into(),
        })?;
    Ok(names)
}

const GROUP_COLUMNS: (
    resource_groups::id,
    resource_groups::name,
    resource_groups::slot_limit,
    resource_groups::process_mode,
) = (
    resource_groups::id,
    resource_groups::name,
    resource_groups::slot_limit,
    resource_groups::process_mode,
);

impl<'c, S: Before<AtBuilds>> Locks<'c, S> {
    /// Locks build rows in ascending id (PostgreSQL sorts before it locks) and returns the
    /// latest committed state of those that exist.
    pub(crate) fn lock_builds(
        self,
        ids: impl IntoIterator<Item = BuildId>,
    ) -> Result<(LockedBuilds, Locks<'c, AtBuilds>), StorageError> {
        let ids = sorted_unique(ids.into_iter().map(|id| id.0));
        let mut next = self.advance();
        if ids.is_empty() {
            return Ok((LockedBuilds::default(), next));
        }
        let rows = ci_builds::table
            .filter(ci_builds::id.eq_any(&ids))
            .order(ci_builds::id.asc())
            .select((
                ci_builds::id,
                ci_builds::status,
                ci_builds::runner_id,
                ci_builds::lease_expires_at,
                ci_builds::acknowledged_at,
            ))
            .for_no_key_update()
            .load::<LockedBuild>(next.conn())?;
        Ok((
            LockedBuilds(rows.into_iter().map(|r| (r.id, r)).collect()),
            next,
        ))
    }
}

impl<'c> Locks<'c, Start> {
    /// Claims pending builds for a runner; see `locking/claim.sql`. Builds are taken with
    /// SKIP LOCKED, so acquire never waits on another transaction's build; the same statement
    /// then locks the claimed builds' deployments. It never locks a pipeline.
    pub(crate) fn claim(
        self,
        request: &ClaimRequest<'_>,
    ) -> Result<(Vec<ClaimedRow>, Locks<'c, AtDeployments>), StorageError> {
        let mut next = self.advance();
        let rows = request.run(next.conn())?;
        Ok((rows, next))
    }
}

impl<'c, S: Before<AtEnvironments>> Locks<'c, S> {
    /// Makes sure a project's environments exist and returns their ids by name (nothing when
    /// there is no project to ensure them for). Inserting can wait on another transaction
    /// inserting the same name, so names go in sorted order.
    pub(crate) fn ensure_environments(
        self,
        project: Option<ProjectId>,
        names: &[&str],
    ) -> Result<(BTreeMap<String, i64>, Locks<'c, AtEnvironments>), StorageError> {
        let mut next = self.advance();
        let mut names: Vec<&str> = names.to_vec();
        names.sort_unstable();
        names.dedup();
        let Some(project) = project.filter(|_| !names.is_empty()) else {
            return Ok((BTreeMap::new(), next));
        };
        let rows: Vec<_> = names
            .iter()
            .map(|name| {
                (
                    environments::project_id.eq(project.0),
                    environments::name.eq(*name),
                )
            })
            .collect();
        diesel::insert_into(environments::table)
            .values(&rows)
            .on_conflict_do_nothing()
            .execute(next.conn())?;
        let ids = environments::table
            .filter(environments::project_id.eq(project.0))
            .filter(environments::name.eq_any(&names))
            .select((environments::name, environments::id))
            .load::<(String, i64)>(next.conn())?;
        Ok((ids.into_iter().collect(), next))
    }
}

impl<'c, S: Before<AtDeployments>> Locks<'c, S> {
    /// Locks deployment rows in ascending id.
    pub(crate) fn lock_deployments(
        self,
        ids: impl IntoIterator<Item = DeploymentId>,
    ) -> Result<(LockedDeployments, Locks<'c, AtDeployments>), StorageError> {
        let ids = sorted_unique(ids.into_iter().map(|id| id.0));
        let mut next = self.advance();
        if ids.is_empty() {
            return Ok((LockedDeployments::default(), next));
        }
        let locked = deployments::table
            .filter(deployments::id.eq_any(&ids))
            .order(deployments::id.asc())
            .select(deployments::id)
            .for_no_key_update()
            .load::<i64>(next.conn())?;
        if locked != ids {
            return Err(StorageError::corrupt(
                "a deployment row vanished while being locked",
            ));
        }
        Ok((LockedDeployments(locked), next))
    }
}

/// A build's archive row as the upload writes it (see `artifacts.rs`).
#[derive(Debug)]
pub(crate) struct NewArtifactRow<'a> {
    pub(crate) build_id: i64,
    pub(crate) pipeline_id: i64,
    pub(crate) job_name: &'a str,
    pub(crate) file_name: &'a str,
    pub(crate) object_key: &'a str,
    pub(crate) size: i64,
    pub(crate) sha256: &'a [u8; 32],
    /// JSON text.
    pub(crate) entries: &'a str,
    pub(crate) entry_count: i32,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) expires_at: Option<DateTime<Utc>>,
}

/// A project's cache row as an upload writes it.
#[derive(Debug)]
pub(crate) struct NewCacheRow<'a> {
    pub(crate) project_id: i64,
    pub(crate) key: &'a str,
    pub(crate) object_key: &'a str,
    pub(crate) size: i64,
    pub(crate) sha256: &'a [u8; 32],
    pub(crate) build_id: i64,
    pub(crate) updated_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct ObjectKey {
    #[diesel(sql_type = diesel::sql_types::Text)]
    object_key: String,
}

impl<'c, S: Before<AtArtifacts>> Locks<'c, S> {
    /// Writes a build's archive row, replacing the one before (locked first, so that its object
    /// can be deleted once this commits); returns the replaced row's object.
    pub(crate) fn put_artifact(
        self,
        row: &NewArtifactRow<'_>,
    ) -> Result<(Option<String>, Locks<'c, AtArtifacts>), StorageError> {
        use diesel::sql_types::{BigInt, Bytea, Integer, Nullable, Text, Timestamptz};
        let mut next = self.advance();
        let old = diesel::sql_query(
            "SELECT object_key FROM ci_job_artifacts WHERE build_id = $1 FOR NO KEY UPDATE",
        )
        .bind::<BigInt, _>(row.build_id)
        .get_result::<ObjectKey>(next.conn())
        .optional()?;
        diesel::sql_query(include_str!("locking/put_artifact.sql"))
            .bind::<BigInt, _>(row.build_id)
            .bind::<BigInt, _>(row.pipeline_id)
            .bind::<Text, _>(row.job_name)
            .bind::<Text, _>(row.file_name)
            .bind::<Text, _>(row.object_key)
            .bind::<BigInt, _>(row.size)
            .bind::<Bytea, _>(&row.sha256[..])
            .bind::<Text, _>(row.entries)
            .bind::<Integer, _>(row.entry_count)
            .bind::<Timestamptz, _>(row.created_at)
            .bind::<Nullable<Timestamptz>, _>(row.expires_at)
            .execute(next.conn())?;
        Ok((old.map(|o| o.object_key), next))
    }
}

impl<'c, S: Before<AtCaches>> Locks<'c, S> {
    /// Writes a project's cache row, replacing the one before (the last writer wins); returns
    /// the replaced row's object.
    pub(crate) fn put_cache(
        self,
        row: &NewCacheRow<'_>,
    ) -> Result<(Option<String>, Locks<'c, AtCaches>), StorageError> {
        use diesel::sql_types::{BigInt, Bytea, Text, Timestamptz};
        let mut next = self.advance();
        // Insert, or else lock and replace: a plain upsert would not say which object it
        // replaced when two uploads of a new key race (the second sees no row, then updates).
        let inserted = diesel::sql_query(include_str!("locking/put_cache.sql"))
            .bind::<BigInt, _>(row.project_id)
            .bind::<Text, _>(row.key)
            .bind::<Text, _>(row.object_key)
            .bind::<BigInt, _>(row.size)
            .bind::<Bytea, _>(&row.sha256[..])
            .bind::<BigInt, _>(row.build_id)
            .bind::<Timestamptz, _>(row.updated_at)
            .execute(next.conn())?;
        if inserted > 0 {
            return Ok((None, next));
        }
        let old = diesel::sql_query(
            "SELECT object_key FROM ci_caches WHERE project_id = $1 AND cache_key = $2 \
             FOR NO KEY UPDATE",
        )
        .bind::<BigInt, _>(row.project_id)
        .bind::<Text, _>(row.key)
        .get_result::<ObjectKey>(next.conn())?;
        diesel::sql_query(
            "UPDATE ci_caches SET object_key = $3, size_bytes = $4, sha256 = $5, build_id = $6, \
             updated_at = $7 WHERE project_id = $1 AND cache_key = $2",
        )
        .bind::<BigInt, _>(row.project_id)
        .bind::<Text, _>(row.key)
        .bind::<Text, _>(row.object_key)
        .bind::<BigInt, _>(row.size)
        .bind::<Bytea, _>(&row.sha256[..])
        .bind::<BigInt, _>(row.build_id)
        .bind::<Timestamptz, _>(row.updated_at)
        .execute(next.conn())?;
        let old = Some(old);
        Ok((old.map(|o| o.object_key), next))
    }
}
