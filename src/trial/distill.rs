//! The `distill:` section: progressive distillation (Salimans & Ho 2022). Round r's student
//! takes N / 2^r deterministic DDIM steps, N = `teacher_steps`, on every 2^r-th level of the
//! teacher's grid (the schedule's own N-level grid and the final 0); round r is trained from
//! round r - 1's model (round 0: the model the `train:` section trains) to match two of its
//! steps with one. Each round is a model of its own, with its own id and folder.
//!
//! Resolution checks what makes a student meaningful: a trainable, unconditional network; a
//! sampler that asks for exactly N / 2^r steps on the schedule's own spacing; and a sampler
//! whose step *is* deterministic DDIM, checked by running it, not by its name: on the
//! student's grid with the exact linear denoiser of N(0, 1) data, it must give the DDIM
//! recurrence x' = D + (sigma' / sigma)(x - D). The trial's sampler then walks the student's
//! grid (every 2^r-th teacher level), which the schedule's own N / 2^r grid is not in general.

use serde_json::Value;

use super::naming::stable_hash;
use crate::config::{number, ConfigError, Params, Provenance, RawParams};
use crate::network::Architecture;
use crate::params;
use crate::sampler::Sampler;
use crate::schedule::{GridRequest, Schedule, Spacing};
use crate::stages::distill::{round_grid, teacher_grid};
use crate::stages::student_grid::{check_deterministic_ddim, on_student_grid};

params! {
    /// Progressive distillation (the `distill:` section; Salimans & Ho 2022).
    pub struct DistillSettings {
        /// Rounds of distillation r: the trial samples round r's student, which takes teacher_steps / 2^r deterministic DDIM steps (0: the trained model itself, nothing recorded; `auto`: the round whose student takes `sampler.steps`).
        rounds: Rounds = Rounds::Count(0),
        /// N: the teacher's deterministic DDIM steps on the schedule's own grid; a multiple of 2^rounds.
        teacher_steps: usize = 64 => 1..=crate::sampler::MAX_STEPS,
        /// Optimiser steps of each round.
        steps: usize = 2000 => 1..=crate::config::limits::MAX_STEPS,
        /// Adam's learning rate in each round (constant; the student starts from its teacher).
        lr: f64 = 1e-4,
        /// Examples per step (noised training data at the student's levels).
        batch_size: usize = 256 => 1..=crate::config::limits::MAX_BATCH,
    }
}

/// How many rounds: a count, or `auto` (as many as make the sampler's step count).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rounds {
    Count(usize),
    Auto,
}

impl Rounds {
    /// The count (`auto` before it is resolved: 0).
    pub fn count(self) -> usize {
        match self {
            Rounds::Count(k) => k,
            Rounds::Auto => 0,
        }
    }
}

impl serde::Serialize for Rounds {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Rounds::Count(k) => serializer.serialize_u64(*k as u64),
            Rounds::Auto => serializer.serialize_str("auto"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Rounds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Rounds;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a round count (0, 1, 2, ...) or `auto`")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Rounds, E> {
                Ok(Rounds::Count(v.min(usize::MAX as u64) as usize))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Rounds, E> {
                u64::try_from(v)
                    .map(|v| Rounds::Count(v as usize))
                    .map_err(|_| E::custom(format!("a round count cannot be negative ({v})")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Rounds, E> {
                match v {
                    "auto" => Ok(Rounds::Auto),
                    other => Err(E::custom(format!(
                        "expected a round count or `auto`, not `{other}`"
                    ))),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Most rounds: 2^20 teacher steps is far past any grid a sampler walks.
const MAX_ROUNDS: usize = 20;

/// One round's model: its folder id and the training config it is saved with.
#[derive(Debug, Clone)]
pub struct RoundModel {
    pub id: String,
    pub training: Value,
}

/// What a distilled trial samples and how each round's model is obtained.
#[derive(Debug, Clone)]
pub struct DistillPlan {
    pub settings: DistillSettings,
    /// Round k's model for k = 0 (the teacher as trained) ..= `settings.rounds`.
    pub rounds: Vec<RoundModel>,
}

/// Reads and checks the section, `auto` resolved from the sampler's step count
/// (`sampler_steps`): `None` when `rounds` is 0 (the trial is the teacher's and nothing is
/// recorded). `auto` is recorded as its count, even 0 (the teacher, on the students' line).
pub(super) fn read(
    raw: &RawParams,
    sampler_steps: Option<usize>,
) -> Result<Option<DistillSettings>, ConfigError> {
    let mut settings = DistillSettings::from_raw(raw)?;
    check_training(&settings, raw)?;
    let auto = settings.rounds == Rounds::Auto;
    if auto {
        settings.rounds = Rounds::Count(auto_rounds(&settings, raw, sampler_steps)?);
    }
    let rounds = settings.rounds.count();
    if rounds > MAX_ROUNDS || settings.teacher_steps % (1usize << rounds.min(63)) != 0 {
        let most = settings
            .teacher_steps
            .trailing_zeros()
            .min(MAX_ROUNDS as u32);
        return Err(raw.invalid(
            "rounds",
            format!(
                "{} round(s) halve `teacher_steps` ({}) {} time(s), but it is not a multiple \
                 of 2^{}",
                rounds, settings.teacher_steps, rounds, rounds
            ),
            format!(
                "set `distill.rounds` to at most {most}, or `distill.teacher_steps` to a power \
                 of two such as 64"
            ),
        ));
    }
    Ok((rounds > 0 || auto).then_some(settings))
}

fn example(key: &str, value: &str) -> String {
    format!("set e.g. `distill.{key}: {value}`")
}

/// The rounds' training settings within their ranges.
fn check_training(settings: &DistillSettings, raw: &RawParams) -> Result<(), ConfigError> {
    if settings.teacher_steps == 0 {
        return Err(raw.invalid(
            "teacher_steps",
            "must be at least 1",
            example("teacher_steps", "64"),
        ));
    }
    if settings.steps == 0 {
        return Err(raw.invalid("steps", "must be at least 1", example("steps", "2000")));
    }
    raw.check_within(
        "steps",
        settings.steps as f64,
        (1.0, crate::config::limits::MAX_STEPS as f64),
        "optimiser steps per round",
        &example("steps", "2000"),
    )?;
    raw.check_within(
        "batch_size",
        settings.batch_size as f64,
        (1.0, crate::config::limits::MAX_BATCH as f64),
        "examples per step",
        &example("batch_size", "256"),
    )?;
    if !(settings.lr > 0.0 && settings.lr <= crate::config::limits::MAX_LR) {
        return Err(raw.invalid(
            "lr",
            format!(
                "must be positive, finite and at most {}, not {}",
                number(crate::config::limits::MAX_LR),
                number(settings.lr)
            ),
            example("lr", "0.0001"),
        ));
    }
    Ok(())
}

/// `rounds: auto`: as many rounds as halve `teacher_steps` to the sampler's step count.
fn auto_rounds(
    settings: &DistillSettings,
    raw: &RawParams,
    sampler_steps: Option<usize>,
) -> Result<usize, ConfigError> {
    let n = settings.teacher_steps;
    let derived = sampler_steps
        .filter(|s| *s > 0 && n.is_multiple_of(*s) && (n / s).is_power_of_two())
        .map(|s| (n / s).trailing_zeros() as usize);
    derived.ok_or_else(|| {
        let steps = sampler_steps.map_or("not a count".to_string(), |s| s.to_string());
        raw.invalid(
            "rounds",
            format!(
                "`auto` takes as many rounds as halve distill.teacher_steps ({n}) to \
                 `sampler.steps`, but that is {steps}"
            ),
            format!(
                "set `sampler.steps` to {n} halved 0 or more times ({}, {}, ...), or give \
                 `distill.rounds` as a number",
                n,
                n / 2
            ),
        )
    })
}

impl DistillSettings {
    /// The steps round `round`'s student takes.
    pub fn student_steps(&self, round: usize) -> usize {
        self.teacher_steps >> round
    }

    /// The section as the resolved config records it.
    pub(super) fn resolved(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// The `distill` section of a trial's config (empty when absent).
pub(super) fn section<'p>(
    root: &figment::value::Dict,
    provenance: &'p Provenance,
) -> Result<RawParams<'p>, ConfigError> {
    let dict = super::slots::section_dict(root, "distill", provenance)?;
    Ok(RawParams::new("distill", dict, provenance))
}

/// Records the section in the resolved config when [`read`] says so.
pub(super) fn record(
    resolved: &mut serde_json::Map<String, Value>,
    settings: Option<&DistillSettings>,
) {
    if let Some(settings) = settings {
        resolved.insert("distill".into(), settings.resolved());
    }
}

/// What the network, schedule and sampler of a trial are, for [`plan`].
struct Subject<'a> {
    network: &'a str,
    trainable: bool,
    classes: usize,
    schedule: &'a dyn Schedule,
    sampler_raw: &'a RawParams<'a>,
    sampler_kind: &'a str,
}

/// The trial's model id, training config, sampler and distillation plan: as given without
/// rounds, else those of [`plan`].
#[allow(clippy::type_complexity)]
pub(super) fn apply(
    (settings, raw): (Option<DistillSettings>, &RawParams),
    (train_id, training): (String, Value),
    (network, architecture): (&str, &dyn Architecture),
    schedule: &dyn Schedule,
    (sampler, sampler_raw, sampler_kind): (Box<dyn Sampler>, &RawParams, &str),
) -> Result<(String, Value, Box<dyn Sampler>, Option<DistillPlan>), ConfigError> {
    let Some(settings) = settings.filter(|s| s.rounds.count() > 0) else {
        return Ok((train_id, training, sampler, None));
    };
    let subject = Subject {
        network,
        trainable: architecture.trainable(),
        classes: architecture.classes(),
        schedule,
        sampler_raw,
        sampler_kind,
    };
    let (id, training, sampler, plan) = plan(settings, raw, subject, sampler, training)?;
    Ok((id, training, sampler, Some(plan)))
}

/// The plan of a distilled trial: checks that its network, schedule and sampler fit, and
/// returns the student's id and training config (the trial's), the trial's sampler walking
/// the student's grid, and each round's model.
fn plan(
    settings: DistillSettings,
    raw: &RawParams,
    subject: Subject,
    sampler: Box<dyn Sampler>,
    training: Value,
) -> Result<(String, Value, Box<dyn Sampler>, DistillPlan), ConfigError> {
    check_network(raw, &subject)?;
    let (r, n) = (settings.rounds.count(), settings.teacher_steps);
    check_sampler_grid(sampler.grid(), (r, n), &subject)?;
    let teacher = teacher_grid(subject.schedule, n);
    if teacher.len() != n + 1 || teacher.windows(2).any(|w| w[1] >= w[0]) {
        return Err(raw.invalid(
            "teacher_steps",
            format!(
                "the schedule's own grid at {n} steps has {} distinct level(s), not {n}, so its \
                 levels cannot be halved",
                teacher.len() - 1
            ),
            "lower `distill.teacher_steps` to at most the schedule's level count",
        ));
    }
    let sigmas = round_grid(&teacher, r);
    check_deterministic_ddim(sampler.as_ref(), subject.schedule, &sigmas).map_err(|found| {
        subject.sampler_raw.invalid(
            "kind",
            format!(
                "the student learns to replace two deterministic DDIM steps with one, but \
                 sampler `{}` takes other steps on its grid ({found})",
                subject.sampler_kind
            ),
            format!(
                "sample students with deterministic DDIM: `sampler: {{kind: ddim, eta: 0, \
                 steps: {}}}` (`euler` is the same step in sigma space)",
                settings.student_steps(r)
            ),
        )
    })?;
    let rounds = round_models(&settings, &training, subject.network);
    let last = rounds[r].clone();
    let plan = DistillPlan { settings, rounds };
    Ok((
        last.id,
        last.training,
        on_student_grid(sampler, sigmas),
        plan,
    ))
}

/// A student needs a trained, unconditional network to learn from.
fn check_network(raw: &RawParams, subject: &Subject) -> Result<(), ConfigError> {
    let off = "remove the `distill` section (or set `distill.rounds: 0`)";
    if !subject.trainable {
        return Err(raw.invalid(
            "rounds",
            format!(
                "network `{}` is exact: there is no trained model to distil",
                subject.network
            ),
            format!("{off}, or use a trainable network such as `mlp`"),
        ));
    }
    if subject.classes > 0 {
        return Err(raw.invalid(
            "rounds",
            format!(
                "network `{}` is class-conditional ({} classes); students learn the \
                 unconditional DDIM map",
                subject.network, subject.classes
            ),
            format!("{off}, or set `network.classes: 0`"),
        ));
    }
    Ok(())
}

/// The sampler asks for exactly round `r`'s student steps (`n` halved `r` times) on the
/// schedule's own spacing.
fn check_sampler_grid(
    request: GridRequest,
    (r, n): (usize, usize),
    subject: &Subject,
) -> Result<(), ConfigError> {
    let student = n >> r;
    let ks: Vec<usize> = (1..=(n.trailing_zeros() as usize).clamp(1, 3)).collect();
    let list = |f: &dyn Fn(usize) -> usize| {
        let items: Vec<String> = ks.iter().map(|k| f(*k).to_string()).collect();
        items.join(", ")
    };
    match request.steps {
        Some(steps) if steps == student => {}
        Some(steps) => {
            return Err(subject.sampler_raw.invalid(
                "steps",
                format!(
                    "round {r}'s student takes {student} steps (distill.teacher_steps {n} halved \
                     {r} time(s)), but `sampler.steps` is {steps}"
                ),
                format!(
                    "set `sampler.steps: {student}`, or sweep them together: `zip: \
                     {{distill.rounds: [{}], sampler.steps: [{}]}}`",
                    list(&|k| k),
                    list(&|k| n >> k)
                ),
            ))
        }
        None => {
            return Err(subject.sampler_raw.invalid(
                "kind",
                format!(
                    "sampler `{}` does not take a step count; round {r}'s student takes \
                     {student} deterministic DDIM steps",
                    subject.sampler_kind
                ),
                format!("use `sampler: {{kind: ddim, eta: 0, steps: {student}}}`"),
            ))
        }
    }
    if request.spacing != Spacing::Default {
        return Err(subject.sampler_raw.invalid(
            "grid",
            format!(
                "a student walks every {}-th level of the teacher's grid (the schedule's own), \
                 not a `{}` grid",
                1 << r,
                request.spacing
            ),
            "remove `sampler.grid` (or set `grid: default`)",
        ));
    }
    Ok(())
}

/// Round k's model for k = 0 (the teacher, with the trial's training config) ..= rounds:
/// the training config with the section at k rounds, and its id.
fn round_models(settings: &DistillSettings, training: &Value, network: &str) -> Vec<RoundModel> {
    (0..=settings.rounds.count())
        .map(|k| {
            let mut config = training.clone();
            if k > 0 {
                let mut section = settings.clone();
                section.rounds = Rounds::Count(k);
                if let Some(map) = config.as_object_mut() {
                    map.insert("distill".into(), section.resolved());
                }
            }
            RoundModel {
                id: format!("{network}-{}", stable_hash(&config)),
                training: config,
            }
        })
        .collect()
}
