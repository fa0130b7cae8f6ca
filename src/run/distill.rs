//! A distilled trial's model: round r's student, each round a model of its own in the
//! artifact store (`models/<round id>/`), found or trained in turn. The newest finished
//! round at or below r is loaded (the teacher only when no round is finished), and each
//! later round is trained from the one before, resuming from its snapshot
//! (`models/<round id>.checkpoint.safetensors`) when a run was stopped.

use std::io::Write;
use std::path::Path;

use super::error::RunError;
use super::models::{
    fresh_model, load_finished, obtain_or_train, obtain_trained, Job, TrainingPlace, MODEL_FILES,
};
use crate::artifact::Artifact;
use crate::parameterisation::Model;
use crate::results::SweepFolder;
use crate::stages::distill::{copy_weights, distill_round};
use crate::train::History;
use crate::trial::{DistillPlan, Trial};

/// Loads round `plan.settings.rounds`' student, or distils it (and the rounds before it that
/// are not finished) from the trial's trained model.
pub(super) fn obtain_student(
    trial: &Trial,
    plan: &DistillPlan,
    place: &TrainingPlace,
    out: &mut dyn Write,
) -> Result<(Model, History), RunError> {
    let last = plan.rounds.len() - 1;
    let found = newest_finished(trial, plan, place.folder, place.file)?;
    let (first, mut teacher, mut history) = match found {
        Some((round, model, history)) => (round + 1, model, history),
        None => {
            let base = &plan.rounds[0];
            let (model, history) = obtain_trained(trial, (&base.id, &base.training), place, out)?;
            (1, model, history)
        }
    };
    for round in first..=last {
        let student = fresh_model(trial, place.file)?;
        history = distil(trial, (plan, round), (&teacher, &student), place, out)?;
        teacher = student;
    }
    Ok((teacher, history))
}

/// The newest round whose folder is complete, loaded.
fn newest_finished(
    trial: &Trial,
    plan: &DistillPlan,
    folder: &SweepFolder,
    file: &Path,
) -> Result<Option<(usize, Model, History)>, RunError> {
    for round in (1..plan.rounds.len()).rev() {
        let model_folder = folder.model(&plan.rounds[round].id);
        if !Artifact::new(&model_folder, &MODEL_FILES).is_complete() {
            continue;
        }
        let model = fresh_model(trial, file)?;
        let Some(variables) = model.network().map(|n| n.variables()) else {
            return Ok(None);
        };
        if let Some(history) = load_finished(variables, &model_folder, &trial.device)? {
            return Ok(Some((round, model, history)));
        }
    }
    Ok(None)
}

/// Round `round`'s student: loaded when another `--jobs` group or an earlier run finished
/// it, else trained from its teacher's weights and saved.
fn distil(
    trial: &Trial,
    (plan, round): (&DistillPlan, usize),
    (teacher, student): (&Model, &Model),
    place: &TrainingPlace,
    out: &mut dyn Write,
) -> Result<History, RunError> {
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
        // A round's student is no trial's model: it has a run of its own.
        runs: vec![place.folder.tensorboard(&model.id)],
    };
    let obtained = obtain_or_train(trial, job, student, place, out, |resume, hooks| {
        copy_weights(teacher, student)?;
        let job = trial.round_job(plan, round, place.data.clone());
        distill_round(teacher, student, &job, resume, hooks)
    });
    Ok(obtained?.into_inner())
}
