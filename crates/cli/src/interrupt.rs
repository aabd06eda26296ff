//! Ctrl-C while following: the signal becomes a message on a channel, so the wait between two
//! polls ends at once and the command decides what to do (ask, cancel, or say how to).

use std::io::{self, BufRead as _, Write as _};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

enum Event {
    Interrupt,
    Answer(io::Result<String>),
}

/// Ctrl-C (or SIGTERM) delivered as messages.
#[derive(Debug)]
pub(crate) struct Interrupts {
    sender: Sender<Event>,
    receiver: Receiver<Event>,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Interrupt => f.write_str("Interrupt"),
            Self::Answer(_) => f.write_str("Answer"),
        }
    }
}

impl Interrupts {
    /// Takes over Ctrl-C for the rest of the process.
    pub(crate) fn install() -> anyhow::Result<Self> {
        let (sender, receiver) = mpsc::channel();
        let signals = sender.clone();
        ctrlc::set_handler(move || {
            let _ = signals.send(Event::Interrupt);
        })
        .map_err(|e| anyhow::anyhow!("cannot handle Ctrl-C: {e}"))?;
        Ok(Self { sender, receiver })
    }

    /// Waits up to `timeout`; whether Ctrl-C came meanwhile.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        match self.receiver.recv_timeout(timeout) {
            Ok(Event::Interrupt) => true,
            // A late answer to a question already given up on.
            Ok(Event::Answer(_)) | Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(timeout);
                false
            }
        }
    }

    /// Asks a yes/no question on stderr and reads the answer from stdin. Another Ctrl-C, or
    /// the end of stdin, answers no.
    pub(crate) fn ask(&self, question: &str) -> io::Result<bool> {
        let mut err = io::stderr().lock();
        write!(err, "{question} ")?;
        err.flush()?;
        drop(err);
        let answers = self.sender.clone();
        // A thread, so that a Ctrl-C can interrupt the read: stdin offers no timeout.
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = io::stdin().lock().read_line(&mut line).map(|_| line);
            let _ = answers.send(Event::Answer(read));
        });
        match self.receiver.recv() {
            Ok(Event::Answer(Ok(line))) => Ok(is_yes(&line)),
            Ok(Event::Answer(Err(_)) | Event::Interrupt) | Err(_) => {
                writeln!(io::stderr().lock())?;
                Ok(false)
            }
        }
    }
}

fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yes_means_yes() {
        assert!(is_yes("y\n"));
        assert!(is_yes(" YES "));
        assert!(!is_yes("\n"));
        assert!(!is_yes("no"));
        assert!(!is_yes("yep"));
    }
}
