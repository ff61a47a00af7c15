//! Group commit: many writers, one flush (the store's, and the SMS outbox's file sync). A
//! batch is written (visible at once) and then joins the *open round*; a dedicated flusher
//! thread takes the open round, flushes once, and tells every member of that round how the
//! flush went. Batches that arrive while a flush runs join the next round, which the flusher
//! starts as soon as the current flush returns, so one flush covers every batch written
//! meanwhile.
//!
//! Why a flusher thread rather than leader/follower: async callers (the gateway's commits, the
//! API's link issue) wait for a round as a future and hold no thread while they wait, and a
//! blocking caller waits on the round's own condvar. Either way a flush round costs one thread
//! wake-up, not one per writer, and no writer ever runs a flush for others while its own
//! request waits.
//!
//! Under load the flusher lingers before a flush: while writers keep joining the open round
//! (a slice of `LINGER_SLICE` brought at least one), it waits another slice, up to
//! `LINGER_MAX`. A flush costs the same for one member as for fifty (the syscalls, the
//! device round trip, the wake-ups), so fewer, fuller rounds leave more CPU to the writers. It
//! never lingers after a round of one: a lone writer waits only for its own flush.
//!
//! Correctness rests on one order: a batch joins a round only after its write returned, and
//! the flusher starts a flush only after taking the round, so the flush begins after every
//! member's write and covers it. A failed flush fails every member of its round.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::DbError;

/// What the engine's flush does: make every write that returned before the call durable.
pub type FlushFn = Box<dyn FnMut() -> Result<(), String> + Send>;

pub struct GroupCommit {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// The flusher sleeps here while no round is open.
    work: Condvar,
    flushes: AtomicU64,
}

struct State {
    /// The round that batches written now join; the flusher takes it when it starts a flush.
    open: Option<Arc<Round>>,
    /// Writers that joined the open round.
    members: usize,
    /// How many the last flushed round had.
    last_members: usize,
    stop: bool,
}

/// How long the flusher waits for more writers while they keep coming, per slice and in all.
const LINGER_SLICE: Duration = Duration::from_micros(100);
const LINGER_MAX: Duration = Duration::from_micros(1000);

/// One flush and everyone waiting for it.
struct Round {
    state: Mutex<RoundState>,
    done: Condvar,
}

#[derive(Default)]
struct RoundState {
    result: Option<Result<(), String>>,
    wakers: Vec<Waker>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing below panics while holding a lock; a poisoned one still holds consistent state.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Round {
    fn new() -> Arc<Round> {
        Arc::new(Round {
            state: Mutex::default(),
            done: Condvar::new(),
        })
    }

    fn finish(&self, result: Result<(), String>) {
        let wakers = {
            let mut st = lock(&self.state);
            st.result = Some(result);
            std::mem::take(&mut st.wakers)
        };
        self.done.notify_all();
        for w in wakers {
            w.wake();
        }
    }
}

impl GroupCommit {
    /// Starts the flusher thread (named `name`); `flush` runs only there, one call at a time.
    pub fn new(name: &str, mut flush: FlushFn) -> Result<GroupCommit, DbError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                open: None,
                members: 0,
                last_members: 0,
                stop: false,
            }),
            work: Condvar::new(),
            flushes: AtomicU64::new(0),
        });
        let s = shared.clone();
        let flusher = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || loop {
                let round = {
                    let mut st = lock(&s.state);
                    while st.open.is_none() {
                        if st.stop {
                            return;
                        }
                        st = s.work.wait(st).unwrap_or_else(|p| p.into_inner());
                    }
                    if st.last_members > 1 {
                        let until = Instant::now() + LINGER_MAX;
                        while !st.stop {
                            let seen = st.members;
                            let slice = LINGER_SLICE.min(until.saturating_duration_since(Instant::now()));
                            if slice.is_zero() {
                                break;
                            }
                            st = s
                                .work
                                .wait_timeout(st, slice)
                                .unwrap_or_else(|p| p.into_inner())
                                .0;
                            if st.members == seen {
                                break;
                            }
                        }
                    }
                    // A round still open at stop is flushed too: nobody is left waiting.
                    st.last_members = std::mem::take(&mut st.members);
                    st.open.take().expect("a round is open")
                };
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut flush))
                    .unwrap_or_else(|_| Err("the flush panicked".into()));
                s.flushes.fetch_add(1, Ordering::Relaxed);
                round.finish(result);
            })
            .map_err(|e| DbError::Engine(format!("cannot start the flusher thread: {e}")))?;
        Ok(GroupCommit {
            shared,
            flusher: Some(flusher),
        })
    }

    /// Joins the open round. Call it after the write it must cover has returned.
    pub fn durable(&self) -> Durable {
        let mut st = lock(&self.shared.state);
        st.members += 1;
        let round = match &st.open {
            Some(round) => round.clone(),
            None => {
                let round = Round::new();
                st.open = Some(round.clone());
                // The flusher may be asleep (nothing was open): a new round is work. While it
                // lingers, later members need not wake it: it looks again each slice.
                self.shared.work.notify_one();
                round
            }
        };
        Durable(Waiting::Round(round))
    }

    /// Flushes run so far.
    pub fn flushes(&self) -> u64 {
        self.shared.flushes.load(Ordering::Relaxed)
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        lock(&self.shared.state).stop = true;
        self.shared.work.notify_one();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
    }
}

/// Resolves once the writes that returned before it was made are durable, with the flush's
/// error if that flush failed. Wait for it with [`Durable::wait`] on a thread that may block,
/// or `.await` it.
#[must_use = "a write is not durable until its Durable resolves"]
pub struct Durable(Waiting);

enum Waiting {
    Ready(Option<Result<(), DbError>>),
    Round(Arc<Round>),
}

impl Durable {
    /// Already settled: for engines that flush synchronously, and for failures before a round.
    pub fn ready(result: Result<(), DbError>) -> Durable {
        Durable(Waiting::Ready(Some(result)))
    }

    /// Blocks the calling thread until the flush covering the writes has run.
    pub fn wait(self) -> Result<(), DbError> {
        match self.0 {
            Waiting::Ready(result) => result.unwrap_or(Ok(())),
            Waiting::Round(round) => {
                let mut st = lock(&round.state);
                loop {
                    if let Some(result) = &st.result {
                        return result.clone().map_err(DbError::Engine);
                    }
                    st = round.done.wait(st).unwrap_or_else(|p| p.into_inner());
                }
            }
        }
    }
}

impl Future for Durable {
    type Output = Result<(), DbError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            Waiting::Ready(result) => Poll::Ready(result.take().unwrap_or(Ok(()))),
            Waiting::Round(round) => {
                let mut st = lock(&round.state);
                if let Some(result) = &st.result {
                    return Poll::Ready(result.clone().map_err(DbError::Engine));
                }
                if !st.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    st.wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A flush that reports when it starts and returns only when the test says so.
    fn gated() -> (GroupCommit, mpsc::Receiver<u64>, mpsc::Sender<Result<(), String>>) {
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<Result<(), String>>();
        let mut n = 0;
        let group = GroupCommit::new(
            "test-flush",
            Box::new(move || {
                n += 1;
                started_tx.send(n).unwrap();
                release_rx.recv().unwrap()
            }),
        )
        .unwrap();
        (group, started, release)
    }

    #[test]
    fn batches_written_during_a_flush_share_the_next_one() {
        let (group, started, release) = gated();
        let first = group.durable();
        assert_eq!(started.recv().unwrap(), 1);
        // Ten writers arrive while the first flush runs: they all join one round.
        let waiters: Vec<_> = (0..10)
            .map(|_| {
                let d = group.durable();
                std::thread::spawn(move || d.wait())
            })
            .collect();
        release.send(Ok(())).unwrap();
        first.wait().unwrap();
        assert_eq!(started.recv().unwrap(), 2);
        release.send(Ok(())).unwrap();
        for w in waiters {
            w.join().unwrap().unwrap();
        }
        // Eleven durable writes, two flushes, and no third one pending.
        assert_eq!(group.flushes(), 2);
        assert!(started.recv_timeout(Duration::from_millis(50)).is_err());
    }

    #[test]
    fn a_failed_flush_fails_every_batch_it_covered_and_no_other() {
        let (group, started, release) = gated();
        let first = group.durable();
        assert_eq!(started.recv().unwrap(), 1);
        let covered: Vec<_> = (0..5).map(|_| group.durable()).collect();
        release.send(Ok(())).unwrap();
        first.wait().unwrap();
        assert_eq!(started.recv().unwrap(), 2);
        release.send(Err("disk on fire".into())).unwrap();
        for d in covered {
            match d.wait() {
                Err(DbError::Engine(e)) => assert_eq!(e, "disk on fire"),
                other => panic!("expected the flush error, got {other:?}"),
            }
        }
        // The next batch gets its own flush.
        let later = group.durable();
        assert_eq!(started.recv().unwrap(), 3);
        release.send(Ok(())).unwrap();
        later.wait().unwrap();
    }

    #[test]
    fn async_waiters_resolve_and_a_panicking_flush_is_an_error() {
        let mut calls = 0;
        let group = GroupCommit::new(
            "test-flush",
            Box::new(move || {
                calls += 1;
                if calls == 2 {
                    panic!("flush bug");
                }
                Ok(())
            }),
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            group.durable().await.unwrap();
            assert!(group.durable().await.is_err());
            group.durable().await.unwrap();
        });
        assert!(Durable::ready(Ok(())).wait().is_ok());
    }

    #[test]
    fn dropping_flushes_what_is_still_open() {
        let (group, started, release) = gated();
        let d = group.durable();
        assert_eq!(started.recv().unwrap(), 1);
        release.send(Ok(())).unwrap();
        drop(group);
        d.wait().unwrap();
    }
}
