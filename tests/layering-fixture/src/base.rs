//! The lowest module. Words about crate::top::Thing in a comment import nothing.

/// Nor in a doc comment: `scorelab::top::Thing`.
pub struct Shape;

/* Nor in a block comment: crate::top::Thing /* nested: crate::middle */ still a comment */
pub fn describe() -> &'static str {
    let _quote = '"';
    let _lifetime: &'static str = "crate::top";
    r#"scorelab::middle::read "quoted" crate::top"#
}
