//! Limits checked while resolving: settings that are valid numbers but beyond what the
//! machine or a run can sensibly do (threads past the cores, absurd step counts and sizes),
//! each refused with the reason and the source of the value.

use crate::config::limits::MAX_LR;
use crate::config::{self, number, ConfigError, Provenance, RawParams};
use crate::sweep::Experiment;
use crate::train::TrainSettings;

use super::Settings;

/// Settings that belong to the sweep as a whole (one results folder, one thread pool, one
/// evaluation batch: none of them changes a trial's numbers, so none is in its id) must agree
/// between its trials.
pub(super) fn check_sweep_wide(
    experiment: &Experiment,
    settings: &[&Settings],
) -> Result<(), ConfigError> {
    for trial in &settings[1..] {
        let first = settings[0];
        let (key, differs) = if trial.name != first.name {
            ("name", true)
        } else if trial.eval_batch != first.eval_batch {
            ("eval_batch", true)
        } else {
            ("threads", trial.threads != first.threads)
        };
        if differs {
            return Err(ConfigError::Key {
                origin: experiment.file.display().to_string(),
                key: key.to_string(),
                message: format!(
                    "`{key}` differs between trials, but it applies to the whole sweep"
                ),
                fix: format!(
                    "set `{key}` once, outside `sweep` (run separate sweeps to compare values)"
                ),
            });
        }
    }
    Ok(())
}

/// `threads` may not exceed the cores this process may use: candle's pools spin-wait, so
/// more threads than cores makes every step much slower (1000 threads on 2 cores took 314 s
/// for a 3.5 s sweep).
pub(super) fn check_threads(
    experiment: &Experiment,
    settings: &Settings,
) -> Result<(), ConfigError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if settings.threads > cores {
        let root = config::root_dict(&experiment.base_figment(), &experiment.file)?;
        let provenance = Provenance::new(&experiment.file, experiment.base_figment());
        let message = format!(
            "{} threads, but this machine has {cores} core(s) available; candle's thread pools spin-wait, so more threads than cores is much slower, not faster",
            settings.threads
        );
        let fix = format!("set `threads` to {cores} or fewer (1 is robust on a busy machine)");
        return Err(match root.get("threads") {
            Some(value) => provenance.key_error(value, "threads", message, fix),
            None => provenance.default_error("threads", message, fix),
        });
    }
    Ok(())
}

/// Bounds beyond [`TrainSettings::validate`] and the sizes bounded where `TrainSettings`
/// declares them (`steps`, `batch_size`, `train_size`): a learning rate that is a valid
/// number but absurd, refused with the limit and why.
pub(super) fn check_train_limits(
    train: &TrainSettings,
    raw: &RawParams,
) -> Result<(), ConfigError> {
    if train.lr > MAX_LR {
        return Err(raw.invalid(
            "lr",
            format!(
                "{} is above the limit of {} (Adam moves each weight by about `lr` per step, so training would diverge at once)",
                number(train.lr),
                number(MAX_LR)
            ),
            "set e.g. `lr: 0.001`",
        ));
    }
    Ok(())
}

/// Seconds as a rough human duration (`3.2 hours`, `17 years`).
pub fn duration_text(seconds: f64) -> String {
    let units = [
        (365.25 * 86400.0, "years"),
        (86400.0, "days"),
        (3600.0, "hours"),
        (60.0, "minutes"),
    ];
    for (size, name) in units {
        if seconds >= size {
            return format!("{:.1} {name}", seconds / size);
        }
    }
    format!("{seconds:.1} s")
}
