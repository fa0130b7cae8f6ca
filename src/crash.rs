//! Named points where a test can kill or signal the runner, to prove that a sweep killed or
//! stopped anywhere loses nothing. `SCORELAB_KILL_AT=name:N` aborts the process (no
//! destructors, no flushing: what SIGKILL does) the N-th time execution passes the point
//! `name`; `SCORELAB_SIGNAL_AT=name:N:SIG` (`INT`, `TERM` or `HUP`) sends the process that
//! signal there instead, as a user, `timeout` or a scheduler would. Without the variables a
//! point costs one atomic load.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// The variable that arms a point to abort.
pub const VARIABLE: &str = "SCORELAB_KILL_AT";

/// The variable that arms a point to send a signal.
pub const SIGNAL_VARIABLE: &str = "SCORELAB_SIGNAL_AT";

/// What an armed point does.
enum Action {
    Abort,
    Raise(i32),
}

struct Armed {
    name: String,
    at: usize,
    seen: AtomicUsize,
    action: Action,
}

fn parse(value: &str, signalled: bool) -> Option<Armed> {
    let (point, action) = if signalled {
        let (point, signal) = value.rsplit_once(':')?;
        let signal = match signal {
            "INT" => SIGINT,
            "TERM" => SIGTERM,
            "HUP" => SIGHUP,
            _ => return None,
        };
        (point, Action::Raise(signal))
    } else {
        (value, Action::Abort)
    };
    let (name, at) = point.rsplit_once(':')?;
    Some(Armed {
        name: name.to_string(),
        at: at.parse().ok()?,
        seen: AtomicUsize::new(0),
        action,
    })
}

fn armed() -> &'static [Armed] {
    static ARMED: OnceLock<Vec<Armed>> = OnceLock::new();
    ARMED.get_or_init(|| {
        [(VARIABLE, false), (SIGNAL_VARIABLE, true)]
            .into_iter()
            .filter_map(|(variable, signalled)| parse(&std::env::var(variable).ok()?, signalled))
            .collect()
    })
}

/// Passes the point `name`, or dies or is signalled there when a test armed it.
pub fn point(name: &str) {
    for armed in armed() {
        if armed.name == name && armed.seen.fetch_add(1, Ordering::SeqCst) + 1 == armed.at {
            match armed.action {
                Action::Abort => std::process::abort(),
                Action::Raise(signal) => {
                    let _ = signal_hook::low_level::raise(signal);
                    // The handler's thread takes the signal from its pipe; give it the time a
                    // signal from outside would have.
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        }
    }
}
