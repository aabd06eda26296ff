//! The problems a pipeline file can have, each placed where it was written.

use crate::tree::Pos;
use std::fmt;

/// One problem: `field` is the dotted path of keys from the top (`build.script`,
/// `test.retry.max`, `default.tags`, `stages`, `.template.extends`), `line`/`column` 1-based
/// where known.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileError {
    pub message: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub field: Option<String>,
}

impl FileError {
    pub(crate) fn at(pos: Pos, field: Option<String>, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            line: pos.line(),
            column: pos.column(),
            field,
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "line {line}, column {column}: ")?,
            (Some(line), None) => write!(f, "line {line}: ")?,
            _ => {}
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for FileError {}

/// The most problems reported for one file: past this, more would bury the first ones.
const MAX_PROBLEMS: usize = 100;

/// The work was cut short (a limit was reached); the reason is already in the [`Problems`].
#[derive(Debug)]
pub(crate) struct Stop;

/// Every problem found so far. Readers report here and go on, so that one run shows them all.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    list: Vec<FileError>,
    dropped: usize,
}

impl Problems {
    /// Records a problem at `pos`, in the value at the dotted path `field`.
    pub(crate) fn at(&mut self, pos: Pos, field: &str, message: impl Into<String>) {
        self.push(FileError::at(pos, Some(field.to_owned()), message));
    }

    pub(crate) fn push(&mut self, error: FileError) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(error);
        } else {
            self.dropped += 1;
        }
    }

    /// Records a problem that ends the reading, and returns the [`Stop`] to propagate.
    pub(crate) fn stop(&mut self, pos: Pos, field: Option<&str>, message: String) -> Stop {
        self.push(FileError::at(pos, field.map(str::to_owned), message));
        Stop
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// How many problems were reported, shown or not: readers compare it before and after.
    pub(crate) fn count(&self) -> usize {
        self.list.len() + self.dropped
    }

    /// The problems in file order, without repeats (a template's mistake is found again in
    /// every job that extends it).
    pub(crate) fn into_sorted(self) -> Vec<FileError> {
        let mut list = self.list;
        list.sort_by_key(|e| (e.line.is_none(), e.line, e.column));
        let mut seen = std::collections::HashSet::new();
        list.retain(|e| seen.insert((e.line, e.column, e.message.clone())));
        if self.dropped > 0 {
            list.push(FileError::at(
                Pos::UNKNOWN,
                None,
                format!(
                    "{} more problems are not shown; fix these first",
                    self.dropped
                ),
            ));
        }
        list
    }
}

/// Text as it appears in a message: control characters escaped, so that a message stays on
/// one line whatever the file holds.
pub(crate) fn shown(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The closest of `candidates` to `word`, if it is at most two edits away: the likely intended
/// spelling of a typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    // Long words are never typos of our short keywords, and comparing them costs.
    if word.len() > 64 {
        return None;
    }
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(word, candidate), candidate))
        .filter(|&(distance, candidate)| {
            distance <= 2 && distance < word.chars().count().max(1) && candidate != word
        })
        // Ties go to the first in alphabetical order, so the hint never depends on hashing.
        .min_by_key(|&(distance, candidate)| (distance, candidate))
        .map(|(_, candidate)| candidate)
}

/// " (did you mean `x`?)" when there is a close spelling, else nothing.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    closest(word, candidates).map_or_else(String::new, |c| format!("; did you mean `{c}`?"))
}

/// Levenshtein distance, counting characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let replaced = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = replaced.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_spellings_are_suggested() {
        let keys = ["script", "stage", "tags", "variables"];
        for (word, expected) in [
            ("scirpt", Some("script")),
            ("stages", Some("stage")),
            ("tag", Some("tags")),
            ("varaibles", Some("variables")),
            ("xyz", None),
            ("s", None),
            ("deploy_everything", None),
        ] {
            assert_eq!(closest(word, keys), expected, "{word}");
        }
    }

    #[test]
    fn display_puts_the_place_first() {
        let error = FileError {
            message: "unknown key `scirpt`".into(),
            line: Some(3),
            column: Some(5),
            field: Some("build.scirpt".into()),
        };
        assert_eq!(
            error.to_string(),
            "line 3, column 5: build.scirpt: unknown key `scirpt`"
        );
        let bare = FileError::at(Pos::UNKNOWN, None, "the file defines no jobs");
        assert_eq!(bare.to_string(), "the file defines no jobs");
    }
}
