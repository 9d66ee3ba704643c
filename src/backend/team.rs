//! A team of threads that wait for work by spinning: the fork and join of [`super::fork_join`].
//!
//! Each thread that forks work gets a team of its own (a thread-local one, made on its first
//! fork), of `threads − 1` workers; it runs the first part itself. A worker that has done its
//! part watches for the next fork, spinning, for [`SPIN`] before it sleeps; the caller spins
//! for the workers' parts to be done. A training step forks twice per mini-batch (its shares'
//! passes, then its update) with a few microseconds of work on one thread in between, and
//! that is what this is for: a general pool whose idle workers sleep at once — rayon's, which
//! this replaced — has to wake them for every fork, and waking a thread costs 35–50 µs on the
//! virtual machines this was measured on (a fork and join of empty parts took 17.6 µs back to
//! back and 52–57 µs with 20–500 µs between forks, 2026-12-06, against about 1 µs here),
//! more than a mini-batch's share of work on some of chapter 6's networks. OpenMP's
//! `OMP_WAIT_POLICY=active` is the same idea. No crate offers a spinning fork and join of
//! borrowed work, so it is written here; the one `unsafe` is the lifetime of the work, which
//! [`Team::run`] does not return before every part is done (see there).

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

/// How long an idle worker spins, watching for the next fork, before it sleeps.
const SPIN: Duration = Duration::from_millis(2);

/// A part of a fork: the work, erased to `'static` ([`Team::run`] says why that holds), and
/// how many parts there are.
#[derive(Clone, Copy)]
struct Job {
    work: &'static (dyn Fn(usize) + Sync),
    parts: usize,
    /// The fork it belongs to: a worker that saw an earlier fork late runs no part of it.
    fork: usize,
}

/// What the caller and its workers share.
struct Shared {
    /// Raised for every fork; a worker runs the job of each new value.
    fork: AtomicUsize,
    job: Mutex<Option<Job>>,
    /// Parts of the current fork not yet done by the workers.
    pending: AtomicUsize,
    /// The first panic of a worker's part, to be raised again in the caller.
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
    /// Set when the team is dropped: the workers return.
    stop: AtomicBool,
}

/// `threads − 1` workers and the caller.
pub struct Team {
    shared: Arc<Shared>,
    workers: Vec<(JoinHandle<()>, Thread)>,
}

impl Team {
    /// A team of `threads` threads: the caller and `threads − 1` workers, started now.
    pub fn try_new(threads: usize) -> std::io::Result<Team> {
        let shared = Arc::new(Shared {
            fork: AtomicUsize::new(0),
            job: Mutex::new(None),
            pending: AtomicUsize::new(0),
            panic: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let mut team = Team {
            shared: Arc::clone(&shared),
            workers: Vec::new(),
        };
        for index in 1..threads.max(1) {
            let shared = Arc::clone(&shared);
            let handle = thread::Builder::new()
                .name(format!("nndl-{index}"))
                .spawn(move || work(&shared, index, threads))?;
            let thread = handle.thread().clone();
            team.workers.push((handle, thread));
        }
        Ok(team)
    }

    /// [`Team::try_new`], for a thread whose team [`super::start_threads`] did not make.
    ///
    /// # Panics
    /// If the system cannot start a thread.
    pub fn new(threads: usize) -> Team {
        Team::try_new(threads).expect("a thread can be started")
    }

    /// The threads of the team, the caller included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `work(0)`, …, `work(parts − 1)`: part 0 and every `threads`-th part after it on
    /// the calling thread, part k on worker k mod `threads` likewise; returns once all are
    /// done. A panic in any part is raised again here, after every part has ended.
    pub fn run(&self, parts: usize, work: &(dyn Fn(usize) + Sync)) {
        let threads = self.threads();
        let on_workers = (1..parts).filter(|k| k % threads != 0).count();
        if on_workers > 0 {
            // Safety: the workers use `work` only between this store and their last decrement
            // of `pending`, and this function does not return — nor unwind: the caller's own
            // parts are run under `catch_unwind` — before `pending` is back to 0. So `work`
            // outlives every use of the erased reference.
            let work: &'static (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(work) };
            let fork = self.shared.fork.load(Ordering::Acquire) + 1;
            *lock(&self.shared.job) = Some(Job { work, parts, fork });
            self.shared.pending.store(on_workers, Ordering::Release);
            self.shared.fork.store(fork, Ordering::Release);
            for (_, thread) in &self.workers {
                thread.unpark();
            }
        }
        let own = catch_unwind(AssertUnwindSafe(|| {
            for part in (0..parts).step_by(threads) {
                work(part);
            }
        }));
        let mut spins = 0u32;
        while self.shared.pending.load(Ordering::Acquire) > 0 {
            spins = spins.saturating_add(1);
            if spins < 1 << 16 {
                std::hint::spin_loop();
            } else {
                thread::yield_now();
            }
        }
        if on_workers > 0 {
            *lock(&self.shared.job) = None;
        }
        if let Err(payload) = own {
            resume_unwind(payload);
        }
        if let Some(payload) = lock(&self.shared.panic).take() {
            resume_unwind(payload);
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        for (handle, thread) in self.workers.drain(..) {
            thread.unpark();
            let _ = handle.join();
        }
    }
}

/// A mutex's value, whether or not a part panicked while holding it (none does: the job and
/// the panic are only stored and taken).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Worker `index`'s loop: waits for a fork (spinning for [`SPIN`], then asleep until
/// unparked), runs its parts of the job, counts them done.
fn work(shared: &Shared, index: usize, threads: usize) {
    let mut seen = 0;
    loop {
        let started = Instant::now();
        let fork = loop {
            if shared.stop.load(Ordering::Acquire) {
                return;
            }
            let fork = shared.fork.load(Ordering::Acquire);
            if fork != seen {
                break fork;
            }
            if started.elapsed() < SPIN {
                std::hint::spin_loop();
            } else {
                thread::park_timeout(Duration::from_millis(50));
            }
        };
        seen = fork;
        let job = match *lock(&shared.job) {
            Some(job) if job.fork == fork => job,
            _ => continue,
        };
        let mine: Vec<usize> = (index..job.parts).step_by(threads).collect();
        if mine.is_empty() {
            continue;
        }
        for part in mine {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| (job.work)(part))) {
                lock(&shared.panic).get_or_insert(payload);
            }
            shared.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Team;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_part_runs_once_on_any_team() {
        for threads in [1, 2, 3] {
            let team = Team::new(threads);
            for parts in [0, 1, 2, 5, 9] {
                let counts: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
                for _ in 0..50 {
                    team.run(parts, &|k| {
                        counts[k].fetch_add(1, Ordering::Relaxed);
                    });
                }
                assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 50));
            }
        }
    }

    #[test]
    fn a_panic_in_a_part_reaches_the_caller_after_every_part() {
        let team = Team::new(2);
        let done = AtomicUsize::new(0);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            team.run(4, &|k| {
                if k == 1 {
                    panic!("part {k}");
                }
                done.fetch_add(1, Ordering::Relaxed);
            })
        }));
        assert!(result.is_err());
        assert_eq!(done.load(Ordering::Relaxed), 3);
        // The team still works.
        team.run(2, &|_| {
            done.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(done.load(Ordering::Relaxed), 5);
    }
}
