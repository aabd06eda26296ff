//! `parallel`: one job run N times (`parallel: 3` -> `test 1/3` … `test 3/3`), or once per
//! combination of values (`parallel: {matrix: [{PROVIDER: aws, STACK: [a, b]}]}` ->
//! `test: [aws, a]`, `test: [aws, b]`), GitLab's names and variables.

use crate::error::{Problems, shown};
use crate::tree::{Node, Value, get, join};
use lockstep_domain::is_variable_name;

/// GitLab's limit: one job expands to at most 200.
pub(crate) const MAX_INSTANCES: usize = 200;

/// One job of an expansion: its name and the variables it adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Instance {
    pub(crate) name: String,
    pub(crate) variables: Vec<(String, String)>,
}

/// The jobs `parallel` makes of the job `job`.
pub(crate) fn expand(
    job: &str,
    node: &Node,
    field: &str,
    problems: &mut Problems,
) -> Option<Vec<Instance>> {
    match &node.value {
        Value::Int(n) => numbered(job, *n, node, field, problems),
        Value::Map(entries) => {
            if !crate::keys::check(entries, MATRIX_KEYS, field, problems) {
                return None;
            }
            let Some(matrix) = get(entries, "matrix") else {
                problems.at(node.pos, field, "`parallel` as a mapping needs a `matrix`");
                return None;
            };
            let combinations = combinations(&matrix.value, &join(field, "matrix"), problems)?;
            Some(with_node_variables(job, combinations))
        }
        _ => {
            problems.at(
                node.pos,
                field,
                format!(
                    "`parallel` must be a number or {{matrix}}, not {}",
                    node.kind()
                ),
            );
            None
        }
    }
}

const MATRIX_KEYS: crate::keys::Keys = crate::keys::Keys {
    allowed: &["matrix"],
    refused: &[],
};

fn numbered(
    job: &str,
    n: i128,
    node: &Node,
    field: &str,
    problems: &mut Problems,
) -> Option<Vec<Instance>> {
    let total = usize::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_INSTANCES).contains(n));
    let Some(total) = total else {
        problems.at(
            node.pos,
            field,
            format!("`parallel` must be between 1 and {MAX_INSTANCES}"),
        );
        return None;
    };
    Some(
        (1..=total)
            .map(|index| Instance {
                name: format!("{job} {index}/{total}"),
                variables: node_variables(index, total),
            })
            .collect(),
    )
}

/// Every combination of the matrix's values, entry by entry, each as the variables it sets in
/// the order written (the first variable varies slowest, as in GitLab).
fn combinations(
    node: &Node,
    field: &str,
    problems: &mut Problems,
) -> Option<Vec<Vec<(String, String)>>> {
    let Value::Seq(rows) = &node.value else {
        problems.at(
            node.pos,
            field,
            format!("`matrix` must be a list of mappings, not {}", node.kind()),
        );
        return None;
    };
    let mut axes_per_row = Vec::with_capacity(rows.len());
    for row in rows {
        axes_per_row.push(axes(row, field, problems)?);
    }
    let total = axes_per_row.iter().try_fold(0usize, |sum, axes| {
        let product = axes
            .iter()
            .try_fold(1usize, |p, (_, values)| p.checked_mul(values.len()))?;
        sum.checked_add(product)
    });
    match total {
        Some(total) if total <= MAX_INSTANCES => {}
        Some(total) => {
            problems.at(
                node.pos,
                field,
                format!("`matrix` makes {total} jobs; the most is {MAX_INSTANCES}"),
            );
            return None;
        }
        None => {
            problems.at(
                node.pos,
                field,
                format!("`matrix` makes more than {MAX_INSTANCES} jobs"),
            );
            return None;
        }
    }
    Some(axes_per_row.iter().flat_map(|axes| product(axes)).collect())
}

type Axis = (String, Vec<String>);

/// One matrix entry: each variable and its values.
fn axes(row: &Node, field: &str, problems: &mut Problems) -> Option<Vec<Axis>> {
    let Some(entries) = row.as_map().filter(|e| !e.is_empty()) else {
        problems.at(
            row.pos,
            field,
            "each entry of `matrix` must be a mapping of variables to values",
        );
        return None;
    };
    let mut axes = Vec::with_capacity(entries.len());
    for entry in entries {
        let here = join(field, &entry.key);
        if !is_variable_name(&entry.key) {
            problems.at(
                entry.key_pos,
                &here,
                format!("`{}` is not a variable name", shown(&entry.key)),
            );
            return None;
        }
        let items: Vec<&Node> = match &entry.value.value {
            Value::Seq(items) => items.iter().collect(),
            _ => vec![&entry.value],
        };
        let mut values = Vec::with_capacity(items.len());
        for item in items {
            let Some(text) = item.scalar_text() else {
                problems.at(
                    item.pos,
                    &here,
                    format!(
                        "a matrix value must be a string or a number, not {}",
                        item.kind()
                    ),
                );
                return None;
            };
            values.push(text);
        }
        if values.is_empty() {
            problems.at(
                entry.value.pos,
                &here,
                format!("`{}` has no values", shown(&entry.key)),
            );
            return None;
        }
        axes.push((entry.key.clone(), values));
    }
    Some(axes)
}

/// The cartesian product of the axes, the last one varying fastest.
fn product(axes: &[Axis]) -> Vec<Vec<(String, String)>> {
    let mut rows: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for (name, values) in axes {
        rows = rows
            .into_iter()
            .flat_map(|row| {
                values.iter().map(move |value| {
                    let mut row = row.clone();
                    row.push((name.clone(), value.clone()));
                    row
                })
            })
            .collect();
    }
    rows
}

fn with_node_variables(job: &str, combinations: Vec<Vec<(String, String)>>) -> Vec<Instance> {
    let total = combinations.len();
    combinations
        .into_iter()
        .enumerate()
        .map(|(i, mut variables)| {
            let values: Vec<&str> = variables.iter().map(|(_, v)| v.as_str()).collect();
            let name = format!("{job}: [{}]", values.join(", "));
            variables.extend(node_variables(i + 1, total));
            Instance { name, variables }
        })
        .collect()
}

/// GitLab's variables for the instance `index` (from 1) of `total`.
fn node_variables(index: usize, total: usize) -> Vec<(String, String)> {
    vec![
        ("CI_NODE_INDEX".to_owned(), index.to_string()),
        ("CI_NODE_TOTAL".to_owned(), total.to_string()),
    ]
}
