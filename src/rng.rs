//! The one random number generator of a run. Seeded from the configuration, it draws the
//! initial weights, then every epoch's shuffle and every dropout mask, so a seed repeats a run.
//!
//! It is ChaCha12 — the generator behind `rand`'s `StdRng` (the same seed gives the same
//! stream) — named directly because its state can be saved and restored, which `StdRng` keeps
//! private: a run stopped after an epoch resumes with exactly the draws it would have made.

use rand::SeedableRng;

/// ChaCha12, as `rand::rngs::StdRng`, with a state that can be saved ([`save`]) and restored
/// ([`restore`]).
pub type SeededRng = rand::rngs::ChaCha12Rng;

/// The generator for `seed`, as `StdRng::seed_from_u64(seed)` would be.
pub fn seeded(seed: u64) -> SeededRng {
    SeededRng::seed_from_u64(seed)
}

/// The generator's whole state: its key, stream and position (49 bytes).
pub fn save(rng: &SeededRng) -> [u8; 49] {
    rng.serialize_state()
}

/// The generator [`save`] saved, at the same position.
pub fn restore(state: &[u8; 49]) -> SeededRng {
    SeededRng::deserialize_state(state)
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn the_same_stream_as_std_rng() {
        let mut ours = super::seeded(42);
        let mut std = StdRng::seed_from_u64(42);
        for _ in 0..1000 {
            assert_eq!(ours.next_u64(), std.next_u64());
            assert_eq!(ours.next_u32(), std.next_u32());
        }
    }

    #[test]
    fn a_restored_generator_continues_the_stream() {
        // Saved at every offset within the first blocks, and restored, it draws what the
        // original goes on to draw.
        for drawn in 0..70 {
            let mut rng = super::seeded(7);
            for _ in 0..drawn {
                rng.next_u32();
            }
            let mut restored = super::restore(&super::save(&rng));
            for _ in 0..40 {
                assert_eq!(restored.next_u32(), rng.next_u32(), "after {drawn}");
                assert_eq!(restored.next_u64(), rng.next_u64(), "after {drawn}");
            }
        }
    }
}
