//! `--jobs N`: the local launcher runs N training groups at once, each on its own thread with
//! the sweep's `threads` for its computation. Which group a worker takes next depends on
//! timing, but nothing a trial computes does: its numbers come from its own seed, and the
//! rows are put back in sweep order, so the tables, plots and report are those of `--jobs 1`.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};

use super::error::RunError;
use super::group::GroupRunner;
use crate::results::{SweepFolder, TrialRow};
use crate::trial::Trial;

/// Most concurrent jobs: beyond the cores of any machine this runs on, they only contend.
pub const MAX_JOBS: usize = 256;

/// What the groups produced: one row per trial (by index), and the count of trials found
/// finished earlier.
pub(super) struct Outcome {
    pub rows: Vec<Option<TrialRow>>,
    pub skipped: usize,
}

/// Sends whole lines to the thread that owns the output, so that the lines of concurrent
/// groups interleave but never mix.
struct LineSender {
    lines: Sender<Vec<u8>>,
    pending: Vec<u8>,
}

impl Write for LineSender {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(bytes);
        if let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') {
            let rest = self.pending.split_off(end + 1);
            let lines = std::mem::replace(&mut self.pending, rest);
            // The receiver lives until every worker has finished.
            let _ = self.lines.send(lines);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            let _ = self.lines.send(std::mem::take(&mut self.pending));
        }
        Ok(())
    }
}

/// Runs `groups` (training id, member trial indices) with `jobs` workers; the first error
/// stops the workers from starting further groups and is returned.
pub(super) fn run_groups(
    file: &Path,
    trials: &[Trial],
    folder: &SweepFolder,
    groups: &[(String, Vec<usize>)],
    jobs: usize,
    out: &mut dyn Write,
) -> Result<Outcome, RunError> {
    let shared = Shared {
        file,
        trials,
        folder,
        groups,
        next: AtomicUsize::new(0),
        failed: AtomicBool::new(false),
    };
    if jobs <= 1 {
        return shared.run_in_turn(out);
    }
    let results = shared.run_at_once(jobs, out);
    merge(results, trials.len())
}

/// What every worker reads: the sweep, the groups, and which group is next.
struct Shared<'a> {
    file: &'a Path,
    trials: &'a [Trial],
    folder: &'a SweepFolder,
    groups: &'a [(String, Vec<usize>)],
    /// The index of the next group a worker takes.
    next: AtomicUsize,
    /// Set by the first worker that fails, so that no worker starts another group.
    failed: AtomicBool,
}

impl<'a> Shared<'a> {
    /// `--jobs 1`: every group in sweep order on this thread, writing straight to `out`.
    fn run_in_turn(&self, out: &mut dyn Write) -> Result<Outcome, RunError> {
        let mut runner = GroupRunner::new(self.file, self.trials, self.folder);
        for (train_id, members) in self.groups {
            runner.run(train_id, members, out, &mut |_, _| {})?;
        }
        Ok(Outcome {
            rows: runner.rows,
            skipped: runner.skipped,
        })
    }

    /// Runs `jobs` workers (no more than there are groups) and copies their lines to `out`
    /// as they come; returns each worker's runner or error, in worker order.
    fn run_at_once(
        &self,
        jobs: usize,
        out: &mut dyn Write,
    ) -> Vec<Result<GroupRunner<'a>, RunError>> {
        let (lines, received) = channel::<Vec<u8>>();
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..jobs.min(self.groups.len()))
                .map(|_| {
                    let lines = lines.clone();
                    scope.spawn(move || self.work(lines))
                })
                .collect();
            // Only the workers hold senders now, so the loop ends when the last one finishes.
            drop(lines);
            for chunk in received {
                let _ = out.write_all(&chunk);
            }
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    }

    /// One worker: takes the next group until none is left or some worker has failed.
    fn work(&self, lines: Sender<Vec<u8>>) -> Result<GroupRunner<'a>, RunError> {
        let mut out = LineSender {
            lines,
            pending: Vec::new(),
        };
        let mut runner = GroupRunner::new(self.file, self.trials, self.folder);
        while !self.failed.load(Ordering::SeqCst) {
            let g = self.next.fetch_add(1, Ordering::SeqCst);
            let Some((train_id, members)) = self.groups.get(g) else {
                break;
            };
            let result = runner.run(train_id, members, &mut out, &mut |_, _| {});
            if let Err(e) = result {
                self.failed.store(true, Ordering::SeqCst);
                let _ = out.flush();
                return Err(e);
            }
        }
        let _ = out.flush();
        Ok(runner)
    }
}

/// The workers' rows put back by trial index and their skipped counts summed, or the
/// first worker's error.
fn merge(results: Vec<Result<GroupRunner, RunError>>, trials: usize) -> Result<Outcome, RunError> {
    let mut outcome = Outcome {
        rows: vec![None; trials],
        skipped: 0,
    };
    let mut first_error = None;
    for result in results {
        match result {
            Ok(runner) => {
                for (i, row) in runner.rows.into_iter().enumerate() {
                    if row.is_some() {
                        outcome.rows[i] = row;
                    }
                }
                outcome.skipped += runner.skipped;
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(outcome)
}
