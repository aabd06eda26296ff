//! The domain's validation, run by `lint`: its problem comes back at the key it names.

use super::{check, dedent};
use crate::parse;
use std::fmt::Write as _;

#[test]
fn domain_problems_point_at_the_key_they_name() {
    check(
        "
        a: {needs: [b], script: x}
        b: {needs: [a], script: x}
        ",
        "line 1, column 5: a.needs: `needs` form a cycle: b -> a",
    );
    check(
        "
        b: {stage: build, script: x}
        a:
          script: x
          needs:
            - b
            - b
        ",
        "line 4, column 3: a.needs: `needs` lists `b` twice",
    );
    check(
        "
        a:
          script: []
        ",
        "line 2, column 3: a.script: `script` must not be empty",
    );
    check(
        r#"a: {environment: "/prod", script: x}"#,
        "line 1, column 5: a.environment: `environment` may contain only letters, digits, spaces, '-', '_', '.' and '/' (not first or last)",
    );
    check(
        "
        default:
          retry: 9
        a: {script: x}
        ",
        "line 2, column 3: a.retry: `retry` must be between 0 and 5",
    );
    check(
        "
        t 1/2: {script: x}
        t: {parallel: 2, script: x}
        ",
        "line 2, column 1: t: the job name `t 1/2` is used by an earlier job",
    );
    check(
        "
        .hidden: {script: x}
        gone: {when: never, script: x}
        ",
        "the file defines no jobs (hidden jobs and `when: never` jobs do not count)",
    );
}

#[test]
fn limits_of_the_domain_are_placed_too() {
    let long = "n".repeat(256);
    check(
        &format!("{long}: {{script: x}}\n"),
        &format!("line 1, column 1: {long}: the job name is longer than 255"),
    );
    let value = "v".repeat(10_001);
    check(
        &format!("a:\n  script: x\n  variables: {{BIG: {value}}}\n"),
        "line 3, column 3: a.variables: `variables` is longer than 10000",
    );
    let needs: Vec<String> = (0..51).map(|i| format!("j{i}")).collect();
    let mut source = format!("a: {{needs: [{}], script: x}}\n", needs.join(", "));
    for need in &needs {
        writeln!(source, "{need}: {{stage: build, script: x}}").expect("writes");
    }
    check(
        &source,
        "line 1, column 5: a.needs: `needs` has more than 50 entries",
    );
    check(
        "
        t:
          parallel:
            matrix:
              - {A: [1, 2]}
          script: x
          tags: ['']
        ",
        "line 6, column 3: t.tags: `tags` must not be empty (in `t: [1]`)",
    );
}

#[test]
fn parse_reads_without_the_domains_validation() {
    let file = parse(&dedent("a: {script: []}")).expect("reads");
    assert_eq!(file.definition.jobs.len(), 1);
    assert!(file.definition.jobs[0].script.is_empty());
}

#[test]
fn the_file_itself_must_be_a_mapping() {
    check(
        "- a\n- b\n",
        "line 1, column 1: the file must be a mapping of jobs and settings, not a list",
    );
    check(
        "",
        "the file defines no jobs (hidden jobs and `when: never` jobs do not count)",
    );
    check(
        "a: {script: x}\nb: [1, 2\n",
        "line 2, column 4: invalid YAML: unclosed bracket '['",
    );
}
