//! Progress of training and sampling: indicatif bars on a terminal; off one (Slurm logs,
//! `| tee`), a plain line every few seconds and one when the work ends; or nothing
//! (`--progress bar|plain|none`). A plain line starts with the trial it works for, as the
//! sweep's own lines do: `[3/18] train mlp-3ee8efcd48 step 1500/4000 loss 0.4312 212 it/s eta 12s`
//! (training: the first unfinished trial of the model's group).

use std::cell::Cell;
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::evaluate::{self, Around, EvaluateError, Evaluation};
use crate::parameterisation::Model;
use crate::trial::Trial;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// Bars that redraw in place (a terminal).
    Bar,
    /// One plain line every few seconds and one at the end (logs).
    Plain,
    /// Nothing.
    None,
}

/// Seconds between plain lines (`SCORELAB_PROGRESS_SECONDS` sets it; default 10).
fn plain_interval() -> Duration {
    seconds_from_env("SCORELAB_PROGRESS_SECONDS", 10.0)
}

/// An interval in seconds from the environment variable `variable` (a finite number ≥ 0),
/// else `default`.
pub(super) fn seconds_from_env(variable: &str, default: f64) -> Duration {
    let seconds = std::env::var(variable)
        .ok()
        .and_then(|text| text.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(default);
    Duration::from_secs_f64(seconds)
}

static MODE: OnceLock<ProgressMode> = OnceLock::new();

thread_local! {
    /// The trial this thread works for, 1-based, and the sweep's trial count.
    static TRIAL: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
}

/// Says which trial (`index` from 0, of `count`) the progress this thread shows next is for.
/// Each training group runs on one thread (`--jobs` gives each its own).
pub(super) fn working_on(index: usize, count: usize) {
    TRIAL.with(|trial| trial.set(Some((index + 1, count))));
}

/// `[3/18]`, or nothing before any [`working_on`].
fn trial_counter() -> String {
    match TRIAL.with(Cell::get) {
        Some((i, n)) => format!("[{i}/{n}]"),
        None => String::new(),
    }
}

/// Chooses how progress is shown for the rest of the process (the first call wins); without
/// a call, bars on a terminal and plain lines otherwise.
pub fn set_mode(mode: Option<ProgressMode>) {
    let _ = MODE.set(mode.unwrap_or_else(default_mode));
}

fn default_mode() -> ProgressMode {
    if std::io::stderr().is_terminal() {
        ProgressMode::Bar
    } else {
        ProgressMode::Plain
    }
}

/// Every bar of the process, so that the bars of training groups run at once (`--jobs`)
/// stack instead of overwriting each other.
fn bars() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(MultiProgress::new)
}

/// What a plain line says: `[3/18] train mlp-3ee8efcd48 step 1500/4000 loss 0.4312 212 it/s
/// eta 12s`.
struct Plain {
    counter: String,
    verb: String,
    quantity: String,
    message: String,
    len: u64,
    position: u64,
    start_position: u64,
    value: String,
    started: Instant,
    printed: Instant,
    every: Duration,
}

impl Plain {
    fn line(&self, done: bool) -> String {
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = (self.position - self.start_position) as f64 / elapsed.max(1e-9);
        let mut line = format!(
            "{:>2} {} {} step {}/{}",
            self.counter, self.verb, self.message, self.position, self.len
        );
        if !self.value.is_empty() {
            line.push_str(&format!(" {} {}", self.quantity, self.value));
        }
        line.push_str(&format!(" {rate:.0} it/s"));
        if done {
            line.push_str(&format!(" done in {elapsed:.1}s"));
        } else if rate > 0.0 {
            let left = self.len.saturating_sub(self.position) as f64 / rate;
            line.push_str(&format!(" eta {left:.0}s"));
        }
        line
    }

    fn print(&mut self, done: bool) {
        self.printed = Instant::now();
        let _ = writeln!(std::io::stderr().lock(), "{}", self.line(done));
    }
}

enum Shown {
    Bar(ProgressBar),
    Plain(Mutex<Plain>),
    Quiet,
}

/// One piece of work's progress, shown as the process's mode says.
pub(super) struct Progress(Shown);

impl Progress {
    /// `len` steps of `verb` (`train`, `sample`) with a running `quantity` (`loss`); `template`
    /// is the bar's indicatif template.
    pub(super) fn new(len: u64, (verb, quantity): (&str, &str), template: &str) -> Progress {
        let shown = match *MODE.get_or_init(default_mode) {
            ProgressMode::Bar => {
                let bar = bars().add(ProgressBar::new(len));
                if let Ok(style) = ProgressStyle::with_template(template) {
                    bar.set_style(style);
                }
                bar.enable_steady_tick(Duration::from_millis(250));
                Shown::Bar(bar)
            }
            ProgressMode::Plain => Shown::Plain(Mutex::new(Plain {
                counter: trial_counter(),
                verb: verb.to_string(),
                quantity: quantity.to_string(),
                message: String::new(),
                len,
                position: 0,
                start_position: 0,
                value: String::new(),
                started: Instant::now(),
                printed: Instant::now(),
                every: plain_interval(),
            })),
            ProgressMode::None => Shown::Quiet,
        };
        Progress(shown)
    }

    fn plain(&self, change: impl FnOnce(&mut Plain)) {
        if let Shown::Plain(plain) = &self.0 {
            if let Ok(mut plain) = plain.lock() {
                change(&mut plain);
            }
        }
    }

    pub(super) fn set_message(&self, message: String) {
        match &self.0 {
            Shown::Bar(bar) => bar.set_message(message),
            _ => self.plain(|p| p.message = message),
        }
    }

    pub(super) fn set_length(&self, len: u64) {
        match &self.0 {
            Shown::Bar(bar) => bar.set_length(len),
            _ => self.plain(|p| p.len = len),
        }
    }

    /// The first position of a resumed run (the rate counts from it).
    pub(super) fn resume_at(&self, position: u64) {
        match &self.0 {
            Shown::Bar(bar) => bar.set_position(position),
            _ => self.plain(|p| {
                p.position = position;
                p.start_position = position;
            }),
        }
    }

    /// The current step and the running value; a plain line when the interval has passed.
    pub(super) fn update(&self, position: u64, value: String) {
        match &self.0 {
            Shown::Bar(bar) => {
                bar.set_position(position);
                bar.set_prefix(value);
            }
            _ => self.plain(|p| {
                p.position = position;
                p.value = value;
                if p.printed.elapsed() >= p.every {
                    p.print(false);
                }
            }),
        }
    }

    /// Clears the bar, or says how the work ended in a plain line.
    pub(super) fn finish(&self) {
        match &self.0 {
            Shown::Bar(bar) => bar.finish_and_clear(),
            _ => self.plain(|p| p.print(true)),
        }
    }
}

pub(super) fn sample_with_progress(
    trial: &Trial,
    network: &Model,
    around: &Around,
) -> Result<Evaluation, EvaluateError> {
    let progress = Progress::new(
        0,
        ("sample", "sigma"),
        "  sample [{bar:30}] {pos}/{len} sigma {prefix}",
    );
    progress.set_message(trial.label.clone());
    let result = evaluate::evaluate(trial, network, around, &mut |info| {
        progress.set_length(info.total as u64);
        progress.update(info.step as u64, format!("{:.4}", info.sigma));
    });
    progress.finish();
    result
}
