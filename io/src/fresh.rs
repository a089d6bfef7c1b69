//! The lock-free fresh path both adapters share: the engine's latest
//! snapshot, read without a lock, and the credential handed out from one of
//! a few copies so that callers on several cores do not all bump one
//! reference count (one shared counter makes two threads eight times
//! slower than one on this path; see `docs/benchmarks.md`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use arc_swap::ArcSwapOption;
use refresh_session_core::engine::Snapshot;
use refresh_session_core::{Clock, Credentials};

/// Copies of a credential per snapshot: enough that the threads of a busy
/// service rarely share one, few enough that a fleet of sessions stays
/// small (copies are made on first use, so one thread makes none).
const MAX_COPIES: usize = 8;

/// The snapshot and the copies of its credential.
struct Published {
    snapshot: Snapshot,
    /// Fresh while the clock's coarse seconds are below this: the end of
    /// the fresh window less the clock's coarse lag, rounded down to a
    /// second (`u64::MAX` for credentials that never go stale).
    fresh_before: u64,
    /// `copies[i - 1]` serves the threads whose [`lane`] is `i`; lane 0
    /// hands out the snapshot's own `Arc`.
    copies: Box<[OnceLock<Arc<Credentials>>]>,
}

/// The credential callers may take without the engine.
#[derive(Default)]
pub struct FreshCell {
    published: ArcSwapOption<Published>,
}

impl FreshCell {
    /// Replaces what callers see; `None` sends every caller to the engine.
    /// `clock` is the one [`fresh`](Self::fresh) will be given.
    pub fn publish(&self, snapshot: Option<Snapshot>, clock: &dyn Clock) {
        self.published.store(snapshot.map(|snapshot| {
            let fresh_before = snapshot.fresh_until().map_or(u64::MAX, |until| {
                until
                    .checked_sub(clock.coarse_lag())
                    .and_then(|until| until.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .map_or(0, |since| since.as_secs())
            });
            Arc::new(Published {
                snapshot,
                fresh_before,
                copies: (1..lanes()).map(|_| OnceLock::new()).collect(),
            })
        }));
    }

    /// The credential if it is fresh by `clock`'s coarse seconds (the
    /// window shortened by the clock's lag and rounded down, so never
    /// fresher than it is): a load, a comparison and a reference count on
    /// this thread's copy.
    #[inline]
    pub fn fresh(&self, clock: &dyn Clock) -> Option<Arc<Credentials>> {
        let published = self.published.load();
        let published = published.as_ref()?;
        if clock.now_coarse_secs() >= published.fresh_before {
            return None;
        }
        let credentials = published.snapshot.credentials();
        let copy = match lane().checked_sub(1).and_then(|i| published.copies.get(i)) {
            None => credentials,
            Some(copy) => copy.get_or_init(|| Arc::new(Credentials::clone(credentials))),
        };
        Some(copy.clone())
    }
}

/// How many copies of a credential: the cores, at most [`MAX_COPIES`].
/// Asked once: the answer reads cgroup files.
fn lanes() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_COPIES)
    })
}

/// Which copy each thread uses: a live thread holds a lane, and a thread
/// takes the lane the fewest live threads hold, so that threads that run
/// together use different copies however many threads came and went
/// before them (numbering threads as they start let two long-lived
/// workers share one copy, and its one count made each three times
/// slower).
struct Lanes {
    holders: [AtomicUsize; MAX_COPIES],
}

impl Lanes {
    const fn new() -> Self {
        Self {
            holders: [const { AtomicUsize::new(0) }; MAX_COPIES],
        }
    }

    /// The least held of the first `lanes` lanes (the lowest of equals),
    /// now held once more. Two threads taking at the same instant may
    /// get the same lane; that costs speed, nothing else.
    fn take(&self, lanes: usize) -> usize {
        let (lane, holders) = self
            .holders
            .iter()
            .take(lanes)
            .enumerate()
            .min_by_key(|(_, holders)| holders.load(Ordering::Relaxed))
            .unwrap_or((0, &self.holders[0]));
        holders.fetch_add(1, Ordering::Relaxed);
        lane
    }

    fn give_back(&self, lane: usize) {
        if let Some(holders) = self.holders.get(lane) {
            holders.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

static LANES: Lanes = Lanes::new();

/// A thread's lane, given back when the thread ends.
struct Held(usize);

impl Drop for Held {
    fn drop(&mut self) {
        LANES.give_back(self.0);
    }
}

/// The calling thread's lane, below [`lanes`].
#[inline]
fn lane() -> usize {
    thread_local! {
        static HELD: Held = Held(LANES.take(lanes()));
    }
    // A thread that is ending may have given its lane back: lane 0 serves.
    HELD.try_with(|held| held.0).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use refresh_session_core::SessionConfig;
    use refresh_session_core::custom::CustomCredentials;
    use refresh_session_core::engine::{Access, Engine, Input, Request};
    use time::OffsetDateTime;

    use super::*;

    struct Fixed(SystemTime);

    impl Clock for Fixed {
        fn now(&self) -> SystemTime {
            self.0
        }
    }

    /// An engine holding a one-hour credential fetched at `start`.
    fn warmed(start: OffsetDateTime) -> Engine {
        let mut engine = Engine::new(SessionConfig::custom(), &|_| None, start, 1)
            .expect("valid")
            .0;
        let Access::Pending(_) = engine.poll_access(start, None) else {
            panic!("nothing cached yet")
        };
        let Some(Request::CallProvider { fetch }) = engine.poll_request() else {
            panic!("the provider is asked")
        };
        let answer = CustomCredentials::new()
            .access_key_id("ASIACELL")
            .secret_access_key("secret")
            .expiration(start + Duration::from_secs(3600));
        engine.handle_input(
            start,
            Input::Provided {
                fetch,
                result: Ok(answer),
            },
        );
        engine
    }

    #[test]
    fn threads_get_the_fresh_credential_and_nothing_after_its_window() {
        let start = OffsetDateTime::now_utc();
        let cell = FreshCell::default();
        let clock = Fixed(start.into());
        assert!(cell.fresh(&clock).is_none(), "nothing published yet");
        cell.publish(warmed(start).snapshot(), &clock);
        let keys: Vec<String> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..2 * MAX_COPIES)
                .map(|_| scope.spawn(|| cell.fresh(&clock).map(|c| c.access_key_id().to_owned())))
                .collect();
            threads
                .into_iter()
                .filter_map(|t| t.join().expect("no panic"))
                .collect()
        });
        assert_eq!(keys.len(), 2 * MAX_COPIES);
        assert!(keys.iter().all(|k| k == "ASIACELL"));
        // An hour-long credential is fresh for 45 minutes.
        let late = Fixed((start + Duration::from_secs(45 * 60)).into());
        assert!(cell.fresh(&late).is_none());
        cell.publish(None, &clock);
        assert!(cell.fresh(&clock).is_none());
    }

    #[test]
    fn whole_seconds_end_the_window_early_never_late() {
        let start = OffsetDateTime::now_utc();
        let cell = FreshCell::default();
        let engine = warmed(start);
        let until = engine
            .snapshot()
            .and_then(|s| s.fresh_until())
            .expect("it goes stale");
        cell.publish(engine.snapshot(), &Fixed(start.into()));
        // Every 10 ms across the last two seconds of the window and past it.
        for step in -200_i32..100 {
            let at = if step < 0 {
                until - Duration::from_millis(10 * u64::from(step.unsigned_abs()))
            } else {
                until + Duration::from_millis(10 * u64::from(step.unsigned_abs()))
            };
            let fresh = cell.fresh(&Fixed(at)).is_some();
            assert!(
                !fresh || at < until,
                "fresh at {step}0 ms from the window's end"
            );
            let second_early = at + Duration::from_secs(1) < until;
            assert!(
                fresh || !second_early,
                "stale at {step}0 ms from the window's end"
            );
        }
    }

    #[test]
    fn threads_take_the_least_held_lane() {
        let lanes = Lanes::new();
        let taken: Vec<usize> = (0..3).map(|_| lanes.take(3)).collect();
        assert_eq!(
            taken,
            [0, 1, 2],
            "threads running together get their own lanes"
        );
        lanes.give_back(1);
        assert_eq!(lanes.take(3), 1, "a lane given back is taken next");
        assert_eq!(lanes.take(3), 0, "then they are shared evenly");
        assert_eq!(lanes.take(3), 1);
    }
}
