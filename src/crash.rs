//! Named points where a test can kill the runner, to prove that a sweep killed anywhere
//! loses nothing. `SCORELAB_KILL_AT=name:N` aborts the process (no destructors, no
//! flushing: what SIGKILL does) the N-th time execution passes the point `name`; without
//! the variable a point costs one atomic load.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The variable that arms a point.
pub const VARIABLE: &str = "SCORELAB_KILL_AT";

struct Armed {
    name: String,
    at: usize,
    seen: AtomicUsize,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let value = std::env::var(VARIABLE).ok()?;
            let (name, at) = value.rsplit_once(':')?;
            Some(Armed {
                name: name.to_string(),
                at: at.parse().ok()?,
                seen: AtomicUsize::new(0),
            })
        })
        .as_ref()
}

/// Passes the point `name`, or dies there when a test armed it.
pub fn point(name: &str) {
    if let Some(armed) = armed() {
        if armed.name == name && armed.seen.fetch_add(1, Ordering::SeqCst) + 1 == armed.at {
            std::process::abort();
        }
    }
}
