//! Waking long-polling runners when builds become pending, and the one listener per process
//! that hears both wake-ups and cancels (handed to `watch.rs`).
//!
//! A trigger on `ci_builds` sends `NOTIFY lockstep_builds_pending` whenever a statement makes
//! builds pending, whichever server replica ran it, with the number of builds as its payload.
//! Each replica keeps one connection that LISTENs on that channel and wakes that many waiting
//! requests, not all of them: ten runners woken for one build make ten claims, nine of which
//! find nothing while competing for the cores the tenth needs.
//!
//! Waking fewer is only safe if no build stays pending while a runner that could take it waits.
//! Every request registers as a [`Waiter`] before its first claim, and notes the *generation*
//! (the count of notifications so far) at which each of its claims starts: that claim sees every
//! build announced up to that generation. A woken waiter holds a *baton* and, after its claim,
//! hands it to one parked waiter that has not looked since:
//!
//! - after claiming a build, to any such waiter: the build it took need not be the one it was
//!   woken for, and the count is only a lower bound;
//! - after finding nothing, only to a waiter with a tag outside its own: the claim skips only
//!   locked rows, so finding nothing proves that every pending build its tags allow is taken or
//!   being taken, and only a runner with other tags can find more.
//!
//! A claim that finds nothing while a notification arrived after it started looks again at once:
//! it may have started too early to see the build. Every waiter looks again when the listener
//! (re)connects (notifications may have been lost), when a claim fails (a build it had locked is
//! pending again, and the claims that skipped it will not look on their own) and when a
//! notification carries no count.

use crate::app::AppState;
use lockstep_storage_pg::{ListenError, Listener, Notice, Pending};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

/// The requests waiting for builds in this process, and who is woken next.
#[derive(Debug, Default)]
pub(crate) struct Wake {
    waiters: Mutex<Waiters>,
}

#[derive(Debug, Default)]
struct Waiters {
    /// Goes up with every notification.
    generation: u64,
    next_id: u64,
    /// In registration order, so that the request that has waited longest is woken first.
    entries: BTreeMap<u64, Entry>,
}

#[derive(Debug)]
struct Entry {
    tags: Vec<String>,
    /// The generation at which its latest claim started.
    seen: u64,
    state: State,
    /// Whether it must hand the wake on after its next claim.
    baton: bool,
    signal: Arc<Notify>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Claiming.
    Looking,
    /// Waiting to be woken.
    Parked,
    /// Woken, not claiming yet.
    Woken,
}

impl Entry {
    fn wake(&mut self, baton: bool) {
        self.state = State::Woken;
        self.baton = baton;
        self.signal.notify_one();
    }
}

impl Waiters {
    /// Hands a baton to the first parked waiter whose latest claim started before generation
    /// `before` and, when `beyond` is set, that has a tag outside `beyond`.
    fn hand_on(&mut self, before: u64, beyond: Option<&[String]>) {
        let next = self.entries.values_mut().find(|entry| {
            entry.state == State::Parked
                && entry.seen < before
                && beyond.is_none_or(|tags| entry.tags.iter().any(|tag| !tags.contains(tag)))
        });
        if let Some(entry) = next {
            entry.wake(true);
        }
    }

    fn wake_all(&mut self) {
        self.generation += 1;
        for entry in self.entries.values_mut() {
            if entry.state == State::Parked {
                entry.wake(false);
            }
        }
    }
}

impl Wake {
    fn lock(&self) -> MutexGuard<'_, Waiters> {
        // Every critical section leaves the data consistent, so a panic elsewhere cannot have
        // left it half updated.
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a request for a runner with `tags` that is about to claim.
    pub(crate) fn waiter(&self, tags: &[String]) -> Waiter<'_> {
        let mut waiters = self.lock();
        let id = waiters.next_id;
        waiters.next_id += 1;
        let signal = Arc::new(Notify::new());
        let entry = Entry {
            tags: tags.to_vec(),
            seen: waiters.generation,
            state: State::Looking,
            baton: false,
            signal: signal.clone(),
        };
        waiters.entries.insert(id, entry);
        Waiter {
            wake: self,
            id,
            signal,
            answered: false,
        }
    }

    /// At least `builds` builds became pending: wakes as many parked waiters, each with a baton.
    pub(crate) fn pending(&self, builds: u64) {
        let mut waiters = self.lock();
        waiters.generation += 1;
        let parked = waiters
            .entries
            .values_mut()
            .filter(|entry| entry.state == State::Parked);
        for entry in parked.take(usize::try_from(builds).unwrap_or(usize::MAX)) {
            entry.wake(true);
        }
    }

    /// Builds may have become pending unannounced: every waiter looks again.
    pub(crate) fn wake_all(&self) {
        self.lock().wake_all();
    }
}

/// What a request does after a claim that found nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Claims again at once: builds were announced after the claim started.
    LookAgain,
    /// Waits for [`Waiter::woken`].
    Wait,
}

/// A request's place among the waiters, from before its first claim until it answers. Dropped
/// while woken or claiming (the wait ran out just then, the client went away, the claim failed),
/// it hands its wake on, so that no wake-up is lost with it.
#[derive(Debug)]
pub(crate) struct Waiter<'a> {
    wake: &'a Wake,
    id: u64,
    signal: Arc<Notify>,
    answered: bool,
}

impl Waiter<'_> {
    /// A claim starts: it sees every build announced so far.
    pub(crate) fn look(&mut self) {
        let mut waiters = self.wake.lock();
        let generation = waiters.generation;
        if let Some(entry) = waiters.entries.get_mut(&self.id) {
            entry.seen = generation;
            entry.state = State::Looking;
        }
    }

    /// The claim got a build.
    pub(crate) fn claimed(mut self) {
        self.answered = true;
        let mut waiters = self.wake.lock();
        if let Some(entry) = waiters.entries.remove(&self.id)
            && entry.baton
        {
            waiters.hand_on(entry.seen, None);
        }
    }

    /// The claim found nothing: parks, handing the baton (if any) to a waiter that might find
    /// more, or says to look again.
    pub(crate) fn found_nothing(&mut self) -> Next {
        let mut waiters = self.wake.lock();
        let generation = waiters.generation;
        let Some(entry) = waiters.entries.get_mut(&self.id) else {
            return Next::Wait;
        };
        if entry.seen < generation {
            return Next::LookAgain;
        }
        entry.state = State::Parked;
        if std::mem::take(&mut entry.baton) {
            let (seen, tags) = (entry.seen, entry.tags.clone());
            waiters.hand_on(seen, Some(&tags));
        }
        Next::Wait
    }

    /// Resolves when a notification, a baton or a reconnect wakes this waiter. Cancel-safe: a
    /// wake that arrives while nobody awaits is kept for the next call.
    pub(crate) async fn woken(&self) {
        self.signal.notified().await;
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let mut waiters = self.wake.lock();
        let Some(entry) = waiters.entries.remove(&self.id) else {
            return;
        };
        if self.answered {
            return;
        }
        match entry.state {
            State::Parked => {}
            // The claim failed or was abandoned: a build it had locked may be pending again.
            State::Looking => waiters.wake_all(),
            State::Woken if entry.baton => {
                let generation = waiters.generation;
                waiters.hand_on(generation, None);
            }
            State::Woken => {}
        }
    }
}

/// LISTENs until shutdown, reconnecting with capped backoff when the connection drops.
pub(crate) async fn listen(state: AppState, database_url: String) {
    let mut backoff = Duration::from_millis(100);
    loop {
        tokio::select! {
            result = listen_once(&state, &database_url) => {
                if let Err(error) = result {
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis(), "wake-up listener disconnected");
                }
            }
            () = state.stopped() => return,
        }
        // Notifications may have been missed while disconnected: let every waiter look again.
        state.wake.wake_all();
        state.watches.look_again();
        state.live.look_again();
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = state.stopped() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn listen_once(state: &AppState, database_url: &str) -> Result<(), ListenError> {
    let mut listener = Listener::connect(database_url).await?;
    tracing::debug!("listening for pending and canceling builds and for changes");
    // Changes committed before the LISTEN took effect were never announced to us.
    state.wake.wake_all();
    state.watches.look_again();
    state.live.look_again();
    loop {
        match listener.next().await? {
            Notice::Pending(Pending::Builds(builds)) => state.wake.pending(builds),
            Notice::Pending(Pending::Unknown) => state.wake.wake_all(),
            Notice::Canceling(canceling) => state.watches.canceling(canceling),
            Notice::Pipelines(ids) => state.live.pipelines(ids),
            Notice::Logs(ids) => state.live.logs(ids),
        }
    }
}

#[cfg(test)]
mod tests;
