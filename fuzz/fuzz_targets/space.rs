//! `nndl tune`'s search space: `--param NAME=KIND` lines and a `--space` TOML file; a space
//! that parses passes its own check (the check a space read back from a store gets).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nndl::tune::space::Space;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    if let Ok(space) = Space::parse(&lines) {
        assert_eq!(space.check(), Ok(()), "{text:?}");
    }
    if let Ok(space) = Space::from_toml(text) {
        assert_eq!(space.check(), Ok(()), "{text:?}");
    }
});
