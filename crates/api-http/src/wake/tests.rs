//! The wake-up protocol's rules, one by one and against a model of the claim statement.

use super::{Next, Waiter, Wake};
use futures_util::FutureExt as _;

fn tags(tags: &[&str]) -> Vec<String> {
    tags.iter().map(|&tag| tag.to_owned()).collect()
}

/// A waiter that looked, found nothing and parked.
fn parked<'a>(wake: &'a Wake, runner_tags: &[&str]) -> Waiter<'a> {
    let mut waiter = wake.waiter(&tags(runner_tags));
    waiter.look();
    assert_eq!(waiter.found_nothing(), Next::Wait);
    waiter
}

fn is_woken(waiter: &Waiter<'_>) -> bool {
    waiter.woken().now_or_never().is_some()
}

#[test]
fn a_notification_wakes_as_many_waiters_as_builds_longest_waiting_first() {
    let wake = Wake::default();
    let waiters: Vec<_> = (0..4).map(|_| parked(&wake, &[])).collect();
    wake.pending(2);
    let woken: Vec<bool> = waiters.iter().map(is_woken).collect();
    assert_eq!(woken, [true, true, false, false]);
}

#[test]
fn a_waiter_that_claimed_hands_the_wake_on() {
    let wake = Wake::default();
    let mut first = parked(&wake, &[]);
    let second = parked(&wake, &[]);
    wake.pending(1);
    assert!(is_woken(&first) && !is_woken(&second));
    first.look();
    first.claimed();
    assert!(is_woken(&second), "the next waiter looks for more");
}

#[test]
fn an_empty_claim_hands_on_only_to_runners_with_other_tags() {
    let wake = Wake::default();
    let mut linux = parked(&wake, &["linux"]);
    let fewer = parked(&wake, &[]);
    let same = parked(&wake, &["linux"]);
    let gpu = parked(&wake, &["linux", "gpu"]);
    wake.pending(1);
    assert!(is_woken(&linux));
    linux.look();
    assert_eq!(linux.found_nothing(), Next::Wait);
    assert!(!is_woken(&fewer), "it can take nothing `linux` could not");
    assert!(!is_woken(&same));
    assert!(is_woken(&gpu), "it may take a build that needs `gpu`");
}

#[test]
fn a_waiter_that_already_looked_since_is_not_handed_the_wake() {
    let wake = Wake::default();
    let mut first = parked(&wake, &[]);
    wake.pending(1);
    assert!(is_woken(&first));
    // A request that arrives after the notification sees its builds when it claims.
    let late = parked(&wake, &[]);
    first.look();
    first.claimed();
    assert!(!is_woken(&late));
}

#[test]
fn a_claim_overtaken_by_a_notification_looks_again() {
    let wake = Wake::default();
    let mut waiter = wake.waiter(&[]);
    waiter.look();
    wake.pending(1);
    assert_eq!(waiter.found_nothing(), Next::LookAgain);
    waiter.look();
    assert_eq!(waiter.found_nothing(), Next::Wait);
}

#[test]
fn a_woken_waiter_that_leaves_hands_its_wake_on() {
    let wake = Wake::default();
    let first = parked(&wake, &[]);
    let second = parked(&wake, &[]);
    wake.pending(1);
    drop(first);
    assert!(is_woken(&second));
}

#[test]
fn a_failed_claim_lets_every_waiter_look_again() {
    let wake = Wake::default();
    let others: Vec<_> = (0..3).map(|_| parked(&wake, &[])).collect();
    let mut failing = wake.waiter(&[]);
    failing.look();
    drop(failing);
    assert!(others.iter().all(is_woken));
}

#[test]
fn a_reconnect_wakes_every_waiter() {
    let wake = Wake::default();
    let waiters: Vec<_> = (0..3).map(|_| parked(&wake, &[])).collect();
    wake.wake_all();
    assert!(waiters.iter().all(is_woken));
}

/// The protocol against a model of the claim statement, over random interleavings: runners
/// with random tags arrive, claim (taking their snapshot some time after they start, skipping
/// builds that others are claiming), fail now and then, and stop waiting; builds with random tags
/// commit, and their notifications arrive later, sometimes folded into one. At random points
/// (and at the end) everything in flight settles, and then no waiting runner may be able to take
/// a pending build.
#[test]
fn no_build_stays_pending_while_a_runner_that_could_take_it_waits() {
    for seed in 0..5_000 {
        model::run(seed);
    }
}

mod model {
    use super::super::{Next, Waiter, Wake};
    use super::is_woken;

    const TAGS: [&str; 3] = ["a", "b", "c"];

    /// Each of the tags with a chance of one in `one_in`.
    fn random_tags(rng: &mut fastrand::Rng, one_in: u8) -> Vec<String> {
        TAGS.iter()
            .filter(|_| rng.u8(0..one_in) == 0)
            .map(|&tag| tag.to_owned())
            .collect()
    }

    #[derive(PartialEq)]
    enum Build {
        Pending,
        /// Locked by a claim in progress.
        Locked,
        Taken,
    }

    enum Claim {
        /// Started, no snapshot yet.
        Started,
        /// Took its snapshot: the build it locked, if any.
        Snapshot(Option<usize>),
    }

    struct Runner<'a> {
        tags: Vec<String>,
        waiter: Option<Waiter<'a>>,
        claim: Option<Claim>,
    }

    struct World<'a> {
        wake: &'a Wake,
        builds: Vec<(Vec<String>, Build)>,
        runners: Vec<Runner<'a>>,
        /// Committed builds whose notification has not arrived yet.
        unannounced: Vec<u64>,
    }

    impl World<'_> {
        fn arrive(&mut self, tags: Vec<String>) {
            let mut waiter = self.wake.waiter(&tags);
            waiter.look();
            self.runners.push(Runner {
                tags,
                waiter: Some(waiter),
                claim: Some(Claim::Started),
            });
        }

        /// The claim statement: the first pending build the runner's tags allow that
        /// nobody else has locked.
        fn snapshot(&mut self, runner: usize) {
            let tags = &self.runners[runner].tags;
            let found = self.builds.iter().position(|(needs, status)| {
                *status == Build::Pending && needs.iter().all(|tag| tags.contains(tag))
            });
            if let Some(build) = found {
                self.builds[build].1 = Build::Locked;
            }
            self.runners[runner].claim = Some(Claim::Snapshot(found));
        }

        /// The claim commits (or fails and rolls back) and the request goes on. Once the
        /// client has gone, the claim still runs to its end, with nobody to answer.
        fn finish_claim(&mut self, runner: usize, fail: bool) {
            let r = &mut self.runners[runner];
            let Some(Claim::Snapshot(found)) = r.claim.take() else {
                return;
            };
            if let Some(build) = found {
                self.builds[build].1 = if fail { Build::Pending } else { Build::Taken };
            }
            let Some(waiter) = r.waiter.as_mut() else {
                return;
            };
            if fail {
                r.waiter = None;
            } else if found.is_some() {
                if let Some(waiter) = r.waiter.take() {
                    waiter.claimed();
                }
            } else if waiter.found_nothing() == Next::LookAgain {
                waiter.look();
                r.claim = Some(Claim::Started);
            }
        }

        /// Parked runners that were woken start claiming.
        fn wake_up(&mut self) -> bool {
            let mut any = false;
            for r in &mut self.runners {
                let woken = r.claim.is_none() && r.waiter.as_ref().is_some_and(is_woken);
                if let Some(waiter) = r.waiter.as_mut().filter(|_| woken) {
                    waiter.look();
                    r.claim = Some(Claim::Started);
                    any = true;
                }
            }
            any
        }

        /// Delivers the notifications one by one, each time letting every claim run to its
        /// end, then asserts that no waiting runner could take a pending build.
        fn check(&mut self, seed: u64) {
            self.settle();
            for count in std::mem::take(&mut self.unannounced) {
                self.wake.pending(count);
                self.settle();
            }
            for r in self.runners.iter().filter(|r| r.waiter.is_some()) {
                let stranded = self.builds.iter().find(|(needs, status)| {
                    *status == Build::Pending && needs.iter().all(|tag| r.tags.contains(tag))
                });
                assert!(
                    stranded.is_none(),
                    "seed {seed}: a runner with tags {:?} waits while a build needing {:?} is pending",
                    r.tags,
                    stranded.map(|(needs, _)| needs)
                );
            }
        }

        fn settle(&mut self) {
            loop {
                if let Some(&r) = self.claiming().first() {
                    match self.runners[r].claim {
                        Some(Claim::Started) => self.snapshot(r),
                        _ => self.finish_claim(r, false),
                    }
                } else if !self.wake_up() {
                    return;
                }
            }
        }

        fn claiming(&self) -> Vec<usize> {
            (0..self.runners.len())
                .filter(|&r| self.runners[r].claim.is_some())
                .collect()
        }
    }

    pub(super) fn run(seed: u64) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let wake = Wake::default();
        let mut world = World {
            wake: &wake,
            builds: Vec::new(),
            runners: Vec::new(),
            unannounced: Vec::new(),
        };
        for _ in 0..rng.usize(5..150) {
            match rng.u8(0..100) {
                0..25 => {
                    let tags = random_tags(&mut rng, 2);
                    world.arrive(tags);
                }
                25..40 => {
                    let count = rng.u64(1..4);
                    for _ in 0..count {
                        let needs = random_tags(&mut rng, 4);
                        world.builds.push((needs, Build::Pending));
                    }
                    world.unannounced.push(count);
                }
                40..55 => {
                    // Notifications arrive; PostgreSQL may fold equal payloads into one.
                    if !world.unannounced.is_empty() {
                        let count = world.unannounced.remove(0);
                        wake.pending(if rng.bool() { count } else { 1 });
                    }
                }
                55..85 => {
                    let claiming = world.claiming();
                    if let Some(&r) = rng.choice(claiming.iter()) {
                        match world.runners[r].claim {
                            Some(Claim::Started) => world.snapshot(r),
                            _ => world.finish_claim(r, rng.u8(0..15) == 0),
                        }
                    }
                }
                85..90 => world.check(seed),
                90..93 => {
                    // A runner's wait runs out, or its client goes away (rarely while it
                    // claims: that lets everyone look again, which would hide other bugs).
                    let waiting: Vec<usize> = (0..world.runners.len())
                        .filter(|&r| world.runners[r].waiter.is_some())
                        .filter(|&r| world.runners[r].claim.is_none() || rng.u8(0..10) == 0)
                        .collect();
                    if let Some(&r) = rng.choice(waiting.iter()) {
                        world.runners[r].waiter = None;
                    }
                }
                _ => {
                    world.wake_up();
                }
            }
        }
        world.check(seed);
    }
}
