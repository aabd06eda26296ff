//! Capped exponential backoff with full jitter, for calls to a server that is away.

use std::time::Duration;

#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    attempt: u32,
    base: Duration,
    cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(200), Duration::from_secs(10))
    }
}

impl Backoff {
    pub(crate) fn new(base: Duration, cap: Duration) -> Self {
        Self {
            attempt: 0,
            base,
            cap,
        }
    }

    /// The next delay: a random duration up to `base * 2^attempt`, at most `cap`. The jitter
    /// keeps many workers from retrying in lockstep after the server comes back.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1_u32 << self.attempt.min(16))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(nanos / 2..=nanos))
    }

    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;
    use std::time::Duration;

    #[test]
    fn delays_grow_and_stay_under_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let first = backoff.next_delay();
        assert!(first <= Duration::from_millis(100));
        for _ in 0..20 {
            assert!(backoff.next_delay() <= Duration::from_secs(1));
        }
        assert!(
            backoff.next_delay() >= Duration::from_millis(500),
            "near the cap by now"
        );
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }
}
