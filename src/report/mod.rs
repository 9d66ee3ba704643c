//! What a run shows and leaves behind: the book's epoch lines and a progress bar
//! ([`console`]), the per-epoch metrics file ([`metrics`]), the accuracy and cost figures
//! ([`plot`]), and the FLOP accounting behind `nndl bench` ([`bench`]). Nothing here changes
//! how a network trains.

pub mod bench;
pub mod console;
pub mod metrics;
pub mod plot;
