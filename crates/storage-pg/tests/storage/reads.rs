//! Read models: single builds and pages of pipelines.

use crate::support::{Fixture, job, now, release_pipeline};
use lockstep_domain::{BuildId, PipelineId, PipelineStatus, ProjectId};
use lockstep_storage_pg::{
    PipelineQuery, StorageError, create_project, list_pipelines, load_build,
};

fn ids(page: &[lockstep_storage_pg::PipelineSummary]) -> Vec<PipelineId> {
    page.iter().map(|p| p.id).collect()
}

fn query(limit: u32) -> PipelineQuery {
    PipelineQuery {
        status: None,
        git_ref: None,
        before: None,
        limit,
    }
}

fn not_found(err: &StorageError, expected: &str, expected_id: i64) -> bool {
    matches!(err, StorageError::NotFound { entity, id } if *entity == expected && *id == expected_id)
}

#[test]
fn a_build_loads_as_its_pipeline_shows_it() {
    let mut f = Fixture::new();
    let created = f.create(release_pipeline());
    let view = f.pipeline(created.id);
    for build in &view.builds {
        assert_eq!(build.pipeline_id, created.id);
        assert_eq!(&load_build(&mut f.conn, build.id).unwrap(), build);
    }
    assert!(
        view.builds.iter().any(|b| b.deployment.is_some()),
        "the pipeline has deployments to compare"
    );
}

#[test]
fn an_unknown_build_is_not_found() {
    let mut f = Fixture::new();
    let err = load_build(&mut f.conn, BuildId(999)).unwrap_err();
    assert!(not_found(&err, "build", 999), "{err}");
}

#[test]
fn pipelines_page_newest_first_by_before_and_limit() {
    let mut f = Fixture::new();
    let created: Vec<PipelineId> = (0..5).map(|_| f.create(vec![job("a")]).id).collect();
    let newest_first: Vec<PipelineId> = created.iter().rev().copied().collect();

    let first = list_pipelines(&mut f.conn, f.project, &query(2)).unwrap();
    assert_eq!(ids(&first), newest_first[..2]);
    assert_eq!(first[0].project_id, f.project);
    assert_eq!(first[0].git_ref, "main");
    assert_eq!(first[0].sha.as_deref(), Some("abc123"));
    assert_eq!(first[0].status, PipelineStatus::Pending);
    assert_eq!(first[0].finished_at, None);

    let mut rest = Vec::new();
    let mut before = first.last().map(|p| p.id);
    while let Some(id) = before {
        let page = list_pipelines(
            &mut f.conn,
            f.project,
            &PipelineQuery {
                before: Some(id),
                ..query(2)
            },
        )
        .unwrap();
        assert!(page.len() <= 2);
        rest.extend(ids(&page));
        before = page.last().map(|p| p.id);
    }
    assert_eq!(rest, newest_first[2..]);
    assert_eq!(
        ids(&list_pipelines(&mut f.conn, f.project, &query(100)).unwrap()),
        newest_first
    );
}

#[test]
fn pipelines_filter_by_status_and_stay_within_their_project() {
    let mut f = Fixture::new();
    let a = f.create(vec![job("a")]).id;
    let b = f.create(vec![job("a")]).id;
    let c = f.create(vec![job("a")]).id;
    f.tx().cancel_pipeline(b, now()).unwrap();

    let canceled = list_pipelines(
        &mut f.conn,
        f.project,
        &PipelineQuery {
            status: Some(PipelineStatus::Canceled),
            ..query(10)
        },
    )
    .unwrap();
    assert_eq!(ids(&canceled), [b]);
    assert!(canceled[0].finished_at.is_some());
    let pending = list_pipelines(
        &mut f.conn,
        f.project,
        &PipelineQuery {
            status: Some(PipelineStatus::Pending),
            ..query(10)
        },
    )
    .unwrap();
    assert_eq!(ids(&pending), [c, a]);

    let other = create_project(&mut f.conn, "other").unwrap();
    assert_eq!(
        list_pipelines(&mut f.conn, other.id, &query(10)).unwrap(),
        vec![]
    );
}

#[test]
fn pipelines_of_an_unknown_project_are_not_found() {
    let mut f = Fixture::new();
    let err = list_pipelines(&mut f.conn, ProjectId(404), &query(10)).unwrap_err();
    assert!(not_found(&err, "project", 404), "{err}");
}

#[test]
fn pipelines_filter_by_ref() {
    let mut f = Fixture::new();
    let main = f.create(vec![job("a")]).id;
    let feature = f.create_on("feature/x", vec![job("a")]).id;
    let on = |f: &mut Fixture, git_ref: &str| {
        let query = PipelineQuery {
            git_ref: Some(git_ref.to_owned()),
            ..query(10)
        };
        ids(&list_pipelines(&mut f.conn, f.project, &query).unwrap())
    };
    assert_eq!(on(&mut f, "main"), [main]);
    assert_eq!(on(&mut f, "feature/x"), [feature]);
    assert_eq!(
        on(&mut f, "feature"),
        [PipelineId(0); 0],
        "a ref is matched whole"
    );
}
