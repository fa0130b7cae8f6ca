//! A plugin: it imports the lower layers, as external plugins do.
use scorelab::base::Shape;
use scorelab::middle::read;

pub fn make() -> Shape {
    let _ = read();
    scorelab::base::describe();
    Shape
}
