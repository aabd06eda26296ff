//! Hostile files are refused with a problem, quickly, never with a panic or a hang; and random
//! input never panics.

use crate::{FileError, lint, parse};
use proptest::prelude::*;
use std::fmt::Write as _;

#[track_caller]
fn refused(source: &str, part: &str) {
    let errors: Vec<FileError> = lint(source).expect_err("refused");
    let text = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains(part), "{text}");
}

#[test]
fn a_billion_laughs_is_refused() {
    let mut source = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (name, previous) in ["b", "c", "d", "e", "f", "g", "h", "i"]
        .iter()
        .zip(["a", "b", "c", "d", "e", "f", "g", "h"])
    {
        let refs = vec![format!("*{previous}"); 9].join(", ");
        writeln!(source, "{name}: &{name} [{refs}]").expect("writes");
    }
    source.push_str("job: {script: *i}\n");
    refused(&source, "too large or too complex");
}

#[test]
fn deep_nesting_is_refused() {
    refused(&"[".repeat(100_000), "too large or too complex");
    refused(&"- ".repeat(100_000), "too large or too complex");
    let mut source = String::from("a:\n");
    for depth in 1..200 {
        writeln!(source, "{}k{depth}:", "  ".repeat(depth)).expect("writes");
    }
    refused(&source, "too large or too complex");
}

#[test]
fn a_ten_megabyte_file_is_refused_before_it_is_parsed() {
    let source = format!("a: {{script: [{}]}}\n", "x, ".repeat(3_500_000));
    refused(&source, "the most a pipeline file may have is 2097152");
}

#[test]
fn long_lines_are_refused_by_the_limits_they_break() {
    // A script line of almost 2 MB: read, then refused by the domain's script limit.
    let line = "x".repeat(1_900_000);
    refused(
        &format!("a: {{script: [\"{line}\"]}}\n"),
        "`script` is longer than",
    );
    // A key longer than YAML lets a plain key be.
    refused(
        &format!("{}: {{script: x}}\n", "k".repeat(5_000)),
        "invalid YAML",
    );
}

#[test]
fn long_and_cyclic_extends_chains_are_refused() {
    let mut source = String::from("j: {extends: .t0, script: x}\n");
    for i in 0..5_000 {
        writeln!(source, ".t{i}: {{extends: .t{}}}", i + 1).expect("writes");
    }
    source.push_str(".t5000: {stage: build}\n");
    refused(&source, "nests more than 11 levels deep");
    let mut cycle = String::from("j: {extends: .t0, script: x}\n");
    for i in 0..1_000 {
        writeln!(cycle, ".t{i}: {{extends: .t{}}}", (i + 1) % 1_000).expect("writes");
    }
    // Past 11 levels the depth is the problem, as in GitLab, which checks it first.
    refused(&cycle, "nests more than 11 levels deep");
}

#[test]
fn extends_that_copy_without_end_are_refused() {
    // One template of 20,000 lines, extended by 2,000 jobs: 40 million copied values.
    let mut source = String::from(".big:\n  script:\n");
    for _ in 0..20_000 {
        source.push_str("    - echo\n");
    }
    for i in 0..2_000 {
        writeln!(source, "j{i}: {{extends: .big}}").expect("writes");
    }
    refused(&source, "expands to too much");
}

#[test]
fn matrix_and_parallel_explosions_are_refused_without_expanding() {
    let values = format!(
        "[{}]",
        (0..10)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let vars: Vec<String> = (0..10).map(|i| format!("V{i}: *v")).collect();
    let source = format!(
        ".values: &v {values}\nt:\n  script: x\n  parallel:\n    matrix:\n      - {{{}}}\n",
        vars.join(", ")
    );
    refused(&source, "`matrix` makes 10000000000 jobs");
    let vars: Vec<String> = (0..40).map(|i| format!("V{i}: *v")).collect();
    let source = format!(
        ".values: &v {values}\nt:\n  script: x\n  parallel:\n    matrix:\n      - {{{}}}\n",
        vars.join(", ")
    );
    refused(&source, "`matrix` makes more than 200 jobs");
    let mut many = String::new();
    for i in 0..11 {
        writeln!(many, "j{i}: {{parallel: 200, script: x}}").expect("writes");
    }
    refused(&many, "the file makes more than 2000 jobs");
}

/// A small YAML document from pieces of pipeline files, in flow style.
fn yaml() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        Just("x".to_owned()),
        Just("1.10".to_owned()),
        Just("-3".to_owned()),
        Just("true".to_owned()),
        Just("~".to_owned()),
        Just("\"a: b\"".to_owned()),
        Just("1h 30m".to_owned()),
        Just("*a".to_owned()),
        Just("&a y".to_owned()),
        Just("never".to_owned()),
        Just(".t".to_owned()),
    ];
    let key = prop_oneof![
        proptest::sample::select(crate::JOB_KEYS).prop_map(str::to_owned),
        proptest::sample::select(crate::TOP_KEYS).prop_map(str::to_owned),
        proptest::sample::select(crate::REFUSED_JOB_KEYS).prop_map(str::to_owned),
        Just("matrix".to_owned()),
        Just("job".to_owned()),
        Just(".t".to_owned()),
        Just("<<".to_owned()),
        Just("A".to_owned()),
    ];
    scalar.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5)
                .prop_map(|items| format!("[{}]", items.join(", "))),
            proptest::collection::vec((key.clone(), inner), 0..5).prop_map(|entries| {
                let entries: Vec<String> = entries
                    .into_iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect();
                format!("{{{}}}", entries.join(", "))
            }),
        ]
    })
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let source = String::from_utf8_lossy(&bytes);
        let _ = lint(&source);
    }

    #[test]
    fn random_small_pipelines_never_panic(jobs in proptest::collection::vec(yaml(), 0..6)) {
        let mut source = String::new();
        for (i, job) in jobs.iter().enumerate() {
            let name = if i % 3 == 0 { ".t".to_owned() } else { format!("job{i}") };
            writeln!(source, "{name}: {job}").expect("writes");
        }
        let _ = lint(&source);
        let _ = parse(&source);
    }
}
