//! Creating a pipeline writes exactly the rows the earlier row-by-row diesel insert wrote, with
//! build ids in job order, however many jobs and whatever their arrays hold.

use super::{NewPipeline, array_literal, create};
use crate::rows::to_int;
use crate::schema::{ci_builds, environments, pipelines};
use crate::write::{self, NewDeployment};
use chrono::{DateTime, TimeZone, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text};
use lockstep_domain::{
    AllowFailure, BuildId, BuildStatus, DeploymentStatus, Environment, EnvironmentAction,
    JobDefinition, PipelineDefinition, ProjectId, Retry, RetryWhen, ValidJob, ValidPipeline, When,
    plan_new_pipeline,
};
use lockstep_test_db::TestDb;

/// Elements that an array literal must not take for syntax: quotes, backslashes, braces,
/// commas, spaces, `NULL`, newlines, an empty string, non-ASCII.
const AWKWARD: &[&str] = &[
    "say \"hi\"",
    r"C:\path\",
    "{a,b}",
    "a, b",
    "  indented",
    "NULL",
    "null",
    "line one\nline two",
    "",
    "\\\"",
    "caf\u{e9} \u{1f680}",
];

/// 1,500 jobs (more than one chunk of the old insert) in three stages, with every kind of
/// `needs` (absent, empty, a list), awkward scripts and tags, environments on every third job,
/// and manual and on-failure jobs, so that builds start pending, created, manual and skipped.
fn definition() -> ValidPipeline {
    let name = |i: usize| format!("job {i} \"{{x}}\" \\");
    let jobs = (0..1_500)
        .map(|i| JobDefinition {
            name: name(i),
            stage: Some(["build", "test", "deploy"][i % 3].to_owned()),
            before_script: (i % 2 == 0)
                .then(|| AWKWARD[(i + 1) % AWKWARD.len()].to_owned())
                .into_iter()
                .collect(),
            script: vec!["true".to_owned(), AWKWARD[i % AWKWARD.len()].to_owned()],
            after_script: (i % 5 == 0)
                .then(|| AWKWARD[(i + 2) % AWKWARD.len()].to_owned())
                .into_iter()
                .collect(),
            variables: (0..i % 3)
                .map(|v| {
                    (
                        format!("VAR_{v}"),
                        AWKWARD[(i + v) % AWKWARD.len()].to_owned(),
                    )
                })
                .collect(),
            // Explicit needs point back into the first stage only, so that they never close a
            // cycle with the implicit needs of a job without a list.
            needs: match (i % 4, i % 3) {
                (0, _) => None,
                (1, _) | (_, 0) => Some(Vec::new()),
                (_, stage) if i >= stage + 3 => {
                    Some(vec![name(i - stage).into(), name(i - stage - 3).into()])
                }
                (_, stage) => Some(vec![name(i - stage).into()]),
            },
            dependencies: None,
            artifacts: None,
            cache: None,
            when: match i % 7 {
                3 => When::Manual,
                5 => When::OnFailure,
                6 => When::Always,
                _ => When::OnSuccess,
            },
            allow_failure: match i % 10 {
                0 => AllowFailure::Yes,
                5 => AllowFailure::exit_codes(vec![3, -1]),
                _ => AllowFailure::No,
            },
            environment: (i % 3 == 0).then(|| Environment {
                name: format!("env {}", i % 4),
                action: EnvironmentAction::ALL[i % 7 % 3],
            }),
            tags: match i % 3 {
                0 => Vec::new(),
                1 => vec!["docker".to_owned()],
                _ => vec![
                    "say \"hi\"".to_owned(),
                    r"back\slash".to_owned(),
                    "{a,b}".to_owned(),
                ],
            },
            timeout_seconds: Some(60 + u32::try_from(i).expect("small")),
            retry: Some(match i % 4 {
                0 => Retry::times(u32::try_from(i % 3).expect("small")),
                1 => Retry {
                    max: 2,
                    when: Some(vec![RetryWhen::RunnerLost, RetryWhen::JobTimeout]),
                    exit_codes: None,
                },
                2 => Retry {
                    max: 1,
                    when: None,
                    exit_codes: Some(vec![137, 1]),
                },
                _ => Retry::times(0),
            }),
            // Groups have tests of their own (tests/storage/resource_groups.rs); every other
            // job is interruptible, so that the column is compared too.
            resource_group: None,
            interruptible: i % 2 == 0,
        })
        .collect();
    PipelineDefinition { jobs }
        .validate()
        .expect("the test pipeline is valid")
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0)
        .single()
        .expect("a valid time")
}

#[derive(Insertable)]
#[diesel(table_name = ci_builds)]
struct ReferenceBuild<'a> {
    pipeline_id: i64,
    name: &'a str,
    stage: &'a str,
    stage_idx: i32,
    needs: Option<&'a [String]>,
    run_when: &'a str,
    allow_failure: bool,
    script: &'a [String],
    tags: &'a [String],
    environment: Option<&'a str>,
    timeout_seconds: i32,
    retry_limit: i32,
    retry_when: Vec<String>,
    retry_exit_codes: &'a [i32],
    allow_failure_exit_codes: Option<&'a [i32]>,
    interruptible: bool,
    status: &'a str,
    created_at: DateTime<Utc>,
    queued_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

/// What creating a pipeline wrote before the unnest statements: diesel inserts with one VALUES
/// row per build, 1,000 rows at a time. Returns the pipeline's id.
fn reference_create(
    conn: &mut PgConnection,
    project: ProjectId,
    definition: &ValidPipeline,
) -> i64 {
    let now = now();
    let (statuses, status) = plan_new_pipeline(definition);
    let pipeline_id = diesel::insert_into(pipelines::table)
        .values((
            pipelines::project_id.eq(project.0),
            pipelines::ref_.eq("main"),
            pipelines::sha.eq(Some("abc123")),
            pipelines::status.eq(status.as_str()),
            pipelines::created_at.eq(now),
            pipelines::updated_at.eq(now),
            pipelines::finished_at.eq(status.is_terminal().then_some(now)),
        ))
        .returning(pipelines::id)
        .get_result::<i64>(conn)
        .expect("insert the reference pipeline");
    let jobs = definition.jobs();
    let rows: Vec<ReferenceBuild<'_>> = jobs
        .iter()
        .zip(&statuses)
        .map(|(job, status)| ReferenceBuild {
            pipeline_id,
            name: job.name(),
            stage: job.stage(),
            stage_idx: to_int(job.stage_idx()),
            needs: job.needs(),
            run_when: job.when().as_str(),
            allow_failure: job.allow_failure().may_allow(),
            script: job.script(),
            tags: job.tags(),
            environment: job.environment(),
            timeout_seconds: to_int(job.timeout_seconds()),
            retry_limit: to_int(job.retry().max()),
            retry_when: job
                .retry()
                .when()
                .iter()
                .map(|w| w.as_str().to_owned())
                .collect(),
            retry_exit_codes: job.retry().exit_codes(),
            allow_failure_exit_codes: job.allow_failure().listed_codes(),
            interruptible: job.interruptible(),
            status: status.as_str(),
            created_at: now,
            queued_at: (*status == BuildStatus::Pending).then_some(now),
            finished_at: status.is_terminal().then_some(now),
        })
        .collect();
    let mut ids = Vec::new();
    for chunk in rows.chunks(1_000) {
        ids.extend(
            diesel::insert_into(ci_builds::table)
                .values(chunk)
                .returning(ci_builds::id)
                .get_results::<i64>(conn)
                .expect("insert the reference builds"),
        );
    }
    reference_job_definitions(conn, pipeline_id, jobs);
    let deployments: Vec<NewDeployment> = jobs
        .iter()
        .zip(ids.iter().zip(&statuses))
        .filter_map(|(job, (id, status))| {
            let environment_id = environments::table
                .filter(environments::project_id.eq(project.0))
                .filter(environments::name.eq(job.deploys_to()?))
                .select(environments::id)
                .first::<i64>(conn)
                .expect("the environment exists");
            Some(NewDeployment {
                build: BuildId(*id),
                environment_id,
                status: DeploymentStatus::for_build(*status),
            })
        })
        .collect();
    write::insert_deployments(conn, &deployments, now).expect("insert the reference deployments");
    pipeline_id
}

/// The job definitions, one diesel insert per job that has any.
fn reference_job_definitions(conn: &mut PgConnection, pipeline_id: i64, jobs: &[ValidJob]) {
    use crate::schema::ci_job_definitions as d;
    for job in jobs {
        let plain = job.before_script().is_empty()
            && job.after_script().is_empty()
            && job.variables().is_empty()
            && job.environment_action() == EnvironmentAction::Start;
        if plain {
            continue;
        }
        let variables = serde_json::to_string(job.variables()).expect("variables as JSON");
        diesel::insert_into(d::table)
            .values((
                d::pipeline_id.eq(pipeline_id),
                d::name.eq(job.name()),
                d::before_script.eq(job.before_script()),
                d::after_script.eq(job.after_script()),
                d::environment_action.eq(job.environment_action().as_str()),
            ))
            .execute(conn)
            .expect("insert a reference job definition");
        diesel::sql_query(
            "UPDATE ci_job_definitions SET variables = $1::jsonb WHERE pipeline_id = $2 AND name = $3",
        )
        .bind::<Text, _>(variables)
        .bind::<BigInt, _>(pipeline_id)
        .bind::<Text, _>(job.name())
        .execute(conn)
        .expect("set the reference variables");
    }
}

/// A build's id, name and array columns as stored.
type StoredArrays = (i64, String, Option<Vec<String>>, Vec<String>, Vec<String>);

#[derive(QueryableByName)]
struct Json {
    #[diesel(sql_type = Text)]
    j: String,
}

/// A pipeline's rows as JSON without their ids, in id order: the pipeline, then its builds, then
/// its deployments (each naming its build's job and environment rather than their ids), then its
/// job definitions in name order.
fn rows_without_ids(conn: &mut PgConnection, pipeline_id: i64) -> Vec<String> {
    // Test SQL: a whole-row comparison that the diesel DSL cannot express.
    diesel::sql_query(
        "SELECT j::text FROM (
             SELECT 0 AS part, id, to_jsonb(p) - 'id' AS j FROM pipelines p WHERE id = $1
             UNION ALL
             SELECT 1, id, to_jsonb(b) - 'id' - 'pipeline_id' FROM ci_builds b WHERE pipeline_id = $1
             UNION ALL
             SELECT 2, d.id, to_jsonb(d) - 'id' - 'build_id' - 'environment_id'
                 || jsonb_build_object('job', b.name, 'environment', e.name)
             FROM deployments d
             JOIN ci_builds b ON b.id = d.build_id
             JOIN environments e ON e.id = d.environment_id
             WHERE b.pipeline_id = $1
             UNION ALL
             SELECT 3, row_number() OVER (ORDER BY name), to_jsonb(jd) - 'pipeline_id'
             FROM ci_job_definitions jd WHERE pipeline_id = $1
         ) AS all_rows
         ORDER BY part, id",
    )
    .bind::<BigInt, _>(pipeline_id)
    .load::<Json>(conn)
    .expect("read the rows")
    .into_iter()
    .map(|json| json.j)
    .collect()
}

#[test]
fn creating_writes_the_rows_the_row_by_row_insert_wrote_with_ids_in_job_order() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let project = crate::create_project(&mut conn, "app")
        .expect("create the project")
        .id;
    let definition = definition();
    let new = NewPipeline {
        project,
        git_ref: "main",
        sha: Some("abc123"),
        definition: &definition,
        auto_cancel: lockstep_domain::AutoCancel::None,
    };
    let created = conn
        .transaction(|conn| create(conn, &new, crate::retry::Planning::Optimistic, now()))
        .expect("create the pipeline");
    let jobs = definition.jobs();
    assert_eq!(created.builds.len(), jobs.len());
    assert_eq!(
        created.deployments,
        jobs.iter().filter(|j| j.deploys_to().is_some()).count()
    );
    assert!(
        jobs.iter()
            .any(|j| j.environment().is_some() && j.deploys_to().is_none()),
        "some jobs only prepare or stop their environment"
    );
    assert!(
        created.builds.windows(2).all(|w| w[0].0 < w[1].0),
        "build ids ascend in job order"
    );
    let stored: Vec<StoredArrays> = ci_builds::table
        .filter(ci_builds::pipeline_id.eq(created.id.0))
        .order(ci_builds::id)
        .select((
            ci_builds::id,
            ci_builds::name,
            ci_builds::needs,
            ci_builds::script,
            ci_builds::tags,
        ))
        .load(&mut conn)
        .expect("read the builds");
    for ((job, id), (stored_id, name, needs, script, tags)) in
        jobs.iter().zip(&created.builds).zip(stored)
    {
        assert_eq!((id.0, job.name()), (stored_id, name.as_str()));
        assert_eq!(
            needs.as_deref(),
            job.needs(),
            "{name}: NULL needs stays NULL"
        );
        assert_eq!(script, job.script(), "{name}");
        assert_eq!(tags, job.tags(), "{name}");
    }
    let statuses: std::collections::BTreeSet<&str> = plan_new_pipeline(&definition)
        .0
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(
        statuses,
        ["created", "manual", "pending", "skipped"].into(),
        "the fixture covers every status a build is created in"
    );

    let reference = reference_create(&mut conn, project, &definition);
    assert_eq!(
        rows_without_ids(&mut conn, created.id.0),
        rows_without_ids(&mut conn, reference)
    );
}

#[derive(QueryableByName)]
struct Parsed {
    #[diesel(sql_type = Array<Text>)]
    items: Vec<String>,
}

#[test]
fn an_array_literal_parses_back_to_its_items() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let mut cases: Vec<Vec<String>> = vec![Vec::new(), vec![String::new()]];
    cases.extend(AWKWARD.iter().map(|s| vec![(*s).to_owned()]));
    cases.push(AWKWARD.iter().map(|s| (*s).to_owned()).collect());
    for items in cases {
        // Test SQL: the same cast insert_pipeline.sql applies.
        let parsed = diesel::sql_query("SELECT $1::text[] AS items")
            .bind::<Text, _>(array_literal(&items))
            .get_result::<Parsed>(&mut conn)
            .expect("the literal parses");
        assert_eq!(parsed.items, items);
    }
}
