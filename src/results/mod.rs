//! Everything a sweep leaves on disk: the folder layout, atomic writes, tables (polars),
//! plots (plotters) and TensorBoard event files.

pub mod charts;
pub mod combined;
pub mod html;
pub mod nfe;
pub mod opened;
pub mod plots;
pub mod report;
pub mod seeds;
pub mod store;
pub mod table;
pub mod tensorboard;
pub mod tidy;

pub use store::{write_atomic, SweepFolder};
pub use table::TrialRow;
