//! The rules for names inside an archive: what a safe entry name, symlink target and glob look like.

use crate::Refusal;

/// A path split into its parts with `.` and empty parts dropped and `..` applied lexically:
/// `ups` counts the `..` that climbed above the start.
pub(crate) struct Lexical<'a> {
    pub(crate) ups: usize,
    pub(crate) parts: Vec<&'a str>,
}

/// Applies `..` lexically, never asking the file system: on disk a `..` after a symlink climbs
/// from the link's target, which is exactly the trick this must not be fooled by, so callers
/// only ever use the lexical result.
pub(crate) fn lexical(path: &str) -> Lexical<'_> {
    let mut out = Lexical {
        ups: 0,
        parts: Vec::new(),
    };
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if out.parts.pop().is_some() => {}
            ".." => out.ups += 1,
            part => out.parts.push(part),
        }
    }
    out
}

/// Whether `path` is absolute here or on Windows (`/x`, `C:x`); a backslash is refused apart.
pub(crate) fn is_absolute(path: &str) -> bool {
    let bytes = path.as_bytes();
    path.starts_with('/')
        || (bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':')
}

/// The safe, normal form of an entry's name (`a/b`, no trailing slash), or the rule it breaks.
pub(crate) fn entry_path(name: &str) -> Result<String, Refusal> {
    // A backslash is a separator to Windows tools and a NUL ends the name for C ones: either
    // makes the name mean something else to someone, so neither is allowed at all.
    if name.contains(['\\', '\0']) {
        return Err(Refusal::BadCharacter);
    }
    if is_absolute(name) {
        return Err(Refusal::Absolute);
    }
    let path = lexical(name);
    if path.ups > 0 {
        return Err(Refusal::Escapes);
    }
    if path.parts.is_empty() {
        return Err(Refusal::Empty);
    }
    Ok(path.parts.join("/"))
}

/// The target to create for a symlink at `link` (a safe entry path), in normal form, or why it
/// is refused. The normal form has `..` only at its start, and the link's own directory is a real
/// directory (unpacking never writes through a symlink), so on disk the link resolves where this
/// says: inside the root. (Kept verbatim, `up/..` would climb from wherever `up` points.)
pub(crate) fn symlink_target(link: &str, target: &str) -> Result<String, Refusal> {
    let escapes = || Refusal::SymlinkEscapes(target.to_owned());
    if target.contains(['\\', '\0']) {
        return Err(Refusal::SymlinkTarget);
    }
    if is_absolute(target) {
        return Err(escapes());
    }
    let depth = link.matches('/').count();
    let path = lexical(target);
    if path.ups > depth {
        return Err(escapes());
    }
    let mut parts = vec![".."; path.ups];
    parts.extend(path.parts);
    Ok(if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    })
}

/// The ancestors of a normal path, outermost first: `a/b/c` gives `a`, `a/b`.
pub(crate) fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(|(at, _)| &path[..at])
}
