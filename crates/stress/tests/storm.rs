//! A short storm in a test database: every count that must be zero is zero, and the storm did
//! enough of the dangerous transitions for that to mean something.

use lockstep_stress::{StormConfig, run};
use lockstep_test_db::TestDb;
use std::time::Duration;

#[test]
fn a_short_storm_has_no_deadlock_and_breaks_no_invariant() {
    let db = TestDb::new();
    let config = StormConfig {
        duration: Duration::from_secs(6),
        threads: 6,
        seed: 42,
    };
    let report = run(db.url(), config).expect("storm runs");
    let json = report.to_json();
    assert_eq!(report.deadlocks_client, 0, "{json}");
    assert_eq!(report.deadlocks_server, 0, "{json}");
    assert_eq!(report.duplicate_acquires, 0, "{json}");
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    assert!(
        report.total_transitions >= 300,
        "too little happened to prove anything: {json}"
    );
    assert!(report.fails >= 20, "{json}");
    assert!(report.pipeline_cancels_touching_deployments >= 5, "{json}");
    assert!(
        report.transitions.values().all(|n| *n > 0),
        "every kind of transition ran: {json}"
    );
}
