//! The highest module: it may import every other.
use crate::{
    base::Shape,
    middle::{self, read},
};

pub struct Thing(pub Shape);

pub fn run() {
    let _ = read();
    let _ = super::middle::print();
    let _ = middle::Printer;
    let _message = "scorelab::top::run imports nothing";
}
