//! GitLab keys Lockstep refuses for now (never ignored), and typos, which name the key meant.

use super::check;
use crate::{REFUSED_JOB_KEYS, REFUSED_TOP_KEYS};

#[test]
fn every_refused_job_key_is_not_supported_yet_at_its_place() {
    for key in REFUSED_JOB_KEYS {
        check(
            &format!("job:\n  script: x\n  {key}: whatever\n"),
            &format!("line 3, column 3: job.{key}: `{key}` is not supported yet"),
        );
    }
}

#[test]
fn every_refused_top_level_key_is_not_supported_yet_at_its_place() {
    for key in REFUSED_TOP_KEYS {
        check(
            &format!("job: {{script: x}}\n{key}: whatever\n"),
            &format!("line 2, column 1: {key}: `{key}` is not supported yet"),
        );
    }
}

#[test]
fn refused_keys_of_default_workflow_environment_needs_and_variables() {
    check(
        "
        default:
          image: rust
          services: [postgres]
        workflow:
          rules: [{when: always}]
          name: nightly
          auto_cancel: {on_job_failure: all}
        j:
          environment: {name: prod, url: https://example.com, on_stop: stop}
          variables: {A: {value: x, expand: false}}
          script: x
        ",
        "
        line 2, column 3: default.image: `image` is not supported yet
        line 3, column 3: default.services: `services` is not supported yet
        line 5, column 3: workflow.rules: `rules` is not supported yet
        line 6, column 3: workflow.name: `name` is not supported yet
        line 7, column 17: workflow.auto_cancel.on_job_failure: `on_job_failure` is not supported yet
        line 9, column 29: j.environment.url: `url` is not supported yet
        line 9, column 55: j.environment.on_stop: `on_stop` is not supported yet
        line 10, column 29: j.variables.A.expand: `expand` is not supported yet
        ",
    );
}

#[test]
fn gitlab_values_lockstep_does_not_take() {
    check(
        "
        a: {when: delayed, script: x}
        b: {retry: {max: 1, when: [stuck_or_timeout_failure, api_failure]}, script: x}
        ",
        "
        line 1, column 11: a.when: `when: delayed` is not supported yet
        line 2, column 28: b.retry.when: `stuck_or_timeout_failure` is GitLab's name; Lockstep calls it `runner_lost`
        line 2, column 54: b.retry.when: `retry: when: api_failure` is not supported yet
        ",
    );
}

#[test]
fn typos_name_the_key_and_the_likely_intended_one() {
    check(
        "
        build:
          stage: build
          scirpt: make
        ",
        "
        line 1, column 1: build: job `build` has no `script`
        line 3, column 3: build.scirpt: unknown key `scirpt`; did you mean `script`?
        ",
    );
    check(
        "
        default: {tag: [x]}
        j: {script: x, colour: blue}
        ",
        "
        line 1, column 11: default.tag: unknown key `tag`; did you mean `tags`?
        line 2, column 16: j.colour: unknown key `colour`
        ",
    );
    check(
        "
        j: {script: x, retry: {max: 1, wehn: always}}
        k: {script: x, environment: {nmae: prod}}
        ",
        "
        line 1, column 32: j.retry.wehn: unknown key `wehn`; did you mean `when`?
        line 2, column 30: k.environment.nmae: unknown key `nmae`; did you mean `name`?
        ",
    );
}

#[test]
fn a_misspelt_setting_read_as_a_job_says_so() {
    check(
        "
        varibles: {A: 1}
        j: {script: x}
        ",
        "
        line 1, column 1: varibles: job `varibles` has no `script` (or did you mean the setting `variables`?)
        line 1, column 12: varibles.A: unknown key `A`
        ",
    );
    check(
        "
        stage: [build]
        j: {script: x}
        ",
        "line 1, column 1: stage: a job must be a mapping of keys such as `script` and `stage`, not a list; did you mean the setting `stages`?",
    );
}

#[test]
fn yaml_tags_such_as_reference_are_not_supported_yet() {
    check(
        "a: {script: !reference [.t, script]}",
        "line 1, column 24: the YAML tag `!reference` is not supported yet",
    );
    check("a: {script: !!str 1}", r#"a: stage="test" script=["1"]"#);
}
