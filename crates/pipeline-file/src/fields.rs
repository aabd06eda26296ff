//! Readers of the simple shapes (a string, a boolean, a list of names, a script), each
//! reporting a value of the wrong shape where it was written.

use crate::error::{Problems, shown};
use crate::tree::{Node, Pos, Value};

/// GitLab flattens nested script lists (from anchors) up to this depth.
const MAX_SCRIPT_NESTING: usize = 10;

/// The key a dotted path ends with, for messages (`build.script` -> `script`).
pub(crate) fn key_of(field: &str) -> &str {
    field.rsplit('.').next().unwrap_or(field)
}

pub(crate) fn string(node: &Node, field: &str, problems: &mut Problems) -> Option<String> {
    if let Some(s) = node.as_str() {
        return Some(s.to_owned());
    }
    problems.at(
        node.pos,
        field,
        format!("`{}` must be a string, not {}", key_of(field), node.kind()),
    );
    None
}

pub(crate) fn boolean(node: &Node, field: &str, problems: &mut Problems) -> Option<bool> {
    if let Value::Bool(b) = node.value {
        return Some(b);
    }
    problems.at(
        node.pos,
        field,
        format!(
            "`{}` must be true or false, not {}",
            key_of(field),
            node.kind()
        ),
    );
    None
}

/// A list of names (`tags`, `stages`), each with where it was written.
pub(crate) fn names(
    node: &Node,
    field: &str,
    problems: &mut Problems,
) -> Option<Vec<(String, Pos)>> {
    let Value::Seq(items) = &node.value else {
        problems.at(
            node.pos,
            field,
            format!(
                "`{}` must be a list of names, not {}",
                key_of(field),
                node.kind()
            ),
        );
        return None;
    };
    let mut names = Vec::with_capacity(items.len());
    let mut clean = true;
    for item in items {
        if let Some(name) = item.as_str() {
            names.push((name.to_owned(), item.pos));
        } else {
            clean = false;
            problems.at(
                item.pos,
                field,
                format!(
                    "each entry of `{}` must be a string, not {}",
                    key_of(field),
                    item.kind()
                ),
            );
        }
    }
    clean.then_some(names)
}

/// A script: one line, or a list of lines, where lists nested by anchors are flattened.
pub(crate) fn script(node: &Node, field: &str, problems: &mut Problems) -> Option<Vec<String>> {
    if let Some(line) = node.as_str() {
        return Some(vec![line.to_owned()]);
    }
    if !matches!(node.value, Value::Seq(_)) {
        problems.at(
            node.pos,
            field,
            format!(
                "`{}` must be a string or a list of strings, not {}",
                key_of(field),
                node.kind()
            ),
        );
        return None;
    }
    let mut lines = Vec::new();
    flatten(node, 1, field, &mut lines, problems).then_some(lines)
}

fn flatten(
    node: &Node,
    depth: usize,
    field: &str,
    lines: &mut Vec<String>,
    problems: &mut Problems,
) -> bool {
    let Value::Seq(items) = &node.value else {
        return false;
    };
    if depth > MAX_SCRIPT_NESTING {
        problems.at(
            node.pos,
            field,
            format!(
                "`{}` nests lists more than {MAX_SCRIPT_NESTING} deep",
                key_of(field)
            ),
        );
        return false;
    }
    let mut clean = true;
    for item in items {
        match &item.value {
            Value::Str(line) => lines.push(line.clone()),
            Value::Seq(_) => clean &= flatten(item, depth + 1, field, lines, problems),
            Value::Map(entries) => {
                clean = false;
                // `- echo a: b` is a mapping to YAML; the fix is quoting the line.
                let key = entries.first().map_or(String::new(), |e| shown(&e.key));
                problems.at(
                    item.pos,
                    field,
                    format!(
                        "a line of `{}` is a mapping (`{key}: …`); quote a line that contains `: `",
                        key_of(field)
                    ),
                );
            }
            _ => {
                clean = false;
                problems.at(
                    item.pos,
                    field,
                    format!(
                        "a line of `{}` must be a string, not {}; quote it",
                        key_of(field),
                        item.kind()
                    ),
                );
            }
        }
    }
    clean
}
