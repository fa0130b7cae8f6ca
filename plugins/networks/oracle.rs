//! `oracle`: the exact score of the noised data distribution, for `gmm` data. No
//! parameters and no training: it lets samplers and metrics be checked against truth. On
//! labelled data (`labelled: true`) it is class-conditional: class k's score is component
//! k's alone, and the null label's (no label, or k = the number of components) the mixture's.

use candle_core::{DType, Device, Tensor};
use scorelab::analytic::GaussianMixture;
use scorelab::config::{NoParams, Params, RawParams};
use scorelab::network::{Architecture, Instance, NetworkContext, ScoreModel};
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;

pub struct Oracle {
    mixture: GaussianMixture,
    /// The components, when the data labels points with them; else 0.
    classes: usize,
}

impl ScoreModel for Oracle {
    fn score_labelled(
        &self,
        x: &Tensor,
        sigma: &Tensor,
        labels: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let Some(labels) = labels.filter(|_| self.classes > 0) else {
            return self.score(x, sigma);
        };
        let (n, dim) = x.dims2()?;
        let points = x.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        let sigmas = sigma
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        let labels = labels.to_dtype(DType::U32)?.to_vec1::<u32>()?;
        let mut scores = Vec::with_capacity(n * dim);
        for ((row, s), label) in points.chunks_exact(dim).zip(&sigmas).zip(&labels) {
            let k = *label as usize;
            let score = if k < self.classes {
                self.mixture.component_score(row, *s, k)
            } else {
                self.mixture.score(row, *s)
            };
            scores.extend(score.into_iter().map(|v| v as f32));
        }
        Tensor::from_vec(scores, (n, dim), x.device())?.to_dtype(x.dtype())
    }

    fn score(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        let (n, dim) = x.dims2()?;
        let points = x.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        let sigmas = sigma
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        let mut scores = Vec::with_capacity(n * dim);
        for (row, s) in points.chunks_exact(dim).zip(&sigmas) {
            scores.extend(self.mixture.score(row, *s).into_iter().map(|v| v as f32));
        }
        Tensor::from_vec(scores, (n, dim), x.device())?.to_dtype(x.dtype())
    }

    /// The divergence from the closed-form Jacobian: exact trace, or eps^T J eps per probe.
    fn score_divergence(
        &self,
        x: &Tensor,
        sigma: &Tensor,
        probes: &[Tensor],
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let (n, dim) = x.dims2()?;
        let as_f64 = |t: &Tensor| -> candle_core::Result<Vec<f64>> {
            t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()
        };
        let points = as_f64(x)?;
        let sigmas = as_f64(sigma)?;
        let probes: Vec<Vec<f64>> = probes.iter().map(as_f64).collect::<Result<_, _>>()?;
        let mut divergence = Vec::with_capacity(n);
        for (i, (row, s)) in points.chunks_exact(dim).zip(&sigmas).enumerate() {
            let jacobian = self.mixture.score_jacobian(row, *s);
            let value = if probes.is_empty() {
                (0..dim).map(|d| jacobian[d * dim + d]).sum::<f64>()
            } else {
                let quadratic = |eps: &[f64]| -> f64 {
                    (0..dim)
                        .map(|a| {
                            (0..dim)
                                .map(|b| eps[a] * jacobian[a * dim + b] * eps[b])
                                .sum::<f64>()
                        })
                        .sum()
                };
                probes
                    .iter()
                    .map(|p| quadratic(&p[i * dim..(i + 1) * dim]))
                    .sum::<f64>()
                    / probes.len() as f64
            };
            divergence.push(value as f32);
        }
        let divergence = Tensor::from_vec(divergence, n, x.device())?.to_dtype(x.dtype())?;
        Ok((self.score(x, sigma)?, divergence))
    }
}

impl Architecture for Oracle {
    fn instantiate(&self, _device: &Device, _rng: &mut Rng) -> candle_core::Result<Instance> {
        Ok(Instance::Exact(Box::new(Oracle {
            mixture: self.mixture.clone(),
            classes: self.classes,
        })))
    }

    fn trainable(&self) -> bool {
        false
    }

    fn classes(&self) -> usize {
        self.classes
    }
}

fn build(raw: &RawParams, context: &NetworkContext) -> BuildResult<dyn Architecture> {
    let params = NoParams::from_raw(raw)?;
    let Some(mixture) = context.dataset.mixture() else {
        return Err(raw.invalid(
            "kind",
            "the oracle network needs data whose noised scores are known in closed form",
            "use `data: {kind: gmm, ...}` with `network: oracle`, or a trainable network such as `mlp`",
        ));
    };
    // Labelled `gmm` data labels points with their components.
    let classes = if context.classes > 0 {
        mixture.num_components()
    } else {
        0
    };
    Ok(Built::new(
        Box::new(Oracle {
            mixture: mixture.clone(),
            classes,
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "oracle",
        about: "exact score of a gmm dataset's noised marginal (no training)",
        params: NoParams::docs,
        build: Builder::Network(build),
    }
}
