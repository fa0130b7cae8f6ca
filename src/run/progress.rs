//! Progress bars for training and sampling.

use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::evaluate::{self, Around, EvaluateError, Evaluation};
use crate::parameterisation::Model;
use crate::trial::Trial;

/// Every bar of the process, so that the bars of training groups run at once (`--jobs`)
/// stack instead of overwriting each other.
fn bars() -> &'static MultiProgress {
    static BARS: std::sync::OnceLock<MultiProgress> = std::sync::OnceLock::new();
    BARS.get_or_init(MultiProgress::new)
}

pub(super) fn bar(len: u64, template: &str) -> ProgressBar {
    let bar = bars().add(ProgressBar::new(len));
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

pub(super) fn sample_with_progress(
    trial: &Trial,
    network: &Model,
    around: &Around,
) -> Result<Evaluation, EvaluateError> {
    let progress = bar(0, "  sample [{bar:30}] {pos}/{len} sigma {prefix}");
    let result = evaluate::evaluate(trial, network, around, &mut |info| {
        progress.set_length(info.total as u64);
        progress.set_position(info.step as u64);
        progress.set_prefix(format!("{:.4}", info.sigma));
    });
    progress.finish_and_clear();
    result
}
