//! Stop requests: Ctrl-C (SIGINT), SIGTERM (what `timeout`, systemd, `scancel` and batch
//! schedulers send) and SIGHUP (a closed terminal) each stop the sweep at the next safe point
//! (after a training step, with a snapshot saved, or between trials), and the process exits
//! with 128 + that signal's number, as shells report it; a second request exits at once.
//! Signals are read on a thread of their own (`signal-hook`'s iterator), so the handler may
//! print.

use std::sync::atomic::{AtomicI32, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGXFSZ};

/// The first stop signal received (0: none).
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// The exit status of a process stopped by SIGINT (128 + 2), as shells report it.
pub const EXIT_CODE: i32 = 128 + SIGINT;

/// The signals that stop a sweep.
pub const STOP_SIGNALS: [i32; 3] = [SIGINT, SIGTERM, SIGHUP];

/// A signal's name (`SIGTERM`).
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT (Ctrl-C)",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Installs the handler (once per process; later calls do nothing). `notice` is printed on
/// the first stop signal, with the signal's name.
pub fn install(notice: &'static str) {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // A file grown past `ulimit -f` sends SIGXFSZ, which kills at once by default; caught,
        // the write fails with EFBIG instead and is reported like any failed write.
        let _ = signal_hook::flag::register(
            SIGXFSZ,
            std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        );
        let Ok(mut signals) = signal_hook::iterator::Signals::new(STOP_SIGNALS) else {
            return;
        };
        std::thread::spawn(move || {
            for signal in signals.forever() {
                if SIGNAL.swap(signal, Ordering::SeqCst) != 0 {
                    std::process::exit(128 + signal);
                }
                eprintln!("\n{}: {notice}", signal_name(signal));
            }
        });
    });
}

/// Whether a stop was requested.
pub fn requested() -> bool {
    SIGNAL.load(Ordering::SeqCst) != 0
}

/// Asks the sweep to stop as Ctrl-C would (for tests and embedding programs).
pub fn request() {
    let _ = SIGNAL.compare_exchange(0, SIGINT, Ordering::SeqCst, Ordering::SeqCst);
}

/// The status a stopped process exits with: 128 + the signal that stopped it (130 for
/// Ctrl-C or [`request`], 143 for SIGTERM, 129 for SIGHUP).
pub fn exit_code() -> i32 {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => EXIT_CODE,
        signal => 128 + signal,
    }
}
