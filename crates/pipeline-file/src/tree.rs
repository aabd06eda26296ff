//! The document as a tree of plain values, each carrying the line and column where it was
//! written: what every reader after the YAML parser works on.

/// Where a value was written: 1-based line and column, 0 when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    line: u32,
    column: u32,
}

impl Pos {
    pub(crate) const UNKNOWN: Self = Self { line: 0, column: 0 };

    pub(crate) fn of(location: serde_saphyr::Location) -> Self {
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        Self {
            line: clamp(location.line()),
            column: clamp(location.column()),
        }
    }

    pub(crate) fn line(self) -> Option<u32> {
        (self.line > 0).then_some(self.line)
    }

    pub(crate) fn column(self) -> Option<u32> {
        (self.column > 0).then_some(self.column)
    }
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) value: Value,
    pub(crate) pos: Pos,
    /// For numbers and booleans: the scalar as written (`1.10`, `0x1F`, `True`), because a
    /// variable's value is that text, not what YAML makes of it.
    pub(crate) text: Option<String>,
    /// Where the scalar's text starts and how long it is, in bytes of the source.
    pub(crate) span: Option<(usize, usize)>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A key of a mapping and its value. Keys are strings; any other key is reported when the
/// file is read (and kept here under its written text).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) key_pos: Pos,
    pub(crate) value: Node,
    /// A key that is not a string, kept for `yaml::check_keys` to report.
    pub(crate) key_node: Option<Box<Node>>,
}

impl Node {
    pub(crate) fn new(value: Value, pos: Pos) -> Self {
        Self {
            value,
            pos,
            text: None,
            span: None,
        }
    }

    pub(crate) fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// A scalar as a variable's value: a string as it is, a number or boolean as written.
    pub(crate) fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Bool(b) => Some(self.text.clone().unwrap_or_else(|| b.to_string())),
            Value::Int(i) => Some(self.text.clone().unwrap_or_else(|| i.to_string())),
            Value::Float(x) => Some(self.text.clone().unwrap_or_else(|| x.to_string())),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// What kind of value this is, for messages ("a list", "a number").
    pub(crate) fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "empty",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// How much this subtree costs to copy: its nodes and its bytes of text.
    pub(crate) fn weight(&self) -> (usize, usize) {
        match &self.value {
            Value::Str(s) => (1, s.len()),
            Value::Seq(items) => items
                .iter()
                .fold((1, 0), |acc, item| add(acc, item.weight())),
            Value::Map(entries) => entries.iter().fold((1, 0), |acc, entry| {
                add(add(acc, entry.value.weight()), (1, entry.key.len()))
            }),
            Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => (1, 0),
        }
    }

    /// The node at a path of keys and list indexes below this one, if there is one.
    pub(crate) fn find(&self, path: &[PathStep]) -> Option<&Node> {
        let Some((first, rest)) = path.split_first() else {
            return Some(self);
        };
        match (&self.value, first) {
            (Value::Map(entries), PathStep::Key(key)) => {
                get(entries, key).and_then(|entry| entry.value.find(rest))
            }
            (Value::Seq(items), PathStep::Index(i)) => items.get(*i)?.find(rest),
            _ => None,
        }
    }

    /// The plain JSON value, for the domain's own deserializers and for the schema.
    pub(crate) fn to_json(&self) -> Result<serde_json::Value, (Pos, String)> {
        use serde_json::Value as J;
        Ok(match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => i64::try_from(*i)
                .map(J::from)
                .or_else(|_| u64::try_from(*i).map(J::from))
                .map_err(|_| (self.pos, format!("the number {i} is too large")))?,
            Value::Float(x) => serde_json::Number::from_f64(*x)
                .map(J::Number)
                .ok_or_else(|| (self.pos, "a number must be finite".to_owned()))?,
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => {
                J::Array(items.iter().map(Node::to_json).collect::<Result<_, _>>()?)
            }
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| Ok((e.key.clone(), e.value.to_json()?)))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

fn add(a: (usize, usize), b: (usize, usize)) -> (usize, usize) {
    (a.0.saturating_add(b.0), a.1.saturating_add(b.1))
}

impl Entry {
    pub(crate) fn new(key: String, key_pos: Pos, value: Node) -> Self {
        Self {
            key,
            key_pos,
            value,
            key_node: None,
        }
    }
}

/// One step of a path into a value, as serde_path_to_error names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathStep {
    Key(String),
    Index(usize),
}

/// The entry for `key` in a mapping.
pub(crate) fn get<'a>(entries: &'a [Entry], key: &str) -> Option<&'a Entry> {
    entries.iter().find(|e| e.key == key)
}

/// `a.b` from a path and a key; the top level has an empty path.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}
