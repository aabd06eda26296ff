//! `docs/pipeline-file.schema.json` stays in step with the parser, and every example under
//! `examples/` validates against it and lints clean.

use crate::keys::{DEFAULT_KEYS, JOB_KEYS, REFUSED_JOB_KEYS, REFUSED_TOP_KEYS, TOP_KEYS};
use crate::{lint, yaml};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;

const SCHEMA: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/pipeline-file.schema.json"
));

fn schema() -> Value {
    serde_json::from_str(SCHEMA).expect("the schema is JSON")
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&schema()).expect("the schema is a valid JSON Schema")
}

fn keys_of(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .expect("an object of properties")
        .keys()
        .cloned()
        .collect()
}

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| (*k).to_owned()).collect()
}

#[test]
fn the_schema_lists_exactly_the_keys_the_parser_takes() {
    let schema = schema();
    assert_eq!(keys_of(&schema["properties"]), set(TOP_KEYS), "top level");
    assert_eq!(
        keys_of(&schema["properties"]["default"]["properties"]),
        set(DEFAULT_KEYS),
        "default"
    );
    assert_eq!(
        keys_of(&schema["$defs"]["job_template"]["properties"]),
        set(JOB_KEYS),
        "jobs"
    );
}

#[test]
fn the_schema_refuses_what_the_parser_refuses() {
    let validator = validator();
    for key in REFUSED_JOB_KEYS {
        let file = json!({"job": {"script": "x", *key: true}});
        assert!(!validator.is_valid(&file), "job key {key}");
    }
    for key in REFUSED_TOP_KEYS {
        let file = json!({"job": {"script": "x"}, *key: {}});
        assert!(!validator.is_valid(&file), "top-level key {key}");
    }
    for file in [
        json!({"job": {"scirpt": "x"}}),
        json!({"job": {"stage": "build"}}),
        json!({"job": {"script": "x", "when": "delayed"}}),
        json!({"job": {"script": "x", "timeout": "soon"}}),
        json!({"job": {"script": "x", "parallel": 201}}),
        json!({"job": {"script": "x", "variables": {"not-a-name": "x"}}}),
        json!({"default": {"image": "rust"}}),
    ] {
        assert!(!validator.is_valid(&file), "{file}");
    }
    assert!(
        validator
            .is_valid(&json!({"job": {"extends": ".t"}, ".t": {"script": "x"}, ".anchor": [1]}))
    );
}

/// The pipeline files under `examples/` (not the API bodies beside them).
fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/ exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yml" || ext == "yaml")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_validates_against_the_schema_and_lints_clean() {
    let validator = validator();
    let files = examples();
    assert!(files.len() >= 3, "{files:?}");
    for path in files {
        let source = std::fs::read_to_string(&path).expect("readable");
        let json = yaml::read(&source)
            .expect("the example is YAML")
            .to_json()
            .expect("the example is plain data");
        let errors: Vec<String> = validator
            .iter_errors(&json)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        if let Err(errors) = lint(&source) {
            panic!("{}: {errors:#?}", path.display());
        }
    }
}
