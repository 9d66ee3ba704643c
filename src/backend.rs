//! The matrix-product backend chosen at build time (see `build.rs`), and nndl's threads.
//!
//! nndl shares work between cores itself (`--threads`): chapter 6's networks split each
//! mini-batch's examples between threads ([`crate::model::layers::shards`]), and every network
//! is scored chunk by chunk on all of them. Each thread that shares work has a persistent
//! team of workers ([`team`]), made once: nothing is spawned per mini-batch.
//! The BLAS itself runs on one thread: at the book's mini-batch of 10 its products are too
//! small to share between cores (a second thread costs more in hand-over than it saves), and
//! nndl's own threads would otherwise compete with the BLAS's. The pure-Rust backend
//! (`matrixmultiply`, without its `threading` feature) is always single-threaded. With
//! OpenBLAS, the description names the kernel family (`corename`) it chose for this CPU, e.g.
//! `SkylakeX` (AVX-512) or `Haswell` (AVX2).

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The backend's name, as chosen by Cargo features.
pub const NAME: &str = env!("NNDL_BACKEND");

#[cfg(feature = "openblas")]
mod openblas {
    use std::ffi::{c_char, c_int, CStr};

    extern "C" {
        fn openblas_set_num_threads(n: c_int);
        fn openblas_get_corename() -> *const c_char;
        fn openblas_get_config() -> *const c_char;
    }

    fn text(p: *const c_char) -> String {
        if p.is_null() {
            return "?".into();
        }
        // Safety: OpenBLAS returns pointers to static NUL-terminated strings.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    pub fn set_threads(n: usize) {
        let n = c_int::try_from(n).unwrap_or(c_int::MAX);
        // Safety: plain calls into the linked OpenBLAS.
        unsafe { openblas_set_num_threads(n) }
    }

    pub fn describe() -> String {
        // Safety: plain calls into the linked OpenBLAS, which return static strings.
        let (core, config) =
            unsafe { (text(openblas_get_corename()), text(openblas_get_config())) };
        format!("core {core}; {config}")
    }
}

/// Sets how many threads the BLAS may use (no effect on the single-threaded backends).
pub fn set_blas_threads(n: usize) {
    #[cfg(feature = "openblas")]
    openblas::set_threads(n);
    #[cfg(not(feature = "openblas"))]
    let _ = n;
}

/// The backend's name, where the library can say the kernels it uses, and the threads of
/// nndl's pool ([`start_threads`]).
pub fn describe() -> String {
    let threads = match threads() {
        1 => "1 thread".to_string(),
        n => format!("{n} threads"),
    };
    #[cfg(feature = "openblas")]
    return format!("{NAME}: {}, {threads}", openblas::describe());
    #[cfg(not(feature = "openblas"))]
    return format!("{NAME}, {threads}");
}

/// The cores this process may run on (1 if the system cannot say): the default of
/// `--threads`.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

mod team;

/// Why a thread could not be started.
#[derive(Debug, thiserror::Error)]
#[error("could not start {threads} threads: {source}")]
pub struct ThreadsError {
    threads: usize,
    source: std::io::Error,
}

/// The threads each caller of [`fork_join`] shares its work between, itself included
/// ([`start_threads`]).
static THREADS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's team, made on its first fork.
    static TEAM: RefCell<Option<team::Team>> = const { RefCell::new(None) };
    /// Set while this thread runs a part of a fork: a fork within it runs its parts in turn.
    static IN_PART: Cell<bool> = const { Cell::new(false) };
}

/// Sets how many threads each caller of [`fork_join`] shares its work between — itself and
/// `threads − 1` workers of its own ([`team`]) — starts the calling thread's, and keeps the
/// BLAS on one thread. Other threads that fork (`nndl tune`'s workers) get their teams of the
/// same size on their first fork.
pub fn start_threads(threads: usize) -> Result<(), ThreadsError> {
    set_blas_threads(1);
    THREADS.store(threads.max(1), Ordering::Relaxed);
    TEAM.with(|cell| match cell.try_borrow_mut() {
        Ok(mut team) => {
            if team.as_ref().map(team::Team::threads) != Some(threads.max(1)) {
                *team = None;
                *team = Some(
                    team::Team::try_new(threads.max(1))
                        .map_err(|source| ThreadsError { threads, source })?,
                );
            }
            Ok(())
        }
        Err(_) => Ok(()),
    })
}

/// The threads a caller shares its work between, itself included: as [`start_threads`] set
/// them, or else the cores available.
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => cores(),
        n => n,
    }
}

/// Runs `work(items, range)` for [`threads`] consecutive ranges of `0..len` at once, one on
/// the calling thread, and returns each part's result in order: a loop over `len` items
/// shared between the threads, whose ranges do not depend on how many there are when `work`
/// goes item by item.
pub fn map_ranges<R: Send>(
    len: usize,
    work: impl Fn(std::ops::Range<usize>) -> R + Sync,
) -> Vec<R> {
    let parts = threads().clamp(1, len.max(1));
    let per = len.div_ceil(parts);
    let mut results: Vec<(std::ops::Range<usize>, Option<R>)> = (0..parts)
        .map(|k| ((k * per).min(len)..((k + 1) * per).min(len), None))
        .collect();
    fork_join(&mut results, |(range, result)| {
        *result = Some(work(range.clone()));
    });
    results
        .into_iter()
        .map(|(_, r)| r.expect("every part ran"))
        .collect()
}

/// `0..len` in `parts` consecutive ranges whose lengths differ by at most one, the longer
/// first: how a shared mini-batch's examples are split between threads.
pub fn even_ranges(len: usize, parts: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let parts = parts.max(1);
    let (base, extra) = (len / parts, len % parts);
    (0..parts).scan(0, move |start, k| {
        let range = *start..*start + base + usize::from(k < extra);
        *start = range.end;
        Some(range)
    })
}

/// Runs `work` on every item at once, the first on the calling thread, the others on its
/// team's workers, and returns when all are done: the fork and join of one parallel step (a
/// mini-batch's shares, its update). With more items than threads, each thread takes every
/// [`threads`]-th. Within a part of another fork, the items are worked through in turn.
pub fn fork_join<T: Send>(items: &mut [T], work: impl Fn(&mut T) + Sync) {
    /// The items' address, shared with the parts: each part takes its own item.
    struct Items<T>(*mut T);
    // Safety: a part dereferences only its own index (below), so no item is reached from two
    // threads, and T: Send lets an item be used on another thread.
    unsafe impl<T: Send> Sync for Items<T> {}
    let nested = IN_PART.with(Cell::get);
    if nested || items.len() <= 1 || threads() == 1 {
        items.iter_mut().for_each(work);
        return;
    }
    let (len, base) = (items.len(), &Items(items.as_mut_ptr()));
    /// Marks the thread as in a part for as long as it lives.
    struct InPart;
    impl Drop for InPart {
        fn drop(&mut self) {
            IN_PART.with(|p| p.set(false));
        }
    }
    let part = |k: usize| {
        assert!(k < len);
        IN_PART.with(|p| p.set(true));
        let _in_part = InPart;
        // Safety: the team runs each index below `len` exactly once, while `items` is
        // borrowed for this call.
        let item = unsafe { &mut *base.0.add(k) };
        work(item);
    };
    TEAM.with(|cell| {
        let mut team = cell.borrow_mut();
        if team.as_ref().map(team::Team::threads) != Some(threads()) {
            *team = None;
            *team = Some(team::Team::new(threads()));
        }
        team.as_ref().expect("made above").run(len, &part);
    });
}

/// Seconds one [`fork_join`] of `parts` empty parts takes on the pool, the median of
/// `rounds` rounds of 1,000: what sharing a mini-batch costs besides the work itself (a
/// shared training step forks and joins three times for its convolutions and up to three
/// times for each dense layer).
pub fn fork_join_seconds(parts: usize, rounds: usize) -> f64 {
    let mut items = vec![0u64; parts];
    let mut times: Vec<f64> = (0..rounds.max(1))
        .map(|_| {
            let start = std::time::Instant::now();
            for _ in 0..1_000 {
                fork_join(&mut items, |n| *n = std::hint::black_box(*n + 1));
            }
            start.elapsed().as_secs_f64() / 1_000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
