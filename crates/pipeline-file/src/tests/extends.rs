//! GitLab's `extends` (deep merge, lists replaced, several levels, cycles, depth), `default`
//! after it, and YAML's own sharing: anchors and `<<` merge keys.

use super::{check, dedent, problems};
use std::fmt::Write as _;

#[test]
fn mappings_merge_deeply_and_lists_are_replaced() {
    check(
        "
        .base:
          script: [base]
          variables: {A: base, B: base}
          retry: {max: 2, when: runner_lost}
          tags: [a, b]
        j:
          extends: .base
          variables: {B: job}
          retry: {max: 1}
          tags: [c]
        ",
        r#"j: stage="test" script=["base"] variables={"A":"base","B":"job"} tags=["c"] retry={"max":1,"when":["runner_lost"]}"#,
    );
}

#[test]
fn later_bases_win_then_the_job_and_levels_nest() {
    check(
        "
        .a: {script: [a], variables: {X: a, Y: a}, stage: build}
        .b: {extends: .a, variables: {Y: b}}
        .c: {variables: {X: c}, tags: [c]}
        j:
          extends: [.b, .c]
          script: [j]
        ",
        r#"j: stage="build" script=["j"] variables={"X":"c","Y":"b"} tags=["c"]"#,
    );
}

#[test]
fn a_job_may_extend_a_job_and_extends_is_not_inherited() {
    check(
        "
        base: {stage: build, script: base, needs: []}
        child: {extends: base, script: child}
        ",
        r#"
        base: stage="build" script=["base"] needs=[]
        child: stage="build" script=["child"] needs=[]
        "#,
    );
}

#[test]
fn default_fills_after_extends() {
    check(
        "
        default: {tags: [default], timeout: 5m}
        .t: {tags: [template]}
        a: {extends: .t, script: x}
        b: {script: x}
        ",
        r#"
        a: stage="test" script=["x"] tags=["template"] timeout_seconds=300
        b: stage="test" script=["x"] tags=["default"] timeout_seconds=300
        "#,
    );
}

#[test]
fn anchors_and_merge_keys_are_yaml_level_and_shallow() {
    check(
        "
        .defaults: &defaults
          stage: build
          tags: [linux]
          variables: {A: 1}
        j:
          <<: *defaults
          variables: {B: 2}
          script: x
        ",
        r#"j: stage="build" script=["x"] variables={"B":"2"} tags=["linux"]"#,
    );
    // In a list of merged mappings, the earlier one wins (YAML's rule).
    check(
        "
        .a: &a {stage: build}
        .b: &b {stage: deploy, tags: [b]}
        j:
          <<: [*a, *b]
          script: x
        ",
        r#"j: stage="build" script=["x"] tags=["b"]"#,
    );
}

#[test]
fn unused_templates_are_not_checked() {
    check(
        "
        .unused: {colour: red, script: 3}
        .vars: &vars {A: 1}
        j: {variables: *vars, script: x}
        ",
        r#"j: stage="test" script=["x"] variables={"A":"1"}"#,
    );
}

#[test]
fn problems_of_extends() {
    check(
        "
        a: {extends: .b, script: x}
        .b: {extends: a}
        ",
        "line 2, column 15: .b.extends: `extends` forms a cycle: a -> .b -> a",
    );
    check(
        "a: {extends: a, script: x}",
        "line 1, column 14: a.extends: `extends` forms a cycle: a -> a",
    );
    check(
        "
        .templ: {stage: build}
        a: {extends: .tmpl, script: x}
        ",
        "line 2, column 14: a.extends: `extends` names `.tmpl`, which is not defined; did you mean `.templ`?",
    );
    check(
        "
        .s: [a]
        a: {extends: [.s], script: x}
        ",
        "line 2, column 15: a.extends: `extends` names `.s`, which is not a mapping",
    );
    check(
        "a: {extends: {name: x}, script: x}",
        "line 1, column 14: a.extends: `extends` must be a name or a list of names, not a mapping",
    );
    // GitLab checks every `extends`, an unused template's too.
    check(
        "
        .t: {extends: .nope}
        a: {script: x}
        ",
        "line 1, column 15: .t.extends: `extends` names `.nope`, which is not defined",
    );
}

/// `.t1` extends `.t2` … extends `.t{levels}`, and `j` extends `.t1`: `levels` levels.
fn chain(levels: usize) -> String {
    let mut source = String::from("j: {extends: .t1, script: x}\n");
    for i in 1..levels {
        writeln!(source, ".t{i}: {{extends: .t{}}}", i + 1).expect("writes");
    }
    writeln!(source, ".t{levels}: {{stage: build}}").expect("writes");
    source
}

#[test]
fn extends_nests_up_to_eleven_levels() {
    check(&chain(11), r#"j: stage="build" script=["x"]"#);
    let errors = problems(&chain(12));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        errors[0].to_string(),
        "line 1, column 5: j.extends: `extends` nests more than 11 levels deep"
    );
}

#[test]
fn a_mistake_in_a_template_points_at_the_template() {
    let source = "
        .t:
          scirpt: x
          retry: {max: 9}
        a: {extends: .t, script: y}
        b: {extends: .t, script: y}
    ";
    let errors = problems(source);
    // Found in both jobs, reported once, where it was written.
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["line 2, column 3: a.scirpt: unknown key `scirpt`; did you mean `script`?"],
        "{}",
        dedent(source)
    );
    check(
        "
        .t:
          retry: {max: 9}
        a: {extends: .t, script: y}
        ",
        "line 2, column 3: a.retry: `retry` must be between 0 and 5",
    );
}
