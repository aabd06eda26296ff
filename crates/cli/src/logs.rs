//! Reading a build's log by offset, as docs/api.md pages it: all of it, its tail, or live until
//! the build finishes, each byte exactly once.

use crate::client::{Client, ClientError};
use std::io::Write;
use std::time::Duration;

/// How many lines of a failed job's log the live view shows.
pub(crate) const TAIL_LINES: usize = 30;
/// How long `logs -f` waits before asking again when there is nothing new.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

/// How a copy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Copied {
    pub(crate) bytes: u64,
    /// The build finished and all of its log was written.
    pub(crate) complete: bool,
}

/// Writes build `build`'s log to `out`, from its first byte. Without `follow`, stops at the
/// end of what is there now; with it, waits for more until the log is complete.
pub(crate) fn copy(
    client: &Client,
    build: i64,
    out: &mut dyn Write,
    follow: bool,
) -> anyhow::Result<Copied> {
    let mut offset = 0;
    loop {
        let page = client.log_page(build, offset)?;
        out.write_all(&page.bytes)?;
        out.flush()?;
        // The server's offset, not ours plus the page: it is where the server will continue.
        offset = page.next_offset;
        if page.complete || (page.bytes.is_empty() && !follow) {
            return Ok(Copied {
                bytes: offset,
                complete: page.complete,
            });
        }
        if page.bytes.is_empty() {
            std::thread::sleep(FOLLOW_POLL);
        }
    }
}

/// The last `lines` lines of build `build`'s log. The whole log is read (the API has no
/// offset from the end) but only the tail is kept.
pub(crate) fn tail(client: &Client, build: i64, lines: usize) -> Result<Vec<u8>, ClientError> {
    let mut kept = Vec::new();
    let mut offset = 0;
    loop {
        let page = client.log_page(build, offset)?;
        kept.extend_from_slice(&page.bytes);
        keep_last_lines(&mut kept, lines);
        offset = page.next_offset;
        if page.complete || page.bytes.is_empty() {
            return Ok(kept);
        }
    }
}

/// Drops all but the last `lines` lines of `buffer` (a last line without its newline counts).
pub(crate) fn keep_last_lines(buffer: &mut Vec<u8>, lines: usize) {
    if lines == 0 {
        buffer.clear();
        return;
    }
    // Skip a final newline: it ends the last line rather than starting another.
    let body = buffer.strip_suffix(b"\n").unwrap_or(buffer);
    let start = body
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, byte)| **byte == b'\n')
        .nth(lines - 1)
        .map(|(at, _)| at + 1);
    if let Some(start) = start {
        buffer.drain(..start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    fn tail_of(text: &str, lines: usize) -> String {
        let mut buffer = text.as_bytes().to_vec();
        keep_last_lines(&mut buffer, lines);
        String::from_utf8(buffer).expect("utf-8")
    }

    #[test]
    fn the_tail_keeps_the_last_lines() {
        assert_eq!(tail_of("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(tail_of("a\nb\nc", 2), "b\nc");
        assert_eq!(tail_of("a\nb\n", 5), "a\nb\n");
        assert_eq!(tail_of("", 3), "");
        assert_eq!(tail_of("one line", 1), "one line");
        assert_eq!(tail_of("a\nb\n", 0), "");
    }

    #[test]
    fn the_tail_of_many_pages_is_the_tail_of_the_whole() {
        let mut whole = String::new();
        for n in 1..=100 {
            let _ = writeln!(whole, "line {n}");
        }
        let mut kept = Vec::new();
        for page in whole.as_bytes().chunks(7) {
            kept.extend_from_slice(page);
            keep_last_lines(&mut kept, 30);
        }
        assert_eq!(kept, tail_of(&whole, 30).as_bytes());
        assert!(
            String::from_utf8(kept)
                .expect("utf-8")
                .starts_with("line 71\n")
        );
    }
}
