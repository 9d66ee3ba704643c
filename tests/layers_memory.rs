//! The memory estimate of chapter 6's networks (`spec::bytes_needed`, which `--layers` runs are
//! checked against before training) is what a pass really allocates: the bytes the heap grows
//! by while `Pass::new` builds a pass's buffers, measured by a counting allocator, match the
//! estimate's share for the pass, for a few lists in both precisions, on one thread and
//! shared between threads (`Shards`). (Its own file: the
//! allocator counts every thread's allocations, so nothing else may run beside it.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use nndl::model::activation::Activation;
use nndl::model::layers::pass::{self, Pass};
use nndl::model::layers::shards::Shards;
use nndl::model::layers::{spec, LayerNetwork};
use nndl::real::Real;
use nndl::rng::seeded;

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes of the pass's own bookkeeping that are not buffers (its list of per-layer records).
const BOOKKEEPING_PER_LAYER: usize = 1024;

/// Bytes the heap grows by while `build` runs (and what it built is alive).
fn grown<T>(build: impl FnOnce() -> T) -> u128 {
    let before = LIVE.load(Ordering::SeqCst);
    let built = build();
    let grown = (LIVE.load(Ordering::SeqCst) - before) as u128;
    drop(built);
    grown
}

fn check<F: Real>(list: &str, m: usize) {
    let specs = spec::parse(list, Activation::Relu, 0.0).unwrap();
    let shapes = spec::check(&specs, [1, 28, 28], 10).unwrap();
    let net: LayerNetwork<F> = LayerNetwork::new(&specs, [1, 28, 28], 10, &mut seeded(1)).unwrap();
    let parameters: u128 = net
        .layers
        .iter()
        .flat_map(|l| l.parameters())
        .map(|p| (p.values.len() * std::mem::size_of::<F>()) as u128)
        .sum();
    // The buffers declared for a pass of `layers` layers and `m` examples.
    let declared = |layers: usize, m: usize, training: bool, parts: usize| -> u128 {
        let (own, per_layer) =
            pass::buffers::<F>(&specs[..layers], &shapes[..=layers], m, training, parts).unwrap();
        own.iter()
            .chain(per_layer.iter().flatten())
            .map(|b| b.bytes::<F>().unwrap())
            .sum()
    };
    let slack = (BOOKKEEPING_PER_LAYER * specs.len()) as u128;
    let within = |grown: u128, declared: u128, what: &str| {
        assert!(
            declared <= grown && grown <= declared + slack,
            "{list}, m = {m}, {what}: declared {declared} bytes, allocated {grown}"
        );
    };
    let all = specs.len();
    for training in [true, false] {
        let pass = grown(|| Pass::new(&net, m, training));
        within(pass, declared(all, m, training, 1), "one pass");
    }
    let evaluation = declared(all, pass::EVAL_CHUNK, false, 1);
    let one_thread = declared(all, m, true, 1);
    let estimate = spec::bytes_needed::<F>(&specs, &shapes, 10, m, 1).unwrap();
    assert_eq!(
        estimate,
        parameters + one_thread + evaluation,
        "{list}, m = {m}"
    );
    // Shared between threads: the whole mini-batch's pass, and one through the head per
    // thread.
    let head = spec::shared_head(&specs);
    for threads in [2, 3] {
        let parts = threads.min(m);
        let whole = declared(all, m, true, parts);
        within(grown(|| Pass::split(&net, m, parts)), whole, "split pass");
        let share = if parts > 1 && head > 0 {
            let share = declared(head, m.div_ceil(parts), true, 1);
            within(
                grown(|| Pass::head(&net, head, m.div_ceil(parts))),
                share,
                "head",
            );
            share
        } else {
            0
        };
        let parts_u = parts as u128;
        // (A mini-batch of one trains on one thread, in one pass.)
        if parts > 1 {
            let shards = grown(|| Shards::new(&net, m, threads));
            assert!(
                whole + parts_u * share <= shards
                    && shards <= whole + parts_u * share + (parts_u + 1) * slack,
                "{list}, m = {m}, {threads} threads: shards allocated {shards}"
            );
        }
        let estimate = spec::bytes_needed::<F>(&specs, &shapes, 10, m, threads).unwrap();
        let wanted = parameters + whole + parts_u * share + threads as u128 * evaluation;
        assert_eq!(estimate, wanted, "{list}, m = {m}, {threads} threads");
    }
}

#[test]
fn the_memory_estimate_is_what_a_pass_allocates() {
    for list in [
        "conv:20:5,pool:2,fc:100,softmax",
        "conv:20:5,pool:2,conv:40:5,pool:2,fc:100:dropout=0.5,softmax:dropout=0.5",
        "conv:6:3,conv:4:3,pool:2,softmax",
        "fc:30:dropout=0.2,softmax",
    ] {
        for m in [1, 10, 50] {
            check::<f32>(list, m);
            check::<f64>(list, m);
        }
    }
}
