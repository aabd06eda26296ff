//! One row per supported key: the shapes it takes and the value each comes to.

use super::check;

#[test]
fn script_before_script_and_after_script() {
    check("a: {script: make}", r#"a: stage="test" script=["make"]"#);
    check(
        "
        a:
          before_script: echo start
          script:
            - one
            - [two, [three]]
          after_script: [echo done]
        ",
        r#"a: stage="test" before_script=["echo start"] script=["one","two","three"] after_script=["echo done"]"#,
    );
    check(
        "
        .lines: &lines [b, c]
        a:
          script: [a, *lines]
        ",
        r#"a: stage="test" script=["a","b","c"]"#,
    );
    check(
        "
        a:
          script: |
            echo one
            echo two
        ",
        r#"a: stage="test" script=["echo one\necho two\n"]"#,
    );
}

#[test]
fn stage_and_stages() {
    check(
        "
        deploy: {stage: deploy, script: d}
        build: {stage: build, script: b}
        test: {script: t}
        ",
        r#"
        build: stage="build" script=["b"]
        test: stage="test" script=["t"]
        deploy: stage="deploy" script=["d"]
        "#,
    );
    check(
        "
        stages: [lint, test]
        t: {script: t}
        l: {stage: lint, script: l}
        post: {stage: .post, script: p}
        pre: {stage: .pre, script: p}
        ",
        r#"
        pre: stage=".pre" script=["p"]
        l: stage="lint" script=["l"]
        t: stage="test" script=["t"]
        post: stage=".post" script=["p"]
        "#,
    );
    check(
        "
        stages: [.post, b, .pre]
        x: {stage: .pre, script: p}
        y: {stage: b, script: b}
        z: {stage: .post, script: p}
        ",
        r#"
        x: stage=".pre" script=["p"]
        y: stage="b" script=["b"]
        z: stage=".post" script=["p"]
        "#,
    );
}

#[test]
fn needs_in_every_shape() {
    check(
        "
        a: {stage: build, script: a}
        b: {stage: build, script: b}
        c: {needs: [a, {job: b}], script: c}
        d: {needs: [], script: d}
        e: {needs: [{job: gone, optional: true}, {job: a, optional: false}], script: e}
        f: {needs: null, script: f}
        ",
        r#"
        a: stage="build" script=["a"]
        b: stage="build" script=["b"]
        c: stage="test" script=["c"] needs=["a","b"]
        d: stage="test" script=["d"] needs=[]
        e: stage="test" script=["e"] needs=["a"]
        f: stage="test" script=["f"]
        "#,
    );
}

#[test]
fn when_values() {
    check(
        "
        a: {when: on_success, script: x}
        b: {when: on_failure, script: x}
        c: {when: always, script: x}
        d: {when: manual, script: x}
        e: {when: never, script: x}
        ",
        r#"
        a: stage="test" script=["x"]
        b: stage="test" script=["x"] when="on_failure"
        c: stage="test" script=["x"] when="always"
        d: stage="test" script=["x"] when="manual"
        "#,
    );
}

#[test]
fn allow_failure_shapes() {
    check(
        "
        a: {allow_failure: true, script: x}
        b: {allow_failure: false, script: x}
        c: {allow_failure: {exit_codes: 3}, script: x}
        d: {allow_failure: {exit_codes: [42, 1, 42]}, script: x}
        ",
        r#"
        a: stage="test" script=["x"] allow_failure=true
        b: stage="test" script=["x"]
        c: stage="test" script=["x"] allow_failure={"exit_codes":[3]}
        d: stage="test" script=["x"] allow_failure={"exit_codes":[1,42]}
        "#,
    );
}

#[test]
fn environment_resource_group_and_interruptible() {
    check(
        "
        a: {environment: staging, resource_group: staging, script: x}
        b: {environment: {name: review/x, action: stop}, script: x}
        c: {environment: {name: db, action: prepare}, interruptible: true, script: x}
        d: {environment: {name: prod}, interruptible: false, script: x}
        ",
        r#"
        a: stage="test" script=["x"] environment={"action":"start","name":"staging"} resource_group="staging"
        b: stage="test" script=["x"] environment={"action":"stop","name":"review/x"}
        c: stage="test" script=["x"] environment={"action":"prepare","name":"db"} interruptible=true
        d: stage="test" script=["x"] environment={"action":"start","name":"prod"}
        "#,
    );
}

#[test]
fn retry_shapes() {
    check(
        "
        a: {retry: 2, script: x}
        b: {retry: {max: 1}, script: x}
        c: {retry: {max: 2, when: runner_lost}, script: x}
        d: {retry: {max: 2, when: [script_failure, job_timeout], exit_codes: 137}, script: x}
        e: {retry: {max: 1, exit_codes: [1, 2]}, script: x}
        ",
        r#"
        a: stage="test" script=["x"] retry=2
        b: stage="test" script=["x"] retry=1
        c: stage="test" script=["x"] retry={"max":2,"when":["runner_lost"]}
        d: stage="test" script=["x"] retry={"exit_codes":[137],"max":2,"when":["script_failure","job_timeout"]}
        e: stage="test" script=["x"] retry={"exit_codes":[1,2],"max":1}
        "#,
    );
}

#[test]
fn timeouts_in_gitlab_durations() {
    check(
        r#"
        a: {timeout: 3600, script: x}
        b: {timeout: "3600", script: x}
        c: {timeout: 1h 30m, script: x}
        d: {timeout: 45 minutes, script: x}
        e: {timeout: 2h, script: x}
        f: {timeout: 90s, script: x}
        g: {timeout: 1 day, script: x}
        h: {timeout: 1 week, script: x}
        "#,
        r#"
        a: stage="test" script=["x"] timeout_seconds=3600
        b: stage="test" script=["x"] timeout_seconds=3600
        c: stage="test" script=["x"] timeout_seconds=5400
        d: stage="test" script=["x"] timeout_seconds=2700
        e: stage="test" script=["x"] timeout_seconds=7200
        f: stage="test" script=["x"] timeout_seconds=90
        g: stage="test" script=["x"] timeout_seconds=86400
        h: stage="test" script=["x"] timeout_seconds=604800
        "#,
    );
    check(
        "
        a: {timeout: 8 days, script: x}
        b: {timeout: 0, script: x}
        c: {timeout: soon, script: x}
        d: {timeout: [1h], script: x}
        ",
        "
        line 1, column 14: a.timeout: `timeout` must be between 1 second and 1 week (604800 seconds), not 691200 seconds
        line 2, column 14: b.timeout: `timeout` must be between 1 second and 1 week (604800 seconds), not 0 seconds
        line 3, column 14: c.timeout: `timeout` is not a duration: `soon` should start with a number
        line 4, column 14: d.timeout: `timeout` must be a duration such as `1h 30m`, not a list
        ",
    );
}

#[test]
fn tags_and_variables() {
    check(
        r#"
        variables:
          VERSION: 1.10
          COUNT: 3
          HEX: 0x1F
          DEBUG: true
          QUOTED: "007"
          LONG: {value: x, description: "shown in the run form"}
        a:
          tags: [linux, docker]
          variables: {OWN: yes}
          script: x
        "#,
        r#"a: stage="test" script=["x"] variables={"COUNT":"3","DEBUG":"true","HEX":"0x1F","LONG":"x","OWN":"yes","QUOTED":"007","VERSION":"1.10"} tags=["linux","docker"]"#,
    );
}

#[test]
fn variables_precedence_job_over_default_over_top_level() {
    check(
        "
        variables: {A: top, B: top, C: top}
        default:
          variables: {B: default, C: default}
        j:
          variables: {C: job}
          script: x
        ",
        r#"j: stage="test" script=["x"] variables={"A":"top","B":"default","C":"job"}"#,
    );
}

#[test]
fn default_fills_only_what_the_job_did_not_set() {
    check(
        "
        default:
          tags: [linux]
          timeout: 10m
          retry: 1
          interruptible: true
          before_script: [setup]
          after_script: [teardown]
        plain: {script: x}
        own:
          tags: [mac]
          timeout: 1m
          retry: 0
          interruptible: false
          before_script: []
          after_script: [own]
          script: x
        unset:
          tags: null
          script: x
        ",
        r#"
        plain: stage="test" before_script=["setup"] script=["x"] after_script=["teardown"] tags=["linux"] timeout_seconds=600 retry=1 interruptible=true
        own: stage="test" script=["x"] after_script=["own"] tags=["mac"] timeout_seconds=60 retry=0
        unset: stage="test" before_script=["setup"] script=["x"] after_script=["teardown"] tags=["linux"] timeout_seconds=600 retry=1 interruptible=true
        "#,
    );
}

#[test]
fn global_scripts_act_as_defaults_and_default_wins() {
    check(
        "
        before_script: [global before]
        after_script: [global after]
        default:
          after_script: [default after]
        j: {script: x}
        ",
        r#"j: stage="test" before_script=["global before"] script=["x"] after_script=["default after"]"#,
    );
}

#[test]
fn workflow_auto_cancel() {
    check("j: {script: x}", r#"j: stage="test" script=["x"]"#);
    for value in ["conservative", "interruptible", "none"] {
        let source =
            format!("workflow: {{auto_cancel: {{on_new_commit: {value}}}}}\nj: {{script: x}}\n");
        let expected = if value == "conservative" {
            r#"j: stage="test" script=["x"]"#.to_owned()
        } else {
            format!("j: stage=\"test\" script=[\"x\"]\nauto_cancel: {value}")
        };
        check(&source, &expected);
    }
    check(
        "
        workflow:
          auto_cancel:
            on_new_commit: sometimes
        j: {script: x}
        ",
        "line 3, column 20: workflow.auto_cancel.on_new_commit: `on_new_commit` must be conservative, interruptible or none, not `sometimes`",
    );
}

#[test]
fn a_stage_not_in_stages_is_named() {
    check(
        "
        stages: [build]
        a: {stage: deploy, script: x}
        b: {script: x}
        ",
        "
        line 2, column 5: a.stage: the stage `deploy` is not in `stages`
        line 3, column 1: b.stage: the stage `test` (the default stage) is not in `stages`
        ",
    );
    check(
        "stages: [a, b, a]\nj: {stage: a, script: x}",
        "line 1, column 16: stages: `stages` lists `a` twice",
    );
}

#[test]
fn variable_names_and_values_are_checked_where_written() {
    check(
        "
        variables:
          1A: x
          A-B: x
          LIST: [a]
          NOTHING:
          LONG: {description: no value}
        j: {script: x}
        ",
        "
        line 2, column 3: variables.1A: `1A` is not a variable name: a letter or '_', then letters, digits or '_' (at most 255)
        line 3, column 3: variables.A-B: `A-B` is not a variable name: a letter or '_', then letters, digits or '_' (at most 255)
        line 4, column 9: variables.LIST: a variable must be a string, a number, a boolean or {value, description}, not a list
        line 5, column 10: variables.NOTHING: a variable must be a string, a number, a boolean or {value, description}, not empty
        line 6, column 9: variables.LONG: a variable written as a mapping needs a `value`
        ",
    );
}

#[test]
fn shapes_that_are_wrong_say_what_is_expected() {
    check(
        "
        a:
          script: [echo a: b, 3]
          interruptible: yes
          tags: linux
          stage: [build]
        ",
        "
        line 2, column 12: a.script: a line of `script` is a mapping (`echo a: …`); quote a line that contains `: `
        line 2, column 23: a.script: a line of `script` must be a string, not a number; quote it
        line 3, column 18: a.interruptible: `interruptible` must be true or false, not a string
        line 4, column 9: a.tags: `tags` must be a list of names, not a string
        line 5, column 10: a.stage: `stage` must be a string, not a list
        ",
    );
}
