//! What a run shows and leaves behind: the book's epoch lines and a progress bar
//! ([`console`]), the per-epoch metrics file ([`metrics`]), the accuracy and cost figures
//! ([`plot`]), the FLOP accounting behind `nndl bench` ([`bench`]), and a hyperparameter
//! study's table and exports ([`study`]) and figures ([`study_plot`]). Nothing here changes
//! how a network trains.

pub mod bench;
pub mod console;
pub mod metrics;
pub mod plot;
pub mod study;
pub mod study_plot;
