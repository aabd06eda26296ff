//! The budget of the expansion after parsing: `extends` and `parallel` copy values, and a
//! small hostile file could make them copy without end.

use crate::error::{FileError, Problems, Stop};
use crate::tree::{Node, Pos};

/// Values copied while expanding one file. A real pipeline of 2,000 jobs with fifty values
/// each copies a tenth of this.
const MAX_COPIED_NODES: usize = 1_000_000;
/// Bytes of text copied while expanding one file.
const MAX_COPIED_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Default)]
pub(crate) struct Work {
    nodes: usize,
    bytes: usize,
    /// Set when a limit was reached, so the reason is reported once.
    exceeded: bool,
}

impl Work {
    /// Counts a copy of `node`; refuses it past the budget.
    pub(crate) fn charge(&mut self, node: &Node) -> Result<(), Stop> {
        let (nodes, bytes) = node.weight();
        self.charge_weight(nodes, bytes)
    }

    /// Counts `copies` more copies of something weighing (`nodes`, `bytes`).
    pub(crate) fn charge_copies(
        &mut self,
        weight: (usize, usize),
        copies: usize,
    ) -> Result<(), Stop> {
        self.charge_weight(
            weight.0.saturating_mul(copies),
            weight.1.saturating_mul(copies),
        )
    }

    fn charge_weight(&mut self, nodes: usize, bytes: usize) -> Result<(), Stop> {
        self.nodes = self.nodes.saturating_add(nodes);
        self.bytes = self.bytes.saturating_add(bytes);
        if self.nodes > MAX_COPIED_NODES || self.bytes > MAX_COPIED_BYTES {
            self.exceeded = true;
            return Err(Stop);
        }
        Ok(())
    }

    /// Reports the reason for a [`Stop`] that came from here (call once, at the end).
    pub(crate) fn report(&self, problems: &mut Problems) {
        if self.exceeded {
            problems.push(FileError::at(
                Pos::UNKNOWN,
                None,
                format!(
                    "the file expands to too much (more than {MAX_COPIED_NODES} values or \
                     {MAX_COPIED_BYTES} bytes after `extends` and `parallel`)"
                ),
            ));
        }
    }
}
