use super::{parse::read, Token};

pub struct Printer;

pub fn print() -> Token {
    super::grammar::value();
    read()
}
