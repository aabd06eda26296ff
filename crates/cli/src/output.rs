//! Writing to stdout and stderr through locked handles. Never `println!`: it panics when the
//! reader of a pipe goes away, where we want an error `main` can end on quietly.

use serde::Serialize;
use std::fmt::Display;
use std::io::{self, Write};

/// One line on stdout.
pub(crate) fn line(text: impl Display) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}

/// Lines on stdout.
pub(crate) fn lines<T: Display>(texts: &[T]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    for text in texts {
        writeln!(out, "{text}")?;
    }
    out.flush()
}

/// One line on stderr: notes for people that must stay out of stdout (under `--json`, or
/// beside a log).
pub(crate) fn note(text: impl Display) -> io::Result<()> {
    let mut err = io::stderr().lock();
    writeln!(err, "{text}")
}

/// A JSON value on stdout, pretty-printed, then a newline.
pub(crate) fn json(value: &impl Serialize) -> io::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()
}
