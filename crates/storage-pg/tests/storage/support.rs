//! Fixtures shared by the storage tests.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use lockstep_domain::{JobDefinition, PipelineDefinition, PipelineId, ProjectId, RunnerId, When};
use lockstep_storage_pg::{
    AcquiredBuild, CreatedPipeline, NewPipeline, PipelineView, Transitions, TxStats,
    check_invariants, create_project, load_pipeline, register_runner,
};
use lockstep_test_db::TestDb;
use std::time::Duration;

pub(crate) const LEASE: Duration = Duration::from_secs(30);
/// How long a claim in these tests waits for its acknowledgement.
pub(crate) const ACKNOWLEDGE: Duration = Duration::from_secs(5);
/// How long the tests' reaper lets a cancel wait for its runner's confirmation.
pub(crate) const GRACE: Duration = Duration::from_secs(60);

/// A test database with one project and one runner that has every tag the fixtures use.
pub(crate) struct Fixture {
    pub(crate) db: TestDb,
    pub(crate) conn: PgConnection,
    pub(crate) stats: TxStats,
    pub(crate) project: ProjectId,
    pub(crate) runner: RunnerId,
    pub(crate) tags: Vec<String>,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        let db = TestDb::new();
        let mut conn = db.connect();
        let project = create_project(&mut conn, "app").expect("create project").id;
        let tags = vec!["docker".to_owned(), "linux".to_owned()];
        let runner = register_runner(&mut conn, "runner-1", &tags, b"hash-1")
            .expect("register runner")
            .id;
        Self {
            db,
            conn,
            stats: TxStats::default(),
            project,
            runner,
            tags,
        }
    }

    pub(crate) fn tx(&mut self) -> Transitions<'_> {
        Transitions::new(&mut self.conn, &self.stats)
    }

    pub(crate) fn create(&mut self, jobs: Vec<JobDefinition>) -> CreatedPipeline {
        self.create_on("main", jobs)
    }

    /// [`Self::create`] on branch or tag `git_ref`.
    pub(crate) fn create_on(&mut self, git_ref: &str, jobs: Vec<JobDefinition>) -> CreatedPipeline {
        let definition = PipelineDefinition { jobs }
            .validate()
            .expect("valid definition");
        let project = self.project;
        self.tx()
            .create_pipeline(
                &NewPipeline {
                    project,
                    git_ref,
                    sha: Some("abc123"),
                    definition: &definition,
                    // Tests of other things put pipelines side by side on one ref;
                    // auto-cancel has tests of its own (auto_cancel.rs).
                    auto_cancel: lockstep_domain::AutoCancel::None,
                },
                now(),
            )
            .expect("create pipeline")
    }

    /// Acquires one build, brings its pipeline's status up to date, as the server does, and
    /// acknowledges it with a heartbeat, as a runner does first thing.
    pub(crate) fn acquire(&mut self) -> Option<AcquiredBuild> {
        let build = self.claim(LEASE)?;
        let runner = self.runner;
        self.tx()
            .heartbeat(build.id, runner, LEASE, now())
            .expect("acknowledge");
        Some(build)
    }

    /// [`Self::acquire`] for a runner that never got the answer: nothing acknowledges the
    /// claim, whose short lease ends after [`ACKNOWLEDGE`].
    pub(crate) fn acquire_unacknowledged(&mut self) -> Option<AcquiredBuild> {
        self.claim(ACKNOWLEDGE)
    }

    fn claim(&mut self, acknowledge_within: Duration) -> Option<AcquiredBuild> {
        let (runner, tags) = (self.runner, self.tags.clone());
        let mut acquired = self
            .tx()
            .acquire(runner, &tags, 1, acknowledge_within, now())
            .expect("acquire");
        self.tx()
            .refresh_pipelines(&acquired.stale_pipelines, now())
            .expect("refresh after acquire");
        acquired.builds.pop()
    }

    /// Acquires until the build named `name` is claimed; panics if it never is.
    pub(crate) fn acquire_named(&mut self, name: &str) -> AcquiredBuild {
        for _ in 0..100 {
            match self.acquire() {
                Some(build) if build.name == name => return build,
                Some(_) => {}
                None => break,
            }
        }
        panic!("build `{name}` was never acquired");
    }

    /// The pipeline a build belongs to.
    pub(crate) fn pipeline_of(&mut self, build: lockstep_domain::BuildId) -> PipelineId {
        lockstep_storage_pg::load_build(&mut self.conn, build)
            .expect("the build exists")
            .pipeline_id
    }

    pub(crate) fn pipeline(&mut self, id: PipelineId) -> PipelineView {
        load_pipeline(&mut self.conn, id).expect("load pipeline")
    }

    pub(crate) fn assert_invariants(&mut self) {
        let violations = check_invariants(&mut self.conn).expect("check invariants");
        assert!(violations.is_empty(), "invariants broken: {violations:#?}");
    }
}

/// The domain's refusal inside a storage error; any other error fails the test.
pub(crate) fn refusal(
    error: lockstep_storage_pg::StorageError,
) -> lockstep_domain::TransitionError {
    match error {
        lockstep_storage_pg::StorageError::Transition(refused) => refused,
        other => panic!("expected the domain to refuse the transition, got: {other}"),
    }
}

pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

pub(crate) fn job(name: &str) -> JobDefinition {
    JobDefinition {
        name: name.to_owned(),
        script: vec![format!("echo {name}")],
        ..JobDefinition::default()
    }
}

/// Builder-style tweaks of a job definition.
pub(crate) trait JobExt {
    fn stage(self, stage: &str) -> Self;
    fn needs(self, needs: &[&str]) -> Self;
    fn env(self, environment: &str) -> Self;
    fn when(self, when: When) -> Self;
    fn retry(self, retry: u32) -> Self;
    fn tags(self, tags: &[&str]) -> Self;
    fn group(self, group: &str) -> Self;
}

impl JobExt for JobDefinition {
    fn stage(mut self, stage: &str) -> Self {
        self.stage = Some(stage.to_owned());
        self
    }
    fn needs(mut self, needs: &[&str]) -> Self {
        self.needs = Some(
            needs
                .iter()
                .map(|s| lockstep_domain::Need::from(*s))
                .collect(),
        );
        self
    }
    fn env(mut self, environment: &str) -> Self {
        self.environment = Some(environment.into());
        self
    }
    fn when(mut self, when: When) -> Self {
        self.when = when;
        self
    }
    fn retry(mut self, retry: u32) -> Self {
        self.retry = Some(lockstep_domain::Retry::times(retry));
        self
    }
    fn tags(mut self, tags: &[&str]) -> Self {
        self.tags = tags.iter().map(|s| (*s).to_owned()).collect();
        self
    }
    fn group(mut self, group: &str) -> Self {
        self.resource_group = Some(group.to_owned());
        self
    }
}

/// build -> (unit, lint) -> (staging, production) -> notify(always): four stages, two deployments.
pub(crate) fn release_pipeline() -> Vec<JobDefinition> {
    vec![
        job("build").stage("build"),
        job("unit").stage("test"),
        job("lint").stage("test"),
        job("staging").stage("deploy").env("staging"),
        job("production")
            .stage("deploy")
            .env("production")
            .needs(&["unit"]),
        job("notify").stage("notify").when(When::Always),
    ]
}

/// The latest attempt of a job in a loaded pipeline.
pub(crate) fn latest<'v>(view: &'v PipelineView, name: &str) -> &'v lockstep_storage_pg::BuildView {
    view.builds
        .iter()
        .filter(|b| b.name == name)
        .max_by_key(|b| b.attempt)
        .unwrap_or_else(|| panic!("no build named `{name}`"))
}

/// Status names of the latest attempts, in job order of first appearance, for compact asserts.
pub(crate) fn statuses(view: &PipelineView) -> Vec<(String, String)> {
    let mut names: Vec<&str> = Vec::new();
    for build in &view.builds {
        if !names.contains(&build.name.as_str()) {
            names.push(&build.name);
        }
    }
    names
        .into_iter()
        .map(|name| {
            (
                name.to_owned(),
                latest(view, name).status.as_str().to_owned(),
            )
        })
        .collect()
}

impl Fixture {
    pub(crate) fn pipeline_count(&mut self) -> i64 {
        use diesel::prelude::*;
        diesel::dsl::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT count(*) FROM pipelines)",
        ))
        .get_result(&mut self.conn)
        .expect("count pipelines")
    }
}
