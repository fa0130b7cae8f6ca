//! Sampling grids: the descending noise levels a sampler walks, ending in 0 (k-diffusion's
//! convention: the last step is the denoising step to sigma = 0). The schedule gives its own
//! grid; a sampler may ask for another spacing of the same range.

use std::fmt;

use super::Schedule;

/// How the levels between sigma_max and sigma_min are spaced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Spacing {
    /// The schedule's own grid (NCSN levels, DDPM timesteps, uniform t, Karras for EDM).
    Default,
    /// Uniform in the schedule's time t.
    UniformT,
    /// Quadratic in t (DDIM's CIFAR-10 choice): t = t_end + (t_max - t_end) u^2 for uniform u,
    /// so steps crowd towards small noise.
    Quadratic,
    /// Karras et al. 2022, eq. 5: uniform in sigma^(1/rho).
    Karras { rho: f64 },
}

impl fmt::Display for Spacing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Spacing::Default => f.write_str("default"),
            Spacing::UniformT => f.write_str("uniform_t"),
            Spacing::Quadratic => f.write_str("quadratic"),
            Spacing::Karras { rho } if *rho == 7.0 => f.write_str("karras"),
            Spacing::Karras { rho } => write!(f, "karras({rho})"),
        }
    }
}

impl std::str::FromStr for Spacing {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "unknown grid `{text}`: expected default, uniform_t, quadratic, karras or karras(RHO)"
            )
        };
        match text.trim() {
            "default" => Ok(Spacing::Default),
            "uniform_t" => Ok(Spacing::UniformT),
            "quadratic" => Ok(Spacing::Quadratic),
            "karras" => Ok(Spacing::Karras { rho: 7.0 }),
            other => {
                let rho = other
                    .strip_prefix("karras(")
                    .and_then(|r| r.strip_suffix(')'))
                    .and_then(|r| r.trim().parse::<f64>().ok())
                    .ok_or_else(bad)?;
                // The same bounds as the `edm` schedule's rho (below 0.5 the steps are NaN).
                if (0.5..=1000.0).contains(&rho) {
                    Ok(Spacing::Karras { rho })
                } else {
                    Err(format!(
                        "karras grid needs rho in [0.5, 1000] (EDM: 7), not {}",
                        crate::config::number(rho)
                    ))
                }
            }
        }
    }
}

impl serde::Serialize for Spacing {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Spacing {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What a sampler asks of the schedule: how many levels (`None`: the schedule's own) and
/// how to space them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GridRequest {
    pub steps: Option<usize>,
    pub spacing: Spacing,
}

impl GridRequest {
    /// `steps` levels (`None`: the schedule's own count) spaced by `spacing`.
    pub fn new(steps: Option<usize>, spacing: Spacing) -> Self {
        GridRequest { steps, spacing }
    }
}

impl Default for GridRequest {
    fn default() -> Self {
        GridRequest::new(None, Spacing::Default)
    }
}

/// The levels one sampling run walks, with the schedule they came from (for samplers that
/// need t, s(t) or the SDE's f and g at each level).
pub struct Grid<'a> {
    sigmas: Vec<f64>,
    schedule: &'a dyn Schedule,
}

impl<'a> Grid<'a> {
    /// The grid `request` asks of `schedule`: descending, ending in 0.
    pub fn new(schedule: &'a dyn Schedule, request: GridRequest) -> Self {
        let own = || schedule.default_grid(request.steps);
        let count = || request.steps.unwrap_or_else(|| own().len()).max(1);
        let (t_max, t_end) = (schedule.t_max(), schedule.t_end());
        let fractions = |n: usize| -> Vec<f64> {
            // 1 at the start of the grid, 0 at its end.
            if n == 1 {
                vec![1.0]
            } else {
                (0..n).map(|i| 1.0 - i as f64 / (n - 1) as f64).collect()
            }
        };
        let mut sigmas: Vec<f64> = match request.spacing {
            Spacing::Default => own(),
            Spacing::UniformT => fractions(count())
                .into_iter()
                .map(|u| schedule.sigma(t_end + (t_max - t_end) * u))
                .collect(),
            Spacing::Quadratic => fractions(count())
                .into_iter()
                .map(|u| schedule.sigma(t_end + (t_max - t_end) * u * u))
                .collect(),
            Spacing::Karras { rho } => {
                karras_sigmas(schedule.sigma_max(), schedule.sigma_min(), count(), rho)
            }
        };
        sigmas.push(0.0);
        Grid { sigmas, schedule }
    }

    /// A grid of given levels (descending; a final 0 is added when missing).
    pub fn from_sigmas(schedule: &'a dyn Schedule, mut sigmas: Vec<f64>) -> Self {
        if sigmas.last() != Some(&0.0) {
            sigmas.push(0.0);
        }
        Grid { sigmas, schedule }
    }

    /// The levels, descending and ending in 0.
    pub fn sigmas(&self) -> &[f64] {
        &self.sigmas
    }

    /// Number of steps: levels minus one (the last level, 0, is only arrived at).
    pub fn steps(&self) -> usize {
        self.sigmas.len() - 1
    }

    pub fn schedule(&self) -> &dyn Schedule {
        self.schedule
    }

    /// The time of level `i` (0 for the final level sigma = 0).
    pub fn t(&self, i: usize) -> f64 {
        match self.sigmas[i] {
            s if s > 0.0 => self.schedule.t_of_sigma(s),
            _ => 0.0,
        }
    }

    /// s(t) at level `i`: x = s * x^ converts sigma space to the SDE's own variable.
    pub fn scale(&self, i: usize) -> f64 {
        match self.sigmas[i] {
            s if s > 0.0 => self.schedule.scale(self.t(i)),
            _ => 1.0,
        }
    }
}

/// Karras et al. 2022, eq. 5: `n` levels from `high` to `low`, uniform in sigma^(1/rho).
pub fn karras_sigmas(high: f64, low: f64, n: usize, rho: f64) -> Vec<f64> {
    if n == 1 {
        return vec![high];
    }
    let (a, b) = (high.powf(1.0 / rho), low.powf(1.0 / rho));
    (0..n)
        .map(|i| (a + i as f64 / (n - 1) as f64 * (b - a)).powf(rho))
        .collect()
}
