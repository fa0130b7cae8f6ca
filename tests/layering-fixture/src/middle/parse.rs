use super::Token;
use crate::base;

pub fn read() -> Token {
    Token(base::Shape)
}
