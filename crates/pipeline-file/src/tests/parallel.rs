//! `parallel` (numbered and matrix, GitLab's names and variables), and `needs` resolved against
//! the jobs the pipeline really has: instances, `when: never`, optional needs.

use super::check;

#[test]
fn parallel_n_names_and_node_variables() {
    check(
        "t: {parallel: 3, script: x}",
        r#"
        t 1/3: stage="test" script=["x"] variables={"CI_NODE_INDEX":"1","CI_NODE_TOTAL":"3"}
        t 2/3: stage="test" script=["x"] variables={"CI_NODE_INDEX":"2","CI_NODE_TOTAL":"3"}
        t 3/3: stage="test" script=["x"] variables={"CI_NODE_INDEX":"3","CI_NODE_TOTAL":"3"}
        "#,
    );
}

#[test]
fn matrix_names_values_in_written_order_and_variables_win_over_the_jobs() {
    check(
        "
        test:
          variables: {PROVIDER: none, OWN: x}
          parallel:
            matrix:
              - PROVIDER: aws
                STACK: [monitoring, app1]
              - PROVIDER: gcp
          script: x
        ",
        r#"
        test: [aws, monitoring]: stage="test" script=["x"] variables={"CI_NODE_INDEX":"1","CI_NODE_TOTAL":"3","OWN":"x","PROVIDER":"aws","STACK":"monitoring"}
        test: [aws, app1]: stage="test" script=["x"] variables={"CI_NODE_INDEX":"2","CI_NODE_TOTAL":"3","OWN":"x","PROVIDER":"aws","STACK":"app1"}
        test: [gcp]: stage="test" script=["x"] variables={"CI_NODE_INDEX":"3","CI_NODE_TOTAL":"3","OWN":"x","PROVIDER":"gcp"}
        "#,
    );
    check(
        "
        t:
          parallel:
            matrix:
              - {B: [1, 2], A: [x, y]}
          script: x
        ",
        r#"
        t: [1, x]: stage="test" script=["x"] variables={"A":"x","B":"1","CI_NODE_INDEX":"1","CI_NODE_TOTAL":"4"}
        t: [1, y]: stage="test" script=["x"] variables={"A":"y","B":"1","CI_NODE_INDEX":"2","CI_NODE_TOTAL":"4"}
        t: [2, x]: stage="test" script=["x"] variables={"A":"x","B":"2","CI_NODE_INDEX":"3","CI_NODE_TOTAL":"4"}
        t: [2, y]: stage="test" script=["x"] variables={"A":"y","B":"2","CI_NODE_INDEX":"4","CI_NODE_TOTAL":"4"}
        "#,
    );
}

#[test]
fn a_parallel_jobs_name_in_needs_means_all_its_instances() {
    check(
        "
        build: {stage: build, parallel: 2, script: b}
        one: {needs: [build 2/2], script: x}
        all: {needs: [build], script: x}
        ",
        r#"
        build 1/2: stage="build" script=["b"] variables={"CI_NODE_INDEX":"1","CI_NODE_TOTAL":"2"}
        build 2/2: stage="build" script=["b"] variables={"CI_NODE_INDEX":"2","CI_NODE_TOTAL":"2"}
        one: stage="test" script=["x"] needs=["build 2/2"]
        all: stage="test" script=["x"] needs=["build 1/2","build 2/2"]
        "#,
    );
}

#[test]
fn never_jobs_are_left_out_and_optional_needs_on_them_dropped() {
    check(
        "
        skipped: {when: never, stage: build, script: x}
        kept: {stage: build, script: x}
        a: {needs: [{job: skipped, optional: true}, kept], script: x}
        ",
        r#"
        kept: stage="build" script=["x"]
        a: stage="test" script=["x"] needs=["kept"]
        "#,
    );
}

#[test]
fn needs_that_name_no_job_of_the_pipeline() {
    check(
        "
        skipped: {when: never, script: x}
        .hidden: {script: x}
        build: {script: x}
        a: {needs: [skipped, .hidden, biuld], script: x}
        ",
        "
        line 4, column 13: a.needs: `needs` names `skipped`, which has `when: never` and so is not in the pipeline; add `optional: true` to need it only when it runs
        line 4, column 22: a.needs: `needs` names `.hidden`, a hidden job, which never runs
        line 4, column 31: a.needs: `needs` names `biuld`, which is not a job of this pipeline; did you mean `build`?
        ",
    );
    check(
        "a: {needs: [{job: b, project: x}], script: x}",
        "line 1, column 22: a.needs.project: `project` is not supported yet",
    );
    check(
        "a: {needs: build, script: x}",
        "line 1, column 12: a.needs: `needs` must be a list of job names, not a string",
    );
}

#[test]
fn parallel_limits() {
    check(
        "t: {parallel: 201, script: x}",
        "line 1, column 15: t.parallel: `parallel` must be between 1 and 200",
    );
    check(
        "t: {parallel: 0, script: x}",
        "line 1, column 15: t.parallel: `parallel` must be between 1 and 200",
    );
    check(
        "
        t:
          parallel:
            matrix:
              - {A: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], B: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}
              - {A: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], B: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]}
          script: x
        ",
        "line 4, column 7: t.parallel.matrix: `matrix` makes 210 jobs; the most is 200",
    );
    check(
        "
        t:
          parallel:
            matrix:
              - {A: [], B: x}
          script: x
        ",
        "line 4, column 13: t.parallel.matrix.A: `A` has no values",
    );
    check(
        "
        t:
          parallel:
            matrix:
              - {not-a-name: x}
          script: x
        ",
        "line 4, column 10: t.parallel.matrix.not-a-name: `not-a-name` is not a variable name",
    );
}
