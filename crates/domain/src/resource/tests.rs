//! The line of each mode, by example and by property.

use super::*;
use crate::status::BuildStatus as S;
use proptest::prelude::*;

fn member(build: i64, pipeline: i64, status: BuildStatus, queued: i64) -> Member {
    Member {
        build: BuildId(build),
        pipeline: PipelineId(pipeline),
        status,
        queued_at: DateTime::from_timestamp(queued, 0),
    }
}

fn ids(builds: &[i64]) -> Vec<BuildId> {
    builds.iter().copied().map(BuildId).collect()
}

/// Three pipelines: 1's deploy runs, 2's waits (since t=20), 3's waits (since t=10).
fn three() -> Vec<Member> {
    vec![
        member(1, 1, S::Running, 0),
        member(2, 2, S::WaitingForResource, 20),
        member(3, 3, S::WaitingForResource, 10),
    ]
}

#[test]
fn a_held_slot_grants_nothing_and_the_line_follows_the_mode() {
    let expected = [
        (ProcessMode::OldestFirst, [2, 3]),
        (ProcessMode::NewestFirst, [3, 2]),
        (ProcessMode::NewestReadyFirst, [3, 2]),
        (ProcessMode::Unordered, [3, 2]),
    ];
    for (mode, line) in expected {
        assert_eq!(grants(1, mode, &three()), [], "{mode:?}");
        assert_eq!(waiting_line(mode, &three()), ids(&line), "{mode:?}");
    }
}

#[test]
fn a_freed_slot_goes_to_the_head_of_the_line() {
    let mut members = three();
    members[0].status = S::Success;
    for (mode, head) in [
        (ProcessMode::OldestFirst, 2),
        (ProcessMode::NewestFirst, 3),
        (ProcessMode::NewestReadyFirst, 3),
        (ProcessMode::Unordered, 3),
    ] {
        assert_eq!(grants(1, mode, &members), ids(&[head]), "{mode:?}");
    }
    assert_eq!(
        grants(2, ProcessMode::OldestFirst, &members),
        ids(&[2, 3]),
        "two slots, two grants"
    );
}

#[test]
fn an_upcoming_build_keeps_its_place_in_the_ordered_modes_only() {
    // Pipeline 1's deploy is not ready yet; pipeline 2's waits.
    let members = vec![
        member(1, 1, S::Created, 0),
        member(2, 2, S::WaitingForResource, 5),
    ];
    assert_eq!(grants(1, ProcessMode::OldestFirst, &members), []);
    assert_eq!(grants(1, ProcessMode::NewestFirst, &members), ids(&[2]));
    assert_eq!(
        grants(1, ProcessMode::NewestReadyFirst, &members),
        ids(&[2])
    );
    assert_eq!(grants(1, ProcessMode::Unordered, &members), ids(&[2]));
    // Newest first keeps the slot for pipeline 3's upcoming build.
    let newer = vec![
        member(2, 2, S::WaitingForResource, 5),
        member(3, 3, S::Created, 0),
    ];
    assert_eq!(grants(1, ProcessMode::NewestFirst, &newer), []);
    assert_eq!(grants(1, ProcessMode::NewestReadyFirst, &newer), ids(&[2]));
}

#[test]
fn an_upcoming_build_never_keeps_a_slot_from_its_own_pipelines_waiting_builds() {
    // Build 1 (upcoming) may need build 2: keeping the slot for 1 would wait forever.
    let members = vec![
        member(1, 1, S::Created, 0),
        member(2, 1, S::WaitingForResource, 5),
    ];
    for mode in ProcessMode::ALL {
        assert_eq!(grants(1, mode, &members), ids(&[2]), "{mode:?}");
    }
}

#[test]
fn a_build_that_starts_waiting_now_joins_the_unordered_line_at_its_end() {
    let mut members = vec![
        member(1, 1, S::Running, 0),
        member(5, 1, S::WaitingForResource, 0),
        member(9, 2, S::WaitingForResource, 30),
    ];
    members[1].queued_at = None;
    assert_eq!(waiting_line(ProcessMode::Unordered, &members), ids(&[9, 5]));
}

#[test]
fn modes_round_trip_through_their_names() {
    for mode in ProcessMode::ALL {
        assert_eq!(ProcessMode::parse(mode.as_str()), Some(mode));
    }
    assert_eq!(ProcessMode::parse("fifo"), None);
    assert_eq!(ProcessMode::default(), ProcessMode::OldestFirst);
}

fn members() -> impl Strategy<Value = Vec<Member>> {
    let status = prop::sample::select(vec![
        S::Created,
        S::WaitingForResource,
        S::Pending,
        S::Running,
        S::Canceling,
        S::Success,
        S::Failed,
        S::Canceled,
        S::Skipped,
        S::Manual,
    ]);
    prop::collection::vec((1..6_i64, status, 0..50_i64), 0..24).prop_map(|rows| {
        rows.into_iter()
            .zip(1..)
            .map(|((pipeline, status, queued), build)| member(build, pipeline, status, queued))
            .collect()
    })
}

fn mode() -> impl Strategy<Value = ProcessMode> {
    prop::sample::select(ProcessMode::ALL.to_vec())
}

/// The members after `granted` got their slots.
fn after(members: &[Member], granted: &[BuildId]) -> Vec<Member> {
    members
        .iter()
        .map(|m| {
            let mut m = m.clone();
            if granted.contains(&m.build) {
                m.status = S::Pending;
            }
            m
        })
        .collect()
}

proptest! {
    /// Never more holders than slots; only waiting builds are granted; once granted, nothing
    /// more is (a grant uses every slot it can, so none is left unused while a build waits).
    #[test]
    fn grants_fill_free_slots_and_never_more(limit in 1..4_u32, mode in mode(), members in members()) {
        let held = members.iter().filter(|m| m.status.holds_slot()).count();
        let granted = grants(limit, mode, &members);
        for build in &granted {
            let m = members.iter().find(|m| m.build == *build).expect("a member");
            prop_assert_eq!(m.status, S::WaitingForResource);
        }
        prop_assert!(held + granted.len() <= (limit as usize).max(held));
        let next = after(&members, &granted);
        prop_assert_eq!(grants(limit, mode, &next), Vec::<BuildId>::new());
    }

    /// Nobody jumps the line: every waiting build ahead of a granted one is granted too, and
    /// under oldest_first that means ascending pipelines.
    #[test]
    fn grants_are_a_prefix_of_the_line(limit in 1..4_u32, mode in mode(), members in members()) {
        let granted = grants(limit, mode, &members);
        let line = waiting_line(mode, &members);
        prop_assert_eq!(&line[..granted.len()], granted.as_slice());
        if mode == ProcessMode::OldestFirst && !granted.is_empty() {
            let pipeline = |b: &BuildId| members.iter().find(|m| m.build == *b).map(|m| m.pipeline);
            let last_granted = granted.iter().filter_map(pipeline).max();
            let first_left = line[granted.len()..].iter().filter_map(pipeline).min();
            if let (Some(granted), Some(left)) = (last_granted, first_left) {
                prop_assert!(granted <= left);
            }
        }
    }
}
