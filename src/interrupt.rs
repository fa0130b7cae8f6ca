//! Ctrl-C: the first request stops the sweep at the next safe point (after a training
//! step, with a snapshot saved, or between trials); a second one exits at once.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// The exit status of a process stopped by SIGINT (128 + 2), as shells report it.
pub const EXIT_CODE: i32 = 130;

/// Installs the handler (once per process; later calls do nothing). `notice` is printed on
/// the first Ctrl-C.
pub fn install(notice: &'static str) {
    let _ = ctrlc::set_handler(move || {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            std::process::exit(EXIT_CODE);
        }
        eprintln!("\n{notice}");
    });
}

/// Whether a stop was requested.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Asks the sweep to stop as Ctrl-C would (for tests and embedding programs).
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}
