//! Another plugin; it names `scorelab::plugins::kind::one` only here, in a comment.
pub fn make() -> scorelab::base::Shape {
    scorelab::base::Shape
}

#[cfg(test)]
mod tests {
    use super::make;
}
