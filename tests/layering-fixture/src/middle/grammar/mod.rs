//! A recursive grammar: its files call each other, and the rules allow it here.
mod list;
mod value;

pub use value::value;
