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

#[cfg(test)]
mod tests {
    use super::*;

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
