//! A distilled trial's model: round r's student, each round a model folder of its own
//! (`models/<round id>/`, saved like any model), found or trained in turn. The newest
//! finished round at or below r is loaded (the teacher only when no round is finished), and
//! each later round is trained from the one before, resuming from its snapshot
//! (`models/<round id>.checkpoint.safetensors`) when a run was stopped.

use std::io::Write;
use std::path::Path;

use super::models::{
    fresh_model, load_finished, model_lock, obtain_trained, train_and_save, train_failure, Job,
};
use super::RunError;
use crate::parameterisation::Model;
use crate::results::SweepFolder;
use crate::train::distill::{copy_weights, distill_round};
use crate::train::{History, TrainError};
use crate::trial::{DistillPlan, Trial};

/// Loads round `plan.settings.rounds`' student, or distils it (and the rounds before it that
/// are not finished) from the trial's trained model.
pub(super) fn obtain_student(
    trial: &Trial,
    plan: &DistillPlan,
    folder: &SweepFolder,
    file: &Path,
    out: &mut dyn Write,
) -> Result<(Model, History), RunError> {
    let last = plan.rounds.len() - 1;
    let mut found = None;
    for round in (1..=last).rev() {
        let model = fresh_model(trial, file)?;
        if let Some(history) = load_finished(&model, &folder.model(&plan.rounds[round].id), trial)?
        {
            found = Some((round, model, history));
            break;
        }
    }
    let (first, mut teacher, mut history) = match found {
        Some((round, model, history)) => (round + 1, model, history),
        None => {
            let base = &plan.rounds[0];
            let (model, history) =
                obtain_trained(trial, &base.id, &base.training, folder, file, out)?;
            (1, model, history)
        }
    };
    for round in first..=last {
        let student = fresh_model(trial, file)?;
        let id = &plan.rounds[round].id;
        let lock = model_lock(id);
        let _held = lock.lock().unwrap_or_else(|e| e.into_inner());
        // Another `--jobs` group may have distilled it while this one waited.
        history = match load_finished(&student, &folder.model(id), trial)? {
            Some(history) => history,
            None => {
                copy_weights(&teacher, &student)
                    .map_err(|e| train_failure(trial, file, e.into()))?;
                distil(trial, plan, round, &teacher, &student, folder, file, out)?
            }
        };
        teacher = student;
    }
    Ok((teacher, history))
}

/// Trains round `round`'s student (holding its teacher's weights) and saves it.
#[allow(clippy::too_many_arguments)]
fn distil(
    trial: &Trial,
    plan: &DistillPlan,
    round: usize,
    teacher: &Model,
    student: &Model,
    folder: &SweepFolder,
    file: &Path,
    out: &mut dyn Write,
) -> Result<History, RunError> {
    let Some(variables) = student.network().map(|n| n.variables()) else {
        return Err(train_failure(
            trial,
            file,
            TrainError::Resume("an exact model has nothing to distil".into()),
        ));
    };
    let settings = &plan.settings;
    let model = &plan.rounds[round];
    let job = Job {
        id: &model.id,
        config: &model.training,
        steps: settings.steps,
        what: "distillation",
        verb: "distil",
        message: format!(
            "{} (round {round}: {} steps)",
            model.id,
            settings.student_steps(round)
        ),
    };
    train_and_save(
        trial,
        job,
        variables,
        (folder, file),
        out,
        |resume, hooks| {
            let job = trial.round_job(plan, round)?;
            distill_round(teacher, student, &job, resume, hooks)
        },
    )
}
