//! `artifacts`, `dependencies`, `needs: {artifacts}` and `cache`: the shapes each takes, what
//! `default` gives, and the problems each reports at its place.

use super::check;

#[test]
fn artifacts_take_gitlabs_shape_and_default_fills_them() {
    check(
        "
        default:
          artifacts: {paths: [out/], expire_in: 1 week}
        build:
          stage: build
          script: make
        test:
          script: ./out/app
          artifacts:
            paths: [report/, '**/*.log']
            exclude: [report/tmp/]
            name: test-report
            when: always
        ",
        r#"
        build: stage="build" script=["make"] artifacts={"exclude":[],"expire_in":"1 week","name":null,"paths":["out/"],"when":"on_success"}
        test: stage="test" script=["./out/app"] artifacts={"exclude":["report/tmp/"],"expire_in":null,"name":"test-report","paths":["report/","**/*.log"],"when":"always"}
        "#,
    );
}

#[test]
fn dependencies_and_needs_without_artifacts() {
    check(
        "
        stages: [build, test]
        build: {stage: build, script: b, parallel: 2}
        lint: {stage: build, script: l}
        test:
          script: t
          needs: [{job: build, artifacts: false}, lint]
        only-lint:
          script: t
          dependencies: [lint]
        nothing:
          script: t
          dependencies: []
        ",
        r#"
        build 1/2: stage="build" script=["b"] variables={"CI_NODE_INDEX":"1","CI_NODE_TOTAL":"2"}
        build 2/2: stage="build" script=["b"] variables={"CI_NODE_INDEX":"2","CI_NODE_TOTAL":"2"}
        lint: stage="build" script=["l"]
        test: stage="test" script=["t"] needs=[{"artifacts":false,"job":"build 1/2"},{"artifacts":false,"job":"build 2/2"},"lint"]
        only-lint: stage="test" script=["t"] dependencies=["lint"]
        nothing: stage="test" script=["t"] dependencies=[]
        "#,
    );
}

#[test]
fn caches_are_one_or_a_list_with_text_or_file_keys() {
    check(
        "
        a:
          script: x
          cache: {key: $CI_COMMIT_REF_NAME, paths: [target/]}
        b:
          script: x
          cache:
            - {key: {files: [Cargo.lock], prefix: deps}, paths: [target/], policy: pull}
            - {paths: [.npm/], when: always}
        ",
        r#"
        a: stage="test" script=["x"] cache={"key":"$CI_COMMIT_REF_NAME","paths":["target/"],"policy":"pull-push","when":"on_success"}
        b: stage="test" script=["x"] cache=[{"key":{"files":["Cargo.lock"],"prefix":"deps"},"paths":["target/"],"policy":"pull","when":"on_success"},{"key":"default","paths":[".npm/"],"policy":"pull-push","when":"always"}]
        "#,
    );
}

#[test]
fn problems_with_artifacts_and_caches_are_placed() {
    check(
        "a: {script: x, artifacts: {paths: [out], reports: {junit: r.xml}}}",
        "line 1, column 42: a.artifacts.reports: `reports` is not supported yet",
    );
    check(
        "a: {script: x, artifacts: [out]}",
        "line 1, column 27: a.artifacts: `artifacts` must be a mapping such as {paths: [out/]}, not a list",
    );
    check(
        "a: {script: x, artifacts: {paths: [../up]}}",
        "line 1, column 16: a.artifacts.paths: `artifacts.paths` `../up` leaves the build directory; paths are relative to it",
    );
    check(
        "a: {script: x, artifacts: {paths: [out], expire_in: soon}}",
        "line 1, column 16: a.artifacts.expire_in: `artifacts.expire_in` is not a duration: `soon` should start with a number",
    );
    check(
        "a: {script: x, cache: {key: {file: [x]}, paths: [t]}}",
        "line 1, column 30: a.cache.key.file: unknown key `file`; did you mean `files`?",
    );
    check(
        "a: {script: x, cache: {paths: [t], untracked: true}}",
        "line 1, column 36: a.cache.untracked: `untracked` is not supported yet",
    );
    check(
        "
        b: {script: x}
        a: {script: x, needs: [], dependencies: [b, c]}
        ",
        "line 2, column 45: a.dependencies: `dependencies` names `c`, which is not a job of this pipeline",
    );
    check(
        "
        b: {script: x}
        a: {script: x, needs: [], dependencies: [b]}
        ",
        "line 2, column 27: a.dependencies: `dependencies` names `b`, which this job does not wait for; list it in `needs` (or put it in an earlier stage)",
    );
}
