//! `variables`: a mapping of names to values, in GitLab's short (`NAME: value`) and long
//! (`NAME: {value, description}`) forms.

use crate::error::{Problems, shown};
use crate::keys;
use crate::tree::{Node, Pos, Value, get, join};
use lockstep_domain::is_variable_name;

/// One variable as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Variable {
    pub(crate) name: String,
    pub(crate) value: String,
    pub(crate) pos: Pos,
}

/// Reads a `variables` mapping; `None` when any entry is wrong (each one reported).
pub(crate) fn read(node: &Node, field: &str, problems: &mut Problems) -> Option<Vec<Variable>> {
    let Some(entries) = node.as_map() else {
        problems.at(
            node.pos,
            field,
            format!(
                "`variables` must be a mapping of names to values, not {}",
                node.kind()
            ),
        );
        return None;
    };
    let mut variables = Vec::with_capacity(entries.len());
    let mut clean = true;
    for entry in entries {
        let here = join(field, &entry.key);
        if !is_variable_name(&entry.key) {
            clean = false;
            problems.at(
                entry.key_pos,
                &here,
                format!(
                    "`{}` is not a variable name: a letter or '_', then letters, digits or '_' (at most 255)",
                    shown(&entry.key)
                ),
            );
            continue;
        }
        match value(&entry.value, &here, problems) {
            Some(value) => variables.push(Variable {
                name: entry.key.clone(),
                value,
                pos: entry.key_pos,
            }),
            None => clean = false,
        }
    }
    clean.then_some(variables)
}

/// A variable's value: a scalar as written, or the `value` of the long form.
fn value(node: &Node, field: &str, problems: &mut Problems) -> Option<String> {
    if let Some(text) = node.scalar_text() {
        return Some(text);
    }
    let Value::Map(entries) = &node.value else {
        problems.at(
            node.pos,
            field,
            format!(
                "a variable must be a string, a number, a boolean or {{value, description}}, not {}",
                node.kind()
            ),
        );
        return None;
    };
    let keys_ok = keys::check(entries, keys::VARIABLE, field, problems);
    if let Some(description) = get(entries, "description")
        && description.value.as_str().is_none()
    {
        problems.at(
            description.value.pos,
            &join(field, "description"),
            "`description` must be a string",
        );
        return None;
    }
    let Some(entry) = get(entries, "value") else {
        problems.at(
            node.pos,
            field,
            "a variable written as a mapping needs a `value`",
        );
        return None;
    };
    let text = entry.value.scalar_text();
    if text.is_none() {
        problems.at(
            entry.value.pos,
            &join(field, "value"),
            format!(
                "`value` must be a string, a number or a boolean, not {}",
                entry.value.kind()
            ),
        );
    }
    text.filter(|_| keys_ok)
}
