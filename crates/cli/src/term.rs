//! What the terminal allows: which of stdin, stdout and stderr are terminals, and whether to
//! colour (only on a terminal, never under `NO_COLOR`).

use std::ffi::OsStr;
use std::io::IsTerminal;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Term {
    pub(crate) stdout: bool,
    /// Whether a person can be asked a question: it shows on stderr, the answer comes on
    /// stdin.
    pub(crate) can_ask: bool,
    /// Whether stdout may carry colour.
    pub(crate) color: bool,
}

impl Term {
    pub(crate) fn detect() -> Self {
        let stdout = std::io::stdout().is_terminal();
        Self {
            stdout,
            can_ask: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
            color: color_allowed(stdout, std::env::var_os("NO_COLOR").as_deref()),
        }
    }
}

/// While alive, the terminal on stdout does not echo control characters (`^C`). The live view
/// leaves the cursor at the last column of the table's last line, and each redraw moves up
/// from there; an echoed `^C` would wrap to a new line first, every redraw after it would land
/// a line low, and a stage header would show twice.
#[derive(Debug)]
pub(crate) struct QuietControlChars {
    #[cfg(unix)]
    saved: Option<nix::sys::termios::Termios>,
}

impl QuietControlChars {
    #[cfg(unix)]
    pub(crate) fn new() -> Self {
        use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
        let saved = tcgetattr(std::io::stdout()).ok();
        if let Some(saved) = &saved {
            let mut quiet = saved.clone();
            quiet.local_flags.remove(LocalFlags::ECHOCTL);
            // Only looks suffer if this fails.
            let _ = tcsetattr(std::io::stdout(), SetArg::TCSANOW, &quiet);
        }
        Self { saved }
    }

    #[cfg(not(unix))]
    pub(crate) fn new() -> Self {
        Self {}
    }
}

#[cfg(unix)]
impl Drop for QuietControlChars {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdout(),
                nix::sys::termios::SetArg::TCSANOW,
                saved,
            );
        }
    }
}

/// Colour on a terminal, unless `NO_COLOR` is set to anything but the empty string
/// (no-color.org).
pub(crate) fn color_allowed(terminal: bool, no_color: Option<&OsStr>) -> bool {
    terminal && no_color.is_none_or(OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_and_never_under_no_color() {
        assert!(color_allowed(true, None));
        assert!(color_allowed(true, Some(OsStr::new(""))));
        assert!(!color_allowed(true, Some(OsStr::new("1"))));
        assert!(!color_allowed(false, None));
    }
}
