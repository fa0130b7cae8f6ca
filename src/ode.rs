//! An adaptive Runge-Kutta solver for the probability-flow ODE and its likelihood: the
//! Dormand-Prince 5(4) pair (Dormand & Prince 1980) with local extrapolation and the error
//! control of Hairer, Norsett & Wanner (Solving ODEs I, II.4), as scipy's RK45 uses it. The
//! state is one tensor (a whole batch shares one step size, as in score_sde's use of scipy).

use candle_core::Tensor;

/// Nodes c_i of the Dormand-Prince tableau.
const C: [f64; 6] = [0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0];

/// Rows a_ij of the tableau (stage i uses the first i slopes).
const A: [&[f64]; 6] = [
    &[],
    &[1.0 / 5.0],
    &[3.0 / 40.0, 9.0 / 40.0],
    &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
    &[
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
    ],
    &[
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
    ],
];

/// Fifth-order weights (the solution; its slope at the end is the next step's first).
const B: [f64; 6] = [
    35.0 / 384.0,
    0.0,
    500.0 / 1113.0,
    125.0 / 192.0,
    -2187.0 / 6784.0,
    11.0 / 84.0,
];

/// Fifth- minus fourth-order weights over the seven slopes: the local error estimate.
const E: [f64; 7] = [
    71.0 / 57600.0,
    0.0,
    -71.0 / 16695.0,
    71.0 / 1920.0,
    -17253.0 / 339200.0,
    22.0 / 525.0,
    -1.0 / 40.0,
];

/// Tolerances of the adaptive solver: a step is accepted when the RMS over the state of
/// error / (atol + rtol * |y|) is at most 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    pub rtol: f64,
    pub atol: f64,
}

/// What one solve cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SolveStats {
    /// Evaluations of the right-hand side.
    pub evaluations: usize,
    pub accepted: usize,
    pub rejected: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("the adaptive solver's step shrank below {step:e} at t = {t}: the ODE is too stiff or not finite there")]
    StepTooSmall { t: f64, step: f64 },
    #[error("the adaptive solver gave up after {steps} steps at t = {t}: loosen rtol/atol")]
    TooManySteps { t: f64, steps: usize },
}

const SAFETY: f64 = 0.9;
const MIN_FACTOR: f64 = 0.2;
const MAX_FACTOR: f64 = 10.0;
const MAX_STEPS: usize = 100_000;

/// RMS over every entry of `values / scale`.
fn rms_scaled(values: &Tensor, scale: &Tensor) -> candle_core::Result<f64> {
    let ratio = values.div(scale)?;
    Ok((ratio
        .sqr()?
        .mean_all()?
        .to_dtype(candle_core::DType::F64)?
        .to_scalar::<f64>()?)
    .sqrt())
}

/// Integrates dy/dt = f(t, y) from `t0` to `t1` (either direction) with Dormand-Prince 5(4).
/// `on_step` sees each accepted (t, y).
pub fn solve_rk45(
    f: &mut dyn FnMut(f64, &Tensor) -> candle_core::Result<Tensor>,
    y0: Tensor,
    t0: f64,
    t1: f64,
    tolerance: Tolerance,
    on_step: &mut dyn FnMut(f64, &Tensor),
) -> Result<(Tensor, SolveStats), SolveError> {
    let direction = if t1 >= t0 { 1.0 } else { -1.0 };
    let span = (t1 - t0).abs();
    let mut stats = SolveStats::default();
    if span == 0.0 {
        return Ok((y0, stats));
    }
    let scale_of = |a: &Tensor, b: Option<&Tensor>| -> candle_core::Result<Tensor> {
        let size = match b {
            Some(b) => a.abs()?.maximum(&b.abs()?)?,
            None => a.abs()?,
        };
        (size * tolerance.rtol)? + tolerance.atol
    };

    let mut t = t0;
    let mut y = y0;
    let mut slope = f(t, &y)?;
    stats.evaluations += 1;

    // Initial step (Hairer, Norsett & Wanner, II.4): from the sizes of y, f and f's change.
    let scale = scale_of(&y, None)?;
    let (d0, d1) = (rms_scaled(&y, &scale)?, rms_scaled(&slope, &scale)?);
    let guess = if d0 < 1e-5 || d1 < 1e-5 {
        1e-6
    } else {
        0.01 * d0 / d1
    }
    .min(span);
    let probe = y.add(&(&slope * (direction * guess))?)?;
    let probe_slope = f(t + direction * guess, &probe)?;
    stats.evaluations += 1;
    let d2 = rms_scaled(&probe_slope.sub(&slope)?, &scale)? / guess;
    let refined = if d1.max(d2) <= 1e-15 {
        (guess * 1e-3).max(1e-6)
    } else {
        (0.01 / d1.max(d2)).powf(1.0 / 5.0)
    };
    let mut step = (100.0 * guess).min(refined).min(span);

    while direction * (t1 - t) > 0.0 {
        if stats.accepted + stats.rejected >= MAX_STEPS {
            return Err(SolveError::TooManySteps {
                t,
                steps: MAX_STEPS,
            });
        }
        let min_step = 10.0 * f64::EPSILON * t.abs().max(1.0);
        if step < min_step {
            return Err(SolveError::StepTooSmall { t, step });
        }
        let h = step.min((t1 - t).abs());
        let signed = direction * h;

        let mut slopes: Vec<Tensor> = vec![slope.clone()];
        for stage in 1..6 {
            let mut increment = (&slopes[0] * (A[stage][0] * signed))?;
            for (j, a) in A[stage].iter().enumerate().skip(1) {
                if *a != 0.0 {
                    increment = increment.add(&(&slopes[j] * (a * signed))?)?;
                }
            }
            slopes.push(f(t + C[stage] * signed, &y.add(&increment)?)?);
        }
        let mut increment = (&slopes[0] * (B[0] * signed))?;
        for (j, b) in B.iter().enumerate().skip(1) {
            if *b != 0.0 {
                increment = increment.add(&(&slopes[j] * (b * signed))?)?;
            }
        }
        let y_new = y.add(&increment)?;
        let slope_new = f(t + signed, &y_new)?;
        stats.evaluations += 6;
        slopes.push(slope_new.clone());

        let mut error = (&slopes[0] * (E[0] * signed))?;
        for (j, e) in E.iter().enumerate().skip(1) {
            if *e != 0.0 {
                error = error.add(&(&slopes[j] * (e * signed))?)?;
            }
        }
        let norm = rms_scaled(&error, &scale_of(&y, Some(&y_new))?)?;
        if norm.is_finite() && norm <= 1.0 {
            t = if h == (t1 - t).abs() { t1 } else { t + signed };
            y = y_new;
            slope = slope_new;
            stats.accepted += 1;
            on_step(t, &y);
            let factor = if norm == 0.0 {
                MAX_FACTOR
            } else {
                (SAFETY * norm.powf(-1.0 / 5.0)).min(MAX_FACTOR)
            };
            step = h * factor;
        } else {
            stats.rejected += 1;
            let factor = if norm.is_finite() {
                (SAFETY * norm.powf(-1.0 / 5.0)).max(MIN_FACTOR)
            } else {
                MIN_FACTOR
            };
            step = h * factor;
        }
    }
    Ok((y, stats))
}
