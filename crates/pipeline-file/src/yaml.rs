//! Reading YAML into the [`Node`] tree with serde-saphyr, which resolves anchors, aliases and
//! `<<` merge keys, rejects duplicate keys and enforces a budget on the work.

use crate::error::{FileError, Problems, shown};
use crate::tree::{Entry, Node, Pos, Value, join};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{MessageFormatter, Options, Spanned, UserMessageFormatter};
use std::fmt;

/// The largest file read at all (GitLab's limit for a CI file is 2 MB, too).
pub(crate) const MAX_FILE_BYTES: usize = 2 * 1024 * 1024;

/// Reads the source into a tree, or says why it cannot (bad YAML, a limit reached).
pub(crate) fn read(source: &str) -> Result<Node, FileError> {
    if source.len() > MAX_FILE_BYTES {
        return Err(FileError::at(
            Pos::UNKNOWN,
            None,
            format!(
                "the file is {} bytes; the most a pipeline file may have is {MAX_FILE_BYTES}",
                source.len()
            ),
        ));
    }
    let mut root = on_own_stack(|| {
        serde_saphyr::from_str_with_options::<Node>(source, options())
            .map_err(|error| yaml_error(&error))
    })?;
    fill_text(&mut root, source);
    Ok(root)
}

/// Room for the parser's recursion at the depth limit. serde-saphyr reads nested values by
/// recursion, and in a debug build one level takes up to 64 KiB of stack: at the limit of 64
/// levels that is more than the 2 MiB a test thread or a tokio worker has. Reserved, not used,
/// unless a document is that deep.
const PARSER_STACK_BYTES: usize = 16 * 1024 * 1024;

/// Runs `parse` on a thread of its own with [`PARSER_STACK_BYTES`] of stack.
fn on_own_stack(parse: impl FnOnce() -> Result<Node, FileError> + Send) -> Result<Node, FileError> {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("pipeline-file-parser".to_owned())
            .stack_size(PARSER_STACK_BYTES)
            .spawn_scoped(scope, parse);
        match thread {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(error) => Err(FileError::at(
                Pos::UNKNOWN,
                None,
                format!("could not start the YAML parser: {error}"),
            )),
        }
    })
}

/// Reports every key that is not a string (`1:`, `true:`, `~:`) as a problem.
pub(crate) fn check_keys(node: &Node, problems: &mut Problems, path: &str) {
    match &node.value {
        Value::Seq(items) => {
            for item in items {
                check_keys(item, problems, path);
            }
        }
        Value::Map(entries) => {
            for entry in entries {
                let here = join(path, &entry.key);
                if let Some(key) = &entry.key_node {
                    problems.at(
                        entry.key_pos,
                        &here,
                        format!(
                            "a key must be a string, and `{}` is {}; quote it",
                            shown(&entry.key),
                            key.kind()
                        ),
                    );
                }
                check_keys(&entry.value, problems, &here);
            }
        }
        _ => {}
    }
}

/// The parser's limits. Generous for a real pipeline (hundreds of jobs, long scripts), small
/// enough that a hostile file is refused in milliseconds.
fn options() -> Options {
    serde_saphyr::options! {
        with_snippet: false,
        // Only `true` and `false` are booleans, as in YAML 1.2: `on:` and `y:` stay keys.
        strict_booleans: true,
        // GitLab's `!reference [.job, script]` would otherwise read as a list of two lines.
        reject_unsupported_tags: true,
        budget: serde_saphyr::budget! {
            max_depth: 64,
            flow_nesting_limit: 64,
            max_nodes: 200_000,
            max_events: 1_000_000,
            max_total_scalar_bytes: 4 * 1024 * 1024,
            max_aliases: 10_000,
            max_anchors: 10_000,
            max_merge_keys: 10_000,
            max_documents: 1,
        },
        alias_limits: alias_limits(),
    }
}

/// Aliases replay what they name; a billion laughs replays without end.
fn alias_limits() -> serde_saphyr::options::AliasLimits {
    let mut limits = serde_saphyr::options::AliasLimits::default();
    limits.max_total_replayed_events = 200_000;
    limits
}

/// A YAML error as a problem: its message without the location (which goes in the fields).
fn yaml_error(error: &serde_saphyr::Error) -> FileError {
    let message = UserMessageFormatter.format_message(error);
    // Budget messages append the chain of aliases that led there; the first place is enough.
    let message = message.split(" at line ").next().unwrap_or_default();
    let message = if ["budget", "limit"]
        .iter()
        .any(|word| message.contains(word))
    {
        format!("the file is too large or too complex to read ({message})")
    } else if let Some(tag) = message.strip_prefix("unsupported tag ") {
        // GitLab's `!reference` above all: refused, never read as a plain list.
        format!("the YAML tag {tag} is not supported yet")
    } else {
        format!("invalid YAML: {message}")
    };
    let pos = error.location().map_or(Pos::UNKNOWN, Pos::of);
    FileError::at(pos, None, shown(&message))
}

/// Records the written text of every number and boolean, from the spans the parser gave.
fn fill_text(node: &mut Node, source: &str) {
    match &mut node.value {
        Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
            node.text = node
                .span
                .and_then(|(start, len)| source.get(start..start.checked_add(len)?))
                .map(str::to_owned);
        }
        Value::Seq(items) => items.iter_mut().for_each(|item| fill_text(item, source)),
        Value::Map(entries) => {
            for entry in entries {
                fill_text(&mut entry.value, source);
                if let Some(key) = &mut entry.key_node {
                    fill_text(key, source);
                    entry.key = key.scalar_text().unwrap_or_else(|| key.kind().to_owned());
                }
            }
        }
        Value::Null | Value::Str(_) => {}
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        // `defined` is where the value was written, also when it arrives through an alias or
        // a merge key: that is the line a user must edit.
        let span = spanned.defined.span();
        let span = span
            .byte_offset()
            .zip(span.byte_len())
            .and_then(|(start, len)| {
                Some((usize::try_from(start).ok()?, usize::try_from(len).ok()?))
            });
        Ok(Self {
            value: spanned.value,
            pos: Pos::of(spanned.defined),
            text: None,
            span,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        i128::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom("the number is too large"))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry::<Node, Node>()? {
            let key_pos = key.pos;
            entries.push(match key.value {
                Value::Str(key) => Entry::new(key, key_pos, value),
                // Kept for its text and reported by `check_keys`, so that reading goes on.
                _ => Entry {
                    key: String::new(),
                    key_pos,
                    value,
                    key_node: Some(Box::new(key)),
                },
            });
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top(source: &str) -> Vec<Entry> {
        match read(source).expect("reads").value {
            Value::Map(entries) => entries,
            other => panic!("not a mapping: {other:?}"),
        }
    }

    #[test]
    fn numbers_keep_their_written_text_and_aliases_point_at_the_anchor() {
        let entries = top("a: &x 1.10\nb: *x\nc: 0x1F\nd: true\n");
        let texts: Vec<_> = entries.iter().map(|e| e.value.scalar_text()).collect();
        let expected = ["1.10", "1.10", "0x1F", "true"].map(|s| Some(s.to_owned()));
        assert_eq!(texts, expected);
        assert_eq!(entries[1].value.pos, entries[0].value.pos);
        assert_eq!(
            (entries[2].key_pos.line(), entries[2].key_pos.column()),
            (Some(3), Some(1))
        );
    }

    #[test]
    fn keys_that_are_not_strings_are_problems() {
        let root = read("1: a\n\"2\": b\nyes: c\n").expect("reads");
        let mut problems = Problems::default();
        check_keys(&root, &mut problems, "");
        let errors = problems.into_sorted();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0].to_string(),
            "line 1, column 1: 1: a key must be a string, and `1` is a number; quote it"
        );
    }

    #[test]
    fn yaml_errors_have_a_place_and_no_location_suffix() {
        let error = read("a: [1,\n").expect_err("unclosed");
        assert_eq!(error.line, Some(1));
        assert!(error.message.starts_with("invalid YAML: "), "{error}");
        assert!(!error.message.contains("at line"), "{error}");
    }
}
