//! A job's user variables: the names a shell can export, and bounded values.

use crate::definition::{Problem, limits};
use std::collections::BTreeMap;

/// What a variable name may be: a name a POSIX shell can export.
pub(crate) const NAME_RULE: &str = "a letter or '_', then letters, digits or '_' (at most 255)";

/// Whether `name` can be exported by a shell.
pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= limits::MAX_NAME_CHARS
}

/// Checks every name and value, and the limits on the whole.
pub(crate) fn check(variables: &BTreeMap<String, String>) -> Result<(), Problem> {
    if variables.len() > limits::MAX_VARIABLES {
        return Err(Problem::TooMany {
            max: limits::MAX_VARIABLES,
        });
    }
    let mut total = 0;
    for (name, value) in variables {
        if !is_variable_name(name) {
            return Err(Problem::BadCharacters { allowed: NAME_RULE });
        }
        if value.len() > limits::MAX_VARIABLE_BYTES {
            return Err(Problem::TooLong {
                max: limits::MAX_VARIABLE_BYTES,
            });
        }
        if value.contains('\0') {
            return Err(Problem::BadCharacters {
                allowed: "text without NUL bytes",
            });
        }
        total += name.len() + value.len();
    }
    if total > limits::MAX_VARIABLES_BYTES {
        return Err(Problem::TooLong {
            max: limits::MAX_VARIABLES_BYTES,
        });
    }
    Ok(())
}

/// Expands `$NAME` and `${NAME}` in each of `own`'s values with the value `NAME` has in
/// `all` (the job's variables with the server's `CI_*` ones), as GitLab expands a variable
/// that names another: `IMAGE: $REGISTRY/app`. One pass, so a value that names itself or
/// makes a loop cannot grow without end; a name `all` lacks stays as written; `$$` is a `$`.
pub fn expand_variables(
    own: &BTreeMap<String, String>,
    all: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    own.iter()
        .map(|(name, value)| (name.clone(), expand(value, all)))
        .collect()
}

fn expand(value: &str, all: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, consumed) = reference(after);
        match name {
            Some(name) if all.contains_key(name) => out.push_str(&all[name]),
            _ if after.starts_with('$') => out.push('$'),
            _ => out.push_str(&rest[at..=at + consumed]),
        }
        rest = &after[consumed.max(usize::from(after.starts_with('$')))..];
    }
    out.push_str(rest);
    out
}

/// The name a `$` starts (`NAME` or `{NAME}`) and how many bytes after the `$` it takes.
fn reference(after: &str) -> (Option<&str>, usize) {
    let name_len = |text: &str| {
        text.char_indices()
            .find(|&(i, c)| {
                !(c.is_ascii_alphanumeric() || c == '_') || (i == 0 && c.is_ascii_digit())
            })
            .map_or(text.len(), |(i, _)| i)
    };
    if let Some(braced) = after.strip_prefix('{') {
        let len = name_len(braced);
        if len > 0 && braced[len..].starts_with('}') {
            return (Some(&braced[..len]), len + 2);
        }
        return (None, 0);
    }
    let len = name_len(after);
    ((len > 0).then(|| &after[..len]), len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_naming_others_are_expanded_once() {
        let all = BTreeMap::from([
            ("REGISTRY".to_owned(), "registry.example.com".to_owned()),
            ("CI_COMMIT_REF_NAME".to_owned(), "main".to_owned()),
            ("SELF".to_owned(), "$SELF-x".to_owned()),
        ]);
        let table = [
            ("$REGISTRY/app", "registry.example.com/app"),
            (
                "${REGISTRY}:${CI_COMMIT_REF_NAME}",
                "registry.example.com:main",
            ),
            ("$UNKNOWN/${ALSO_UNKNOWN}", "$UNKNOWN/${ALSO_UNKNOWN}"),
            ("price $$5 and $$REGISTRY", "price $5 and $REGISTRY"),
            ("$SELF", "$SELF-x"),
            ("trailing $", "trailing $"),
            ("$1 ${ unclosed", "$1 ${ unclosed"),
            ("plain", "plain"),
            ("ünï $REGISTRY€", "ünï registry.example.com€"),
        ];
        for (written, expanded) in table {
            let own = BTreeMap::from([("V".to_owned(), written.to_owned())]);
            assert_eq!(expand_variables(&own, &all)["V"], expanded, "{written}");
        }
    }

    fn one(name: &str, value: &str) -> Result<(), Problem> {
        check(&BTreeMap::from([(name.to_owned(), value.to_owned())]))
    }

    #[test]
    fn names_values_and_totals() {
        let bad_name = Err(Problem::BadCharacters { allowed: NAME_RULE });
        assert_eq!(one("RUST_LOG", "debug"), Ok(()));
        assert_eq!(one("_x1", ""), Ok(()));
        assert_eq!(one("1X", "v"), bad_name);
        assert_eq!(one("A-B", "v"), bad_name);
        assert_eq!(one("", "v"), bad_name);
        assert_eq!(one(&"N".repeat(256), "v"), bad_name);
        assert_eq!(
            one("A", &"v".repeat(limits::MAX_VARIABLE_BYTES + 1)),
            Err(Problem::TooLong {
                max: limits::MAX_VARIABLE_BYTES
            })
        );
        assert!(one("A", "nul\0").is_err());
        let many: BTreeMap<String, String> = (0..=limits::MAX_VARIABLES)
            .map(|i| (format!("V{i}"), String::new()))
            .collect();
        assert_eq!(
            check(&many),
            Err(Problem::TooMany {
                max: limits::MAX_VARIABLES
            })
        );
        let big: BTreeMap<String, String> = (0..10)
            .map(|i| (format!("V{i}"), "v".repeat(limits::MAX_VARIABLE_BYTES)))
            .collect();
        assert_eq!(
            check(&big),
            Err(Problem::TooLong {
                max: limits::MAX_VARIABLES_BYTES
            })
        );
    }
}
