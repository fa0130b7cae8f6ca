//! Only declares the modules: the check skips it.
pub mod base;
pub mod middle;
pub mod top;
