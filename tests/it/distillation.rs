//! Progressive distillation: the two-step target against the closed form of Gaussian data,
//! the students' nested grids, a trained student against plain DDIM, round caching, ids and
//! bad input.

use candle_core::{Device, Tensor};
use scorelab::network::{sigma_column, ScoreModel};
use scorelab::rng::{Rng, Stream};
use scorelab::stages::distill::{
    copy_weights, ddim_walk, distill_round, round_grid, teacher_grid, two_step_target,
};
use scorelab::train::{train, Hooks};

use crate::common::resolve;

/// 2D Gaussian data, VP, a small v-prediction MLP; round 1 of an 8-step teacher.
const GAUSSIAN: &str = r#"
seed: 2
num_samples: 300
data: {kind: gmm, means: [[1.0, -0.5]], stds: [0.3], weights: [1.0]}
schedule: vp
weighting: sigma_squared
network: {kind: mlp, hidden: 64, layers: 2, parameterisation: v}
train: {steps: 800, batch_size: 128, lr: 0.003, train_size: 2000, log_every: 100}
distill: {rounds: 1, teacher_steps: 8, steps: 400, lr: 0.0005, batch_size: 128}
sampler: {kind: ddim, eta: 0, steps: 4}
eval: [fd]
"#;

/// The exact denoiser of N(mean, std^2) data in every dimension: it is linear,
/// D(x, sigma) = mean + std^2 / (std^2 + sigma^2) (x - mean).
struct Gaussian {
    mean: f64,
    std: f64,
}

impl Gaussian {
    fn shrink(&self, sigma: f64) -> f64 {
        let s2 = self.std * self.std;
        s2 / (s2 + sigma * sigma)
    }
}

impl ScoreModel for Gaussian {
    fn score(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        self.denoise(x, sigma)?.sub(x)?.broadcast_div(&sigma.sqr()?)
    }

    fn denoise(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        let s2 = self.std * self.std;
        let shrink = ((sigma.sqr()? + s2)?.recip()? * s2)?;
        x.affine(1.0, -self.mean)?
            .broadcast_mul(&shrink)?
            .affine(1.0, self.mean)
    }
}

/// The closed-form student of [`Gaussian`]: at student level sigma (teacher levels sigma >
/// mid > next), two DDIM steps scale x - mean by k1 k2 with k = c + (next / sigma)(1 - c),
/// so D~ = mean + (k1 k2 - r) / (1 - r) (x - mean), r = next / sigma.
fn student_shrink(teacher: &Gaussian, sigma: f64, mid: f64, next: f64) -> f64 {
    let (c1, c2) = (teacher.shrink(sigma), teacher.shrink(mid));
    let k1 = c1 + mid / sigma * (1.0 - c1);
    let k2 = c2 + next / mid * (1.0 - c2);
    let r = next / sigma;
    (k1 * k2 - r) / (1.0 - r)
}

/// A denoiser that is the closed-form student at each level of the student's grid.
struct ClosedFormStudent<'a> {
    teacher: &'a Gaussian,
    /// The teacher's grid the student halves (descending, ending in 0).
    fine: Vec<f64>,
}

impl ScoreModel for ClosedFormStudent<'_> {
    fn score(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        self.denoise(x, sigma)?.sub(x)?.broadcast_div(&sigma.sqr()?)
    }

    fn denoise(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        let level = sigma.flatten_all()?.to_vec1::<f32>()?[0] as f64;
        let j = (0..self.fine.len() / 2)
            .min_by(|a, b| {
                let gap = |i: &usize| (self.fine[2 * i] - level).abs();
                gap(a).total_cmp(&gap(b))
            })
            .unwrap();
        assert!(
            (self.fine[2 * j] - level).abs() <= 1e-5 * level,
            "{level} is a student level"
        );
        let a = student_shrink(
            self.teacher,
            self.fine[2 * j],
            self.fine[2 * j + 1],
            self.fine[2 * j + 2],
        );
        let m = self.teacher.mean;
        x.affine(a, m * (1.0 - a))
    }
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn rms(a: &Tensor, b: &Tensor) -> f64 {
    let (a, b) = (values(a), values(b));
    let sum: f64 = a
        .iter()
        .zip(&b)
        .map(|(x, y)| ((x - y) as f64).powi(2))
        .sum();
    (sum / a.len() as f64).sqrt()
}

fn prior(trial: &scorelab::trial::Trial, n: usize) -> Tensor {
    let mut rng = Rng::new(9, Stream::Sampling);
    let std = trial.schedule.prior_std() as f32;
    let values: Vec<f32> = rng.normal_f32(n * 2).iter().map(|v| v * std).collect();
    Tensor::from_vec(values, (n, 2), &Device::Cpu).unwrap()
}

/// On 1D Gaussian data the target is the closed form, and one DDIM step with it lands
/// exactly where two teacher steps do, at every student level of a VP grid (the last one
/// ending at 0).
#[test]
fn one_student_step_matches_two_teacher_steps() {
    let trial = resolve(GAUSSIAN, &[]).unwrap().remove(0);
    let teacher = Gaussian {
        mean: 0.7,
        std: 0.4,
    };
    let fine = teacher_grid(trial.schedule.as_ref(), 8);
    assert_eq!(fine.len(), 9);
    let x0 = [-2.0f32, -0.3, 0.0, 0.5, 1.2, 3.0];
    for j in 0..4 {
        let (sigma, mid, next) = (fine[2 * j], fine[2 * j + 1], fine[2 * j + 2]);
        let n = x0.len();
        let x_values: Vec<f32> = x0.iter().map(|v| v * sigma as f32 + 0.7).collect();
        let x = Tensor::from_vec(x_values.clone(), (n, 1), &Device::Cpu).unwrap();
        let column = |s: f64| sigma_column(&vec![s; n], &Device::Cpu).unwrap();
        let target =
            two_step_target(&teacher, &x, &column(sigma), &column(mid), &column(next)).unwrap();
        let a = student_shrink(&teacher, sigma, mid, next);
        for (t, x) in values(&target).iter().zip(&x_values) {
            let exact = 0.7 + a * (*x as f64 - 0.7);
            assert!(
                (*t as f64 - exact).abs() <= 1e-5 * (1.0 + exact.abs()),
                "level {j}: target {t} vs closed form {exact}"
            );
        }
        // One DDIM step with the target as denoiser, against two teacher steps.
        let ratio = next / sigma;
        let one = (target.clone() + (x.sub(&target).unwrap() * ratio).unwrap()).unwrap();
        let two = ddim_walk(&teacher, &x, &[sigma, mid, next]).unwrap();
        let gap = rms(&one, &two);
        assert!(gap <= 1e-5 * sigma.max(1.0), "level {j}: gap {gap}");
    }
}

/// The student's grid is every other level of the teacher's (every 2^r-th after r
/// rounds) for every schedule, and the `ddim` sampler of a distilled trial walks exactly it.
#[test]
fn students_walk_every_2r_th_teacher_level() {
    for schedule in ["vp", "ve", "sub_vp", "edm", "ddpm", "cosine"] {
        let text = GAUSSIAN.replace("schedule: vp", &format!("schedule: {schedule}"));
        for (rounds, steps) in [(1, 4), (2, 2), (3, 1)] {
            let overrides = [
                format!("distill.rounds={rounds}"),
                format!("sampler.steps={steps}"),
            ];
            let overrides: Vec<&str> = overrides.iter().map(String::as_str).collect();
            let trial = resolve(&text, &overrides).unwrap().remove(0);
            let teacher = teacher_grid(trial.schedule.as_ref(), 8);
            let expected: Vec<f64> = teacher.iter().copied().step_by(1 << rounds).collect();
            assert_eq!(round_grid(&teacher, rounds), expected);
            let mut walked = vec![teacher[0]];
            let grid = scorelab::schedule::Grid::new(trial.schedule.as_ref(), trial.sampler.grid());
            let x = prior(&trial, 4);
            trial
                .sampler
                .sample(
                    &Gaussian {
                        mean: 0.0,
                        std: 1.0,
                    },
                    x,
                    &grid,
                    &mut Rng::new(0, Stream::Sampling),
                    &mut |info| walked.push(info.sigma),
                )
                .unwrap();
            assert_eq!(walked, expected, "{schedule}, round {rounds}");
        }
    }
}

/// The closed-form student, sampled by the trial's own `ddim` at N/2 steps, reproduces the
/// teacher at N steps from the same prior noise; plain DDIM at N/2 does not.
#[test]
fn closed_form_student_at_half_the_steps_is_the_teacher() {
    let trial = resolve(GAUSSIAN, &[]).unwrap().remove(0);
    let teacher = Gaussian {
        mean: 0.4,
        std: 0.3,
    };
    let fine = teacher_grid(trial.schedule.as_ref(), 8);
    let x = prior(&trial, 50);
    let reference = ddim_walk(&teacher, &x, &fine).unwrap();
    let student = ClosedFormStudent {
        teacher: &teacher,
        fine: fine.clone(),
    };
    let grid = scorelab::schedule::Grid::new(trial.schedule.as_ref(), trial.sampler.grid());
    let sampled = trial
        .sampler
        .sample(
            &student,
            x.clone(),
            &grid,
            &mut Rng::new(0, Stream::Sampling),
            &mut |_| {},
        )
        .unwrap();
    let plain = ddim_walk(&teacher, &x, &teacher_grid(trial.schedule.as_ref(), 4)).unwrap();
    let (gap, plain_gap) = (rms(&sampled, &reference), rms(&plain, &reference));
    assert!(gap < 1e-4, "student vs teacher: {gap}");
    assert!(plain_gap > 1e-2, "plain DDIM at 4 steps vs 8: {plain_gap}");
}

/// A student trained for one round at 4 steps follows the 8-step teacher more closely from
/// the same prior noise than plain DDIM at 4 steps (on the student's grid or its own).
#[test]
fn trained_student_is_closer_to_the_teacher_than_plain_ddim() {
    let trial = resolve(GAUSSIAN, &[]).unwrap().remove(0);
    let teacher = trial
        .new_model(&mut Rng::new(2, Stream::NetworkInit))
        .unwrap();
    train(
        &teacher,
        &trial.train_job(trial.training_data.clone()),
        &mut |_| {},
    )
    .unwrap();
    let student = trial
        .new_model(&mut Rng::new(2, Stream::NetworkInit))
        .unwrap();
    copy_weights(&teacher, &student).unwrap();
    let history = distill_round(
        &teacher,
        &student,
        &trial.round_job(
            trial.distill.as_ref().unwrap(),
            1,
            trial.training_data.clone(),
        ),
        None,
        Hooks {
            on_log: &mut |_| {},
            snapshot_every: 0,
            on_snapshot: Box::new(|_| Ok(())),
            stop_requested: &|| false,
        },
    )
    .unwrap();
    assert_eq!(history.levels.len(), 4);
    assert!(history.loss.last().unwrap() < history.loss.first().unwrap());
    let fine = teacher_grid(trial.schedule.as_ref(), 8);
    let x = prior(&trial, 300);
    let reference = ddim_walk(&teacher, &x, &fine).unwrap();
    let distilled = rms(
        &ddim_walk(&student, &x, &round_grid(&fine, 1)).unwrap(),
        &reference,
    );
    let plain_nested = rms(
        &ddim_walk(&teacher, &x, &round_grid(&fine, 1)).unwrap(),
        &reference,
    );
    let own = teacher_grid(trial.schedule.as_ref(), 4);
    let plain_own = rms(&ddim_walk(&teacher, &x, &own).unwrap(), &reference);
    eprintln!("rms to the 8-step teacher: student {distilled:.4}, plain DDIM on the student's grid {plain_nested:.4}, on its own 4-step grid {plain_own:.4}");
    assert!(
        distilled < 0.5 * plain_nested.min(plain_own),
        "student {distilled} vs plain {plain_nested} / {plain_own}"
    );
}

/// A round stopped part-way leaves a snapshot (written and read back as a file would be)
/// from which the round finishes with exactly the weights and losses of an uninterrupted one.
#[test]
fn an_interrupted_round_resumes_exactly() {
    use scorelab::optim::sorted_vars;
    use scorelab::train::{Snapshot, TrainError};
    use std::cell::{Cell, RefCell};

    let overrides = ["train.steps=100", "distill.steps=60", "train.log_every=10"];
    let trial = resolve(GAUSSIAN, &overrides).unwrap().remove(0);
    let teacher = trial
        .new_model(&mut Rng::new(2, Stream::NetworkInit))
        .unwrap();
    train(
        &teacher,
        &trial.train_job(trial.training_data.clone()),
        &mut |_| {},
    )
    .unwrap();
    let student = || {
        let model = trial
            .new_model(&mut Rng::new(5, Stream::NetworkInit))
            .unwrap();
        copy_weights(&teacher, &model).unwrap();
        model
    };
    let weights = |model: &scorelab::parameterisation::Model| -> Vec<Vec<f32>> {
        sorted_vars(model.network().unwrap().variables())
            .iter()
            .map(|(_, v)| values(v.as_tensor()))
            .collect()
    };
    let names: Vec<String> = sorted_vars(teacher.network().unwrap().variables())
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let run = |model: &scorelab::parameterisation::Model,
               resume: Option<Snapshot>,
               stop_at: usize,
               saved: &RefCell<Option<Vec<u8>>>| {
        let polls = Cell::new(0);
        distill_round(
            &teacher,
            model,
            &trial.round_job(
                trial.distill.as_ref().unwrap(),
                1,
                trial.training_data.clone(),
            ),
            resume,
            Hooks {
                on_log: &mut |_| {},
                snapshot_every: 0,
                on_snapshot: Box::new(|s| {
                    *saved.borrow_mut() = Some(s.to_bytes(&names, "round 1")?);
                    Ok(())
                }),
                stop_requested: &|| {
                    polls.set(polls.get() + 1);
                    polls.get() >= stop_at
                },
            },
        )
    };
    let whole = student();
    let saved = RefCell::new(None);
    let history = run(&whole, None, usize::MAX, &saved).unwrap();
    assert!(saved.borrow().is_none());

    let stopped = student();
    match run(&stopped, None, 23, &saved) {
        Err(TrainError::Interrupted {
            step: 23,
            steps: 60,
        }) => {}
        other => panic!(
            "expected a stop after step 23, got {:?}",
            other.map(|h| h.steps)
        ),
    }
    let bytes = saved.borrow_mut().take().expect("a snapshot at the stop");
    let snapshot = Snapshot::from_bytes(&bytes, &names, "round 1", &Device::Cpu).unwrap();
    assert_eq!(snapshot.progress.step, 23);
    let resumed = student();
    let finished = run(&resumed, Some(snapshot), usize::MAX, &saved).unwrap();
    assert_eq!(weights(&resumed), weights(&whole));
    assert_eq!(finished.loss, history.loss);
    assert_eq!(finished.level_loss, history.level_loss);
}
