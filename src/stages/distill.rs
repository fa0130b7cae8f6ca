//! One round of progressive distillation (Salimans & Ho 2022, Alg. 2) in sigma space. The
//! student starts from its teacher (the previous round's model). Each step draws training
//! data x0, a level sigma of the student's grid (uniform over its levels), and x = x0 +
//! sigma z; the teacher takes two deterministic DDIM steps sigma -> sigma' -> sigma'' on its
//! own grid (x' = D + (sigma'/sigma)(x - D)), and the student learns the denoiser that
//! reaches x'' in one step from x: D~ = (x'' - (sigma''/sigma) x) / (1 - sigma''/sigma), which
//! is x'' itself on the last step (sigma'' = 0). The loss is the paper's truncated SNR
//! weighting on the denoiser error, max(1, 1/sigma^2) ||D_student - D~||^2 averaged over the
//! dimensions (`snr_trunc` of the reference code; in sigma space SNR = 1/sigma^2): at high
//! noise plain SNR weighting would give the first steps, which carry the most of a few-step
//! sample, almost no weight. Adam at a constant rate, no EMA (the reference code's
//! ema_decay 0); the weights, Adam's moments and the random stream are snapshotted like
//! training's, so an interrupted round resumes exactly.

use std::sync::Arc;

use candle_core::{Device, Tensor};

use crate::dataset::Samples;
use crate::network::{sigma_column, ScoreModel};
use crate::optim::{sorted_vars, AdamParams};
use crate::parameterisation::Model;
use crate::rng::{Rng, Stream};
use crate::sampler::steps::{denoise_at, euler_step, ode_derivative};
use crate::schedule::{Grid, GridRequest, Schedule, Spacing};
use crate::train::resumable::{self, Fit, Hooks, NetworkTrainee, Plan};
use crate::train::{History, LevelRecords, LevelState, Records, Snapshot, TrainError};

/// What one round of distillation needs, and nothing else.
#[derive(Clone)]
pub struct RoundJob {
    /// The training set the teacher learnt from (a latent trial's scaled latents).
    pub data: Arc<Samples>,
    pub schedule: Arc<dyn Schedule>,
    pub seed: u64,
    pub device: Device,
    /// The round (1 distils the trained model itself).
    pub round: usize,
    /// The teacher's DDIM steps of round 0.
    pub teacher_steps: usize,
    pub steps: usize,
    pub lr: f64,
    pub batch_size: usize,
    /// Steps between loss records.
    pub log_every: usize,
}

/// The teacher's grid: the schedule's own `steps` levels and the final 0, the grid `ddim`
/// (or any sampler on the default spacing) walks at `steps` steps.
pub fn teacher_grid(schedule: &dyn Schedule, steps: usize) -> Vec<f64> {
    Grid::new(schedule, GridRequest::new(Some(steps), Spacing::Default))
        .sigmas()
        .to_vec()
}

/// Round `round`'s grid: every 2^round-th level of the teacher's grid, ending in its 0
/// (its length minus one must be a multiple of 2^round).
pub fn round_grid(teacher: &[f64], round: usize) -> Vec<f64> {
    teacher.iter().copied().step_by(1 << round).collect()
}

/// Deterministic DDIM along `sigmas` (descending, ending in 0), one evaluation per step, in
/// the arithmetic of the `ddim` sampler at eta = 0.
pub fn ddim_walk(
    model: &dyn ScoreModel,
    x: &Tensor,
    sigmas: &[f64],
) -> candle_core::Result<Tensor> {
    let mut x = x.clone();
    for pair in sigmas.windows(2) {
        let denoised = denoise_at(model, &x, pair[0])?;
        x = euler_step(
            &x,
            &ode_derivative(&x, &denoised, pair[0])?,
            pair[0],
            pair[1],
        )?;
    }
    Ok(x)
}

/// One deterministic DDIM step for per-row levels: D + (next / sigma)(x - D).
fn ddim_step(
    model: &dyn ScoreModel,
    x: &Tensor,
    sigma: &Tensor,
    next: &Tensor,
) -> candle_core::Result<Tensor> {
    let denoised = model.denoise(x, sigma)?;
    denoised.add(&x.sub(&denoised)?.broadcast_mul(&next.div(sigma)?)?)
}

/// The student's target for per-row levels sigma > mid > next (columns): the teacher's two
/// DDIM steps to x'', then D~ = (x'' - (next / sigma) x) / (1 - next / sigma), which is x''
/// where next = 0. Detached: no gradient reaches the teacher.
pub fn two_step_target(
    teacher: &dyn ScoreModel,
    x: &Tensor,
    sigma: &Tensor,
    mid: &Tensor,
    next: &Tensor,
) -> candle_core::Result<Tensor> {
    let halfway = ddim_step(teacher, x, sigma, mid)?.detach();
    let arrived = ddim_step(teacher, &halfway, mid, next)?.detach();
    let ratio = next.div(sigma)?;
    arrived
        .sub(&x.broadcast_mul(&ratio)?)?
        .broadcast_div(&(ratio.neg()? + 1.0)?)
}

/// Trains `student` (already holding its teacher's weights) for the job's round, from the
/// teacher's grid of the round before. On return the student's variables hold the trained
/// weights.
pub fn distill_round(
    teacher: &Model,
    student: &Model,
    job: &RoundJob,
    resume: Option<Snapshot<LevelState>>,
    hooks: Hooks<LevelState>,
) -> Result<History, TrainError> {
    let fine = round_grid(
        &teacher_grid(job.schedule.as_ref(), job.teacher_steps),
        job.round - 1,
    );
    // Student level j goes from fine[2j] over fine[2j + 1] to fine[2j + 2].
    let levels: Vec<f64> = fine
        .iter()
        .copied()
        .step_by(2)
        .filter(|s| *s > 0.0)
        .collect();
    let Some(network) = student.network() else {
        return Ok(History {
            levels,
            ..History::default()
        });
    };
    let diverged = |step, loss| TrainError::Diverged {
        step,
        loss,
        what: "truncated SNR weighting (distillation)".into(),
        fix: format!("lower `distill.lr` (now {})", job.lr),
    };
    let fit = Fit {
        plan: Plan {
            steps: job.steps,
            log_every: job.log_every,
            adam: AdamParams::with_lr(job.lr),
            ema_decay: 0.0,
        },
        trainee: &NetworkTrainee(network),
        // A stream of its own per round (not the teacher's training draws again).
        rng: Rng::new(
            job.seed
                .wrapping_add(0x9e37_79b9_7f4a_7c15u64.wrapping_mul(job.round as u64)),
            Stream::TrainingNoise,
        ),
        records: LevelRecords::new(levels.clone(), job.steps),
        diverged: &diverged,
    };
    let (records, seconds) = resumable::run(fit, resume, hooks, &mut |_, rng| {
        round_loss(teacher, student, job, (&fine, &levels), rng)
    })?;
    Ok(records.finish(seconds))
}

/// One batch of a round: the student's truncated-SNR-weighted error against the two-step
/// target at levels drawn uniformly from its grid.
fn round_loss(
    teacher: &Model,
    student: &Model,
    job: &RoundJob,
    (fine, levels): (&[f64], &[f64]),
    rng: &mut Rng,
) -> Result<(Tensor, <LevelRecords as Records>::Step), TrainError> {
    let (data, device, batch) = (job.data.as_ref(), &job.device, job.batch_size);
    let indices: Vec<usize> = (0..batch).map(|_| rng.below(data.len())).collect();
    let x0 = data.gather(&indices).to_tensor(device)?;
    let draws: Vec<(f64, usize)> = (0..batch)
        .map(|_| {
            let j = rng.below(levels.len());
            (levels[j], j)
        })
        .collect();
    let column = |offset: usize| -> candle_core::Result<Tensor> {
        let values: Vec<f64> = draws.iter().map(|(_, j)| fine[2 * j + offset]).collect();
        sigma_column(&values, device)
    };
    let (sigma, mid, next) = (column(0)?, column(1)?, column(2)?);
    let dim = data.dim();
    let z = Tensor::from_vec(rng.normal_f32(batch * dim), (batch, dim), device)?;
    let x = x0.add(&z.broadcast_mul(&sigma)?)?;
    let target = two_step_target(teacher, &x, &sigma, &mid, &next)?;
    let error = student.denoise(&x, &sigma)?.sub(&target)?;
    // 0.5 ||(D - D~) / sigma||^2: the normalised per-level loss training records.
    let normalised = (error.broadcast_div(&sigma)?.sqr()?.sum(1)? * 0.5)?;
    let weights: Vec<f32> = draws
        .iter()
        .map(|(s, _)| (1.0f64).max(1.0 / (s * s)) as f32)
        .collect();
    let weights = Tensor::from_vec(weights, batch, device)?;
    let loss = (error.sqr()?.mean(1)?.mul(&weights)?).mean_all()?;
    Ok((loss.clone(), (loss.detach(), normalised.detach(), draws)))
}

/// Copies `from`'s weights into `to` (the same architecture): a student starts as its
/// teacher.
pub fn copy_weights(from: &Model, to: &Model) -> candle_core::Result<()> {
    let (Some(from), Some(to)) = (from.network(), to.network()) else {
        return Ok(());
    };
    for ((_, source), (_, target)) in sorted_vars(from.variables())
        .iter()
        .zip(sorted_vars(to.variables()))
    {
        target.set(source.as_tensor())?;
    }
    Ok(())
}
