//! A folder module: its face re-exports its children's items.
mod grammar;
mod parse;
mod print;

pub use parse::read;
pub use print::{print, Printer};

/// Shared by the children below.
pub struct Token(pub crate::base::Shape);

#[cfg(test)]
mod tests {
    use super::*;
}
