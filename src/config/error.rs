//! [`ConfigError`]: what is wrong with an experiment, where (the file, or the origin and key
//! path of one value) and how to fix it. Every file of `config` reports through it.

use std::path::Path;

/// A problem with the experiment: what is wrong, where, and how to fix it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {message}. Fix: {fix}")]
    File {
        file: String,
        message: String,
        fix: String,
    },
    #[error("in {origin}, key `{key}`: {message}. Fix: {fix}")]
    Key {
        origin: String,
        key: String,
        message: String,
        fix: String,
    },
}

impl ConfigError {
    pub fn file(file: &Path, message: impl Into<String>, fix: impl Into<String>) -> Self {
        ConfigError::File {
            file: file.display().to_string(),
            message: message.into(),
            fix: fix.into(),
        }
    }
}
