//! The benchmark's quick mode, so that its scenarios cannot rot: every storage-level figure
//! comes out, finite and positive. (The HTTP scenarios need the server binary; `cargo xtask
//! bench --quick` runs those.)

use lockstep_bench::{Options, run_all};

#[test]
fn the_quick_benchmark_produces_every_storage_figure() {
    let report = run_all(&Options {
        quick: true,
        rounds: 1,
        server_bin: None,
        worker_bin: None,
        only: Vec::new(),
    });
    for name in [
        "claim_complete_storage",
        "commits_per_build",
        "bulk_create",
        "cancel_storm_p50_ms",
        "acquire_history_ratio",
    ] {
        let figure = report
            .figures
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no `{name}` in {report:#?}"));
        assert!(figure.value.is_finite() && figure.value > 0.0, "{figure:?}");
    }
    assert!(
        report.notes.contains_key("failed: HTTP"),
        "skipped without a server binary"
    );
    assert!(
        report
            .notes
            .contains_key("failed: cancel to stop (real worker)"),
        "skipped without the binaries"
    );
}
