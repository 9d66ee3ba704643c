//! The matrix-product backend chosen at build time (see `build.rs`), and nndl's threads.
//!
//! nndl shares work between cores itself (`--threads`): chapter 6's networks split each
//! mini-batch's examples between threads ([`crate::model::layers::shards`]), and every network
//! is scored chunk by chunk on all of them. The threads are one persistent pool
//! ([`start_threads`], rayon's), made once per process: nothing is spawned per mini-batch.
//! The BLAS itself runs on one thread: at the book's mini-batch of 10 its products are too
//! small to share between cores (a second thread costs more in hand-over than it saves), and
//! nndl's own threads would otherwise compete with the BLAS's. The pure-Rust backend
//! (`matrixmultiply`, without its `threading` feature) is always single-threaded. With
//! OpenBLAS, the description names the kernel family (`corename`) it chose for this CPU, e.g.
//! `SkylakeX` (AVX-512) or `Haswell` (AVX2).

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

/// Why the pool of threads could not be made.
#[derive(Debug, thiserror::Error)]
#[error("could not start {threads} threads: {source}")]
pub struct ThreadsError {
    threads: usize,
    source: rayon::ThreadPoolBuildError,
}

/// Makes the process's pool of `threads` workers, which every parallel part of nndl runs on,
/// and keeps the BLAS on one thread. Once per process: a second call with the same count
/// does nothing, and with another count is an error (the pool cannot be resized).
pub fn start_threads(threads: usize) -> Result<(), ThreadsError> {
    set_blas_threads(1);
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("nndl-{i}"))
        .build_global()
    {
        Ok(()) => Ok(()),
        Err(_) if rayon::current_num_threads() == threads => Ok(()),
        Err(source) => Err(ThreadsError { threads, source }),
    }
}

/// The threads of the pool (all the cores, if [`start_threads`] was never called).
pub fn threads() -> usize {
    rayon::current_num_threads()
}

/// Runs `work` on every item at once on the pool and returns when all are done: the first
/// item on the calling thread, the others on the pool's workers. The fork and join of one
/// parallel step (a mini-batch's shares, its update).
pub fn fork_join<T: Send>(items: &mut [T], work: impl Fn(&mut T) + Sync) {
    let work = &work;
    rayon::in_place_scope(|scope| {
        let Some((first, rest)) = items.split_first_mut() else {
            return;
        };
        for item in rest {
            scope.spawn(move |_| work(item));
        }
        work(first);
    });
}

/// Seconds one [`fork_join`] of `parts` empty parts takes on the pool, the median of
/// `rounds` rounds of 1,000: what sharing a mini-batch costs besides the work itself (a
/// shared training step forks and joins twice).
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
