//! The one rule every name follows: jobs, stages, environments and tags in a definition, and
//! the `ref`, project, runner and runner-tag names the API takes.

use crate::definition::{Problem, limits};

/// Checks a name: not blank, at most [`limits::MAX_NAME_CHARS`] characters, no control
/// character (PostgreSQL text cannot hold a NUL) and no leading or trailing whitespace (`" main"`
/// and `"main"` would otherwise be two refs that look alike).
pub fn check_name(value: &str) -> Result<(), Problem> {
    if value.trim().is_empty() {
        return Err(Problem::Empty);
    }
    if value.chars().count() > limits::MAX_NAME_CHARS {
        return Err(Problem::TooLong {
            max: limits::MAX_NAME_CHARS,
        });
    }
    if value.chars().any(char::is_control) || value.trim() != value {
        return Err(Problem::BadCharacters {
            allowed: NAME_CHARACTERS,
        });
    }
    Ok(())
}

/// What [`Problem::BadCharacters`] says a name may hold.
const NAME_CHARACTERS: &str = "printable characters, without leading or trailing spaces";

#[cfg(test)]
mod tests {
    use super::*;

    fn check(value: &str, expected: Option<&Problem>) {
        assert_eq!(check_name(value).err().as_ref(), expected, "{value:?}");
    }

    #[test]
    fn names_are_printable_trimmed_and_at_most_255_characters() {
        let bad = Some(&Problem::BadCharacters {
            allowed: NAME_CHARACTERS,
        });
        let too_long = Some(&Problem::TooLong {
            max: limits::MAX_NAME_CHARS,
        });
        check("main", None);
        check("feature/caf\u{e9} \u{1f680}", None);
        check(&"\u{e9}".repeat(255), None);
        check(&"\u{e9}".repeat(256), too_long);
        check("", Some(&Problem::Empty));
        check("   ", Some(&Problem::Empty));
        check(" main", bad);
        check("main ", bad);
        check("main\n", bad);
        check("a\u{0}b", bad);
        check("a\tb", bad);
    }
}
