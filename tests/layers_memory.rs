//! The memory estimate of chapter 6's networks (`spec::bytes_needed`, which `--layers` runs are
//! checked against before training) is what a pass really allocates: the bytes the heap grows
//! by while `Pass::new` builds a pass's buffers, measured by a counting allocator, match the
//! estimate's share for the pass, for a few lists in both precisions. (Its own file: the
//! allocator counts every thread's allocations, so nothing else may run beside it.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use nndl::model::activation::Activation;
use nndl::model::layers::pass::{self, Pass};
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
const BOOKKEEPING_PER_LAYER: usize = 512;

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
    for training in [true, false] {
        let before = LIVE.load(Ordering::SeqCst);
        let pass = Pass::new(&net, m, training);
        let grown = (LIVE.load(Ordering::SeqCst) - before) as u128;
        drop(pass);
        let (own, per_layer) = pass::buffers::<F>(&specs, &shapes, m, training).unwrap();
        let declared: u128 = own
            .iter()
            .chain(per_layer.iter().flatten())
            .map(|b| b.bytes::<F>().unwrap())
            .sum();
        let slack = (BOOKKEEPING_PER_LAYER * specs.len()) as u128;
        assert!(
            declared <= grown && grown <= declared + slack,
            "{list}, m = {m}, training {training}: declared {declared} bytes, allocated {grown}"
        );
        if training {
            let estimate = spec::bytes_needed::<F>(&specs, &shapes, 10, m, 1).unwrap();
            assert_eq!(estimate, parameters + declared, "{list}, m = {m}");
        }
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
