//! `gmm`: a Gaussian mixture in any dimension. It knows its log density and the exact score
//! of every noised marginal, which makes it the ground truth for samplers and metrics. With
//! `labelled: true` each point carries the index of the component it came from as its class
//! label (the same points either way), for class-conditional networks and guidance.

use scorelab::analytic::GaussianMixture;
use scorelab::config::{number, ConfigError, Params, RawParams};
use scorelab::dataset::{Dataset, Samples};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use serde::{Deserialize, Serialize};

/// A component's standard deviation: one number (isotropic) or one per coordinate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Spread {
    Isotropic(f64),
    PerCoordinate(Vec<f64>),
}

params! {
    /// Parameters of `gmm`.
    pub struct GmmParams {
        /// Component means, one list of coordinates each (their length sets the dimension).
        means: Vec<Vec<f64>> = vec![vec![-5.0, -5.0], vec![5.0, 5.0]],
        /// Component standard deviations: a number each, or a list per coordinate.
        stds: Vec<Spread> = vec![Spread::Isotropic(1.0), Spread::Isotropic(1.0)],
        /// Mixture weights, one per component, summing to 1 (within 1e-6).
        weights: Vec<f64> = vec![0.8, 0.2],
        /// Label each point with its component's index (classes 0, 1, ...), for class-conditional networks and guidance.
        labelled: bool = false,
    }
}

pub struct Gmm {
    mixture: GaussianMixture,
    labelled: bool,
}

impl Dataset for Gmm {
    fn dim(&self) -> usize {
        self.mixture.dim()
    }

    fn classes(&self) -> usize {
        if self.labelled {
            self.mixture.num_components()
        } else {
            0
        }
    }

    fn sample(&self, n: usize, rng: &mut Rng) -> Samples {
        if self.labelled {
            self.mixture.sample_labelled(n, rng)
        } else {
            self.mixture.sample(n, rng)
        }
    }

    fn mixture(&self) -> Option<&GaussianMixture> {
        Some(&self.mixture)
    }
}

/// Means and standard deviations are trained and sampled in f32: beyond this magnitude a unit
/// of spread is lost to rounding.
pub const MAX_MAGNITUDE: f64 = 1e6;

/// How far the weights may sum from 1.
pub const WEIGHT_TOLERANCE: f64 = 1e-6;

/// Checks every number of the mixture, naming the element (`data.means[0][1]`) and the fix.
fn validate(raw: &RawParams, params: &GmmParams) -> Result<(), ConfigError> {
    let k = params.means.len();
    if k == 0 {
        return Err(raw.invalid(
            "means",
            "is empty: a mixture needs at least one component",
            "give one list of coordinates per component, e.g. `means: [[0.0, 0.0]]`",
        ));
    }
    let dim = params.means[0].len();
    for (i, mean) in params.means.iter().enumerate() {
        if mean.is_empty() {
            return Err(raw.invalid_at(
                "means",
                &format!("[{i}]"),
                "has no coordinates",
                "give each mean one number per dimension, e.g. `[0.0, 0.0]`",
            ));
        }
        if mean.len() != dim {
            return Err(raw.invalid_at(
                "means",
                &format!("[{i}]"),
                format!("has {} coordinates but means[0] has {dim}", mean.len()),
                "give every mean the same number of coordinates (that number is the dimension)",
            ));
        }
        for (j, &x) in mean.iter().enumerate() {
            if !x.is_finite() || x.abs() > MAX_MAGNITUDE {
                return Err(raw.invalid_at(
                    "means",
                    &format!("[{i}][{j}]"),
                    format!(
                        "is {}; every coordinate must be a finite number within ±{}",
                        number(x),
                        number(MAX_MAGNITUDE)
                    ),
                    "give an ordinary number such as 0.0 (rescale the data if it is very large)",
                ));
            }
        }
    }
    if params.stds.len() != k {
        return Err(raw.invalid(
            "stds",
            format!(
                "has {} entries but `means` has {k} components",
                params.stds.len()
            ),
            "give one std per component: a number, or a list of one per coordinate",
        ));
    }
    let check_std = |suffix: String, s: f64| {
        if s.is_finite() && s > 0.0 && s <= MAX_MAGNITUDE {
            Ok(())
        } else {
            let why = if s.is_finite() && s <= 0.0 {
                "a standard deviation must be positive"
            } else {
                "a standard deviation must be a finite positive number"
            };
            Err(raw.invalid_at(
                "stds",
                &suffix,
                format!(
                    "is {}; {why} (at most {})",
                    number(s),
                    number(MAX_MAGNITUDE)
                ),
                "give a positive number such as 1.0",
            ))
        }
    };
    for (i, spread) in params.stds.iter().enumerate() {
        match spread {
            Spread::Isotropic(s) => check_std(format!("[{i}]"), *s)?,
            Spread::PerCoordinate(list) => {
                if list.len() != dim {
                    return Err(raw.invalid_at(
                        "stds",
                        &format!("[{i}]"),
                        format!(
                            "has {} entries but the means have {dim} coordinates",
                            list.len()
                        ),
                        format!("give one number, or a list of {dim} (one per coordinate)"),
                    ));
                }
                for (j, &s) in list.iter().enumerate() {
                    check_std(format!("[{i}][{j}]"), s)?;
                }
            }
        }
    }
    if params.weights.len() != k {
        return Err(raw.invalid(
            "weights",
            format!(
                "has {} entries but `means` has {k} components",
                params.weights.len()
            ),
            "give one weight per component, summing to 1",
        ));
    }
    for (i, &w) in params.weights.iter().enumerate() {
        if !(w.is_finite() && w >= 0.0) {
            return Err(raw.invalid_at(
                "weights",
                &format!("[{i}]"),
                format!(
                    "is {}; a weight must be a finite number, 0 or more",
                    number(w)
                ),
                "give non-negative weights that sum to 1",
            ));
        }
    }
    let total: f64 = params.weights.iter().sum();
    if (total - 1.0).abs() > WEIGHT_TOLERANCE {
        let scaled: Vec<String> = if total > 0.0 {
            params
                .weights
                .iter()
                .map(|w| format!("{:.4}", w / total))
                .collect()
        } else {
            Vec::new()
        };
        let fix = if scaled.is_empty() {
            "give at least one positive weight, with all of them summing to 1".to_string()
        } else {
            format!(
                "make them sum to 1 (within {}), e.g. [{}]",
                number(WEIGHT_TOLERANCE),
                scaled.join(", ")
            )
        };
        return Err(raw.invalid("weights", format!("sum to {}, not 1", number(total)), fix));
    }
    Ok(())
}

fn build(raw: &RawParams) -> BuildResult<dyn Dataset> {
    let params = GmmParams::from_raw(raw)?;
    validate(raw, &params)?;
    let dim = params.means.first().map_or(0, Vec::len);
    let stds = params
        .stds
        .iter()
        .map(|s| match s {
            Spread::Isotropic(v) => vec![*v; dim],
            Spread::PerCoordinate(v) => v.clone(),
        })
        .collect();
    let mixture = GaussianMixture::new(params.weights.clone(), params.means.clone(), stds)
        .map_err(|m| {
            raw.invalid(
                "means",
                m,
                "give `means`, `stds` and `weights` one entry per component",
            )
        })?;
    let mut built = Built::<dyn Dataset>::new(
        Box::new(Gmm {
            mixture,
            labelled: params.labelled,
        }),
        &params,
    );
    // Unlabelled data is recorded as before `labelled` existed, so its trial ids stay.
    if let (false, Some(map)) = (params.labelled, built.params.as_object_mut()) {
        map.remove("labelled");
    }
    Ok(built)
}

inventory::submit! {
    Plugin {
        name: "gmm",
        about: "Gaussian mixture (any dimension) with exact density and noised scores",
        params: GmmParams::docs,
        build: Builder::Dataset(build),
    }
}
