//! `extends`, GitLab's way: mappings merge deeply key by key, anything else (lists, scalars) is
//! replaced by the later value; bases merge in the order listed, then the job's own keys.

use crate::error::{Problems, Stop, did_you_mean, shown};
use crate::tree::{Entry, Node, Pos, Value, get, join};
use crate::work::Work;
use std::collections::HashMap;
use std::rc::Rc;

/// GitLab's limit: up to 11 levels of `extends`.
pub(crate) const MAX_EXTENDS_DEPTH: usize = 11;

/// Merges `over` into `base`: where both are mappings, key by key (deeply); otherwise `over`
/// replaces `base`. Every value keeps the place where it was written.
pub(crate) fn deep_merge(base: &mut Node, over: Node) {
    match (&mut base.value, over) {
        (
            Value::Map(into),
            Node {
                value: Value::Map(from),
                pos,
                ..
            },
        ) => {
            merge_entries(into, from);
            base.pos = pos;
        }
        (_, over) => *base = over,
    }
}

fn merge_entries(into: &mut Vec<Entry>, from: Vec<Entry>) {
    let mut index: HashMap<String, usize> = into
        .iter()
        .enumerate()
        .map(|(i, e)| (e.key.clone(), i))
        .collect();
    for entry in from {
        if let Some(&i) = index.get(&entry.key) {
            into[i].key_pos = entry.key_pos;
            deep_merge(&mut into[i].value, entry.value);
        } else {
            index.insert(entry.key.clone(), into.len());
            into.push(entry);
        }
    }
}

/// What resolving one top-level entry came to.
#[derive(Debug, Clone)]
enum Outcome {
    /// The merged mapping (without `extends`) and how many levels of `extends` it took.
    Done(Rc<Node>, usize),
    /// A problem was reported; whatever extends this fails too, silently.
    Failed,
    /// The chain being resolved is too deep; reported by its first entry, which is resolved
    /// again from a shallower start if it is reached otherwise.
    TooDeep,
}

/// Resolves `extends` for the top-level entries that `candidates` marks (jobs and hidden
/// jobs): each comes back as the merged mapping, or `None` if it is not a mapping or failed.
pub(crate) fn resolve_all(
    top: &[Entry],
    candidates: &[bool],
    work: &mut Work,
    problems: &mut Problems,
) -> Result<Vec<Option<Rc<Node>>>, Stop> {
    let mut resolver = Resolver {
        top,
        index: top
            .iter()
            .enumerate()
            .filter(|&(i, _)| candidates[i])
            .map(|(i, e)| (e.key.as_str(), i))
            .collect(),
        memo: vec![None; top.len()],
        stack: Vec::new(),
        work,
        problems,
    };
    let mut merged = Vec::with_capacity(top.len());
    for (i, entry) in top.iter().enumerate() {
        let wanted = candidates[i] && entry.value.as_map().is_some();
        merged.push(match wanted.then(|| resolver.resolve(i)).transpose()? {
            Some(Outcome::Done(node, _)) => Some(node),
            _ => None,
        });
    }
    Ok(merged)
}

struct Resolver<'a> {
    top: &'a [Entry],
    index: HashMap<&'a str, usize>,
    memo: Vec<Option<Outcome>>,
    stack: Vec<usize>,
    work: &'a mut Work,
    problems: &'a mut Problems,
}

impl Resolver<'_> {
    fn resolve(&mut self, i: usize) -> Result<Outcome, Stop> {
        if let Some(outcome) = &self.memo[i] {
            return Ok(outcome.clone());
        }
        if self.stack.len() > MAX_EXTENDS_DEPTH {
            return Ok(Outcome::TooDeep);
        }
        self.stack.push(i);
        let outcome = self.merge(i);
        self.stack.pop();
        let outcome = match outcome? {
            Outcome::TooDeep if self.stack.is_empty() => self.too_deep(i),
            // Not remembered: from a shallower start this entry may be fine.
            Outcome::TooDeep => return Ok(Outcome::TooDeep),
            outcome => outcome,
        };
        self.memo[i] = Some(outcome.clone());
        Ok(outcome)
    }

    /// The entry's bases merged in order, then its own keys.
    fn merge(&mut self, i: usize) -> Result<Outcome, Stop> {
        let node = &self.top[i].value;
        let Some(entries) = node.as_map() else {
            return Ok(Outcome::Failed);
        };
        let Some(extends) = get(entries, "extends") else {
            self.work.charge(node)?;
            return Ok(Outcome::Done(Rc::new(node.clone()), 0));
        };
        let Some(names) = self.base_names(i, &extends.value) else {
            return Ok(Outcome::Failed);
        };
        let mut merged = Node::new(Value::Map(Vec::new()), node.pos);
        let mut depth = 0;
        let mut failed = false;
        for (name, pos) in names {
            match self.base(i, &name, pos)? {
                Outcome::Done(base, base_depth) => {
                    self.work.charge(&base)?;
                    deep_merge(&mut merged, (*base).clone());
                    depth = depth.max(base_depth + 1);
                }
                Outcome::Failed => failed = true,
                Outcome::TooDeep => return Ok(Outcome::TooDeep),
            }
        }
        if failed {
            return Ok(Outcome::Failed);
        }
        if depth > MAX_EXTENDS_DEPTH {
            return Ok(self.too_deep(i));
        }
        let own: Vec<Entry> = entries
            .iter()
            .filter(|e| e.key != "extends")
            .cloned()
            .collect();
        let own = Node::new(Value::Map(own), node.pos);
        self.work.charge(&own)?;
        deep_merge(&mut merged, own);
        Ok(Outcome::Done(Rc::new(merged), depth))
    }

    /// The names in an `extends` value: one name or a list of names.
    fn base_names(&mut self, i: usize, value: &Node) -> Option<Vec<(String, Pos)>> {
        let field = join(&self.top[i].key, "extends");
        let items: Vec<&Node> = match &value.value {
            Value::Str(_) => vec![value],
            Value::Seq(items) => items.iter().collect(),
            _ => {
                self.problems.at(
                    value.pos,
                    &field,
                    format!(
                        "`extends` must be a name or a list of names, not {}",
                        value.kind()
                    ),
                );
                return None;
            }
        };
        let mut names = Vec::with_capacity(items.len());
        for item in items {
            let Some(name) = item.as_str() else {
                self.problems.at(
                    item.pos,
                    &field,
                    format!(
                        "each entry of `extends` must be a name, not {}",
                        item.kind()
                    ),
                );
                return None;
            };
            names.push((name.to_owned(), item.pos));
        }
        Some(names)
    }

    /// Resolves the base named `name` (written at `pos`) of entry `i`.
    fn base(&mut self, i: usize, name: &str, pos: Pos) -> Result<Outcome, Stop> {
        let field = join(&self.top[i].key, "extends");
        let Some(&base) = self.index.get(name) else {
            let hint = did_you_mean(name, self.index.keys().copied());
            self.problems.at(
                pos,
                &field,
                format!(
                    "`extends` names `{}`, which is not defined{hint}",
                    shown(name)
                ),
            );
            return Ok(Outcome::Failed);
        };
        if self.top[base].value.as_map().is_none() {
            self.problems.at(
                pos,
                &field,
                format!("`extends` names `{}`, which is not a mapping", shown(name)),
            );
            return Ok(Outcome::Failed);
        }
        if let Some(start) = self.stack.iter().position(|&s| s == base) {
            let mut chain: Vec<String> = self.stack[start..]
                .iter()
                .map(|&s| shown(&self.top[s].key))
                .collect();
            chain.push(shown(name));
            self.problems.at(
                pos,
                &field,
                format!("`extends` forms a cycle: {}", chain.join(" -> ")),
            );
            return Ok(Outcome::Failed);
        }
        self.resolve(base)
    }

    fn too_deep(&mut self, i: usize) -> Outcome {
        let message = format!("`extends` nests more than {MAX_EXTENDS_DEPTH} levels deep");
        self.fail(i, message)
    }

    fn fail(&mut self, i: usize, message: String) -> Outcome {
        let entry = &self.top[i];
        let at = entry
            .value
            .as_map()
            .and_then(|entries| get(entries, "extends"))
            .map_or(entry.key_pos, |e| e.key_pos);
        self.problems.at(at, &join(&entry.key, "extends"), message);
        Outcome::Failed
    }
}
