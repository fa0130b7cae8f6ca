//! `mlp`: a noise-conditional multilayer perceptron. A sinusoidal embedding of log(sigma)
//! reaches every hidden layer through its own linear map (not only the input). The output
//! is raw: the network's parameterisation (`score` divides it by sigma, NCSNv2 technique 3)
//! makes it a denoiser. Each hidden layer's silu(linear(h) + linear(embedding)) is two
//! matmuls and one fused op (`scorelab::nn::fused::bias_add_silu`), the same numbers as the
//! candle ops it replaces.
//!
//! A batch at one noise level (every sampler step) has one embedding: its products with the
//! condition layers are taken for one row instead of the whole batch, and that row is shared
//! by every row of the batch. The products are row-invariant ([`scorelab::nn::linear`]), so
//! the shared row is the same bit for bit as each row of the whole product
//! (tests/it/mlp_inference.rs checks it).
//!
//! With `classes` above 0 a learned embedding of the class label (one more row for the null
//! label, used when a sample has no label or classifier-free guidance drops it) is added to
//! the noise embedding, and every row keeps its own condition products.

use candle_core::{DType, Device, Tensor};
use candle_nn::{Embedding, Module, VarMap};
use scorelab::config::{Params, RawParams};
use scorelab::network::{Architecture, Footprint, Instance, Network, NetworkContext};
use scorelab::nn::fused::bias_add_silu;
use scorelab::nn::init::{self, linear};
use scorelab::nn::linear::{times_transposed, Linear};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;

params! {
    /// Parameters of `mlp`.
    pub struct MlpParams {
        /// Width of each hidden layer.
        hidden: usize = 128 => 1..=scorelab::config::limits::MAX_WIDTH,
        /// Number of hidden layers (each receives the noise embedding).
        layers: usize = 3 => 0..=scorelab::config::limits::MAX_LAYERS,
        /// Size of the sinusoidal embedding of log(sigma) (even).
        embedding: usize = 32 => 0..=scorelab::config::limits::MAX_WIDTH,
        /// Number of classes to condition on (0: unconditional); must match the data's labels.
        classes: usize = 0 => 0..=scorelab::config::limits::MAX_CLASSES,
    }
}

pub struct MlpArchitecture {
    dim: usize,
    params: MlpParams,
}

pub struct Mlp {
    variables: VarMap,
    input: Linear,
    conditions: Vec<Linear>,
    hidden: Vec<Linear>,
    output: Linear,
    frequencies: Tensor,
    /// The label embedding and the null label's index, for a class-conditional network.
    labels: Option<(Embedding, u32)>,
}

impl Architecture for MlpArchitecture {
    fn instantiate(&self, device: &Device, rng: &mut Rng) -> candle_core::Result<Instance> {
        let p = &self.params;
        let variables = VarMap::new();
        let input = linear(&variables, "input", self.dim, p.hidden, device, rng)?;
        let mut conditions = Vec::new();
        let mut hidden = Vec::new();
        for layer in 0..p.layers {
            conditions.push(linear(
                &variables,
                &format!("condition{layer}"),
                p.embedding,
                p.hidden,
                device,
                rng,
            )?);
            if layer > 0 {
                hidden.push(linear(
                    &variables,
                    &format!("hidden{layer}"),
                    p.hidden,
                    p.hidden,
                    device,
                    rng,
                )?);
            }
        }
        let output = linear(&variables, "output", p.hidden, self.dim, device, rng)?;
        // Frequencies 1..=E/2 for sin/cos of log(sigma): sigma spans a few decades, so
        // ln(sigma) spans a few units and these resolve it finely without aliasing.
        let frequencies: Vec<f32> = (1..=p.embedding / 2).map(|k| k as f32).collect();
        let frequencies = Tensor::from_vec(frequencies, (1, p.embedding / 2), device)?;
        // Drawn after every other weight, so an unconditional network's are as before.
        let labels = match p.classes {
            0 => None,
            classes => {
                // nn.Embedding's N(0, 1); the last row is the null label.
                let table = Tensor::from_vec(
                    rng.normal_f32((classes + 1) * p.embedding),
                    (classes + 1, p.embedding),
                    device,
                )?;
                let table = init::register(&variables, "labels", table)?;
                Some((Embedding::new(table, p.embedding), classes as u32))
            }
        };
        Ok(Instance::Trainable(Box::new(Mlp {
            variables,
            input,
            conditions,
            hidden,
            output,
            frequencies,
            labels,
        })))
    }

    fn classes(&self) -> usize {
        self.params.classes
    }

    /// Exact parameter count (as `instantiate` builds it); activations per example: each
    /// hidden layer's two products, their sum and its silu (4 × hidden), the embedding.
    fn footprint(&self) -> Option<Footprint> {
        let p = &self.params;
        let (d, h, e, l) = (
            self.dim as u64,
            p.hidden as u64,
            p.embedding as u64,
            p.layers as u64,
        );
        let parameters = (d * h + h)
            + l * (e * h + h)
            + l.saturating_sub(1) * (h * h + h)
            + (h * d + d)
            + if p.classes > 0 {
                (p.classes as u64 + 1) * e
            } else {
                0
            };
        Some(Footprint {
            parameters,
            activations: l * 4 * h + e + d,
        })
    }
}

impl Mlp {
    fn embed(&self, sigma: &Tensor) -> candle_core::Result<Tensor> {
        let angles = sigma.log()?.broadcast_mul(&self.frequencies)?;
        Tensor::cat(&[angles.sin()?, angles.cos()?], 1)
    }

    /// The rows whose embedding the condition products take: one when every row of the batch
    /// is at the same noise level (see the module's documentation), else all.
    fn condition_rows(&self, sigma: &Tensor) -> candle_core::Result<usize> {
        let rows = sigma.dim(0)?;
        if self.labels.is_some()
            || rows < 2
            || !scorelab::nn::path::cpu_kernels(sigma.device())
            || sigma.elem_count() != rows
        {
            return Ok(rows);
        }
        let levels = sigma
            .flatten_all()?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?;
        let one_level = levels.iter().all(|s| s.to_bits() == levels[0].to_bits());
        Ok(if one_level { 1 } else { rows })
    }
}

impl Network for Mlp {
    fn forward(
        &self,
        x: &Tensor,
        sigma: &Tensor,
        labels: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let rows = sigma.dim(0)?;
        let shared = self.condition_rows(sigma)?;
        let mut embedding = self.embed(&sigma.narrow(0, 0, shared)?.to_dtype(DType::F32)?)?;
        if let Some((table, null)) = &self.labels {
            let labels = match labels {
                Some(labels) => labels.clone(),
                None => Tensor::full(*null, rows, x.device())?,
            };
            embedding = embedding.add(&table.forward(&labels)?)?;
        }
        // silu(h·Wᵀ + b + (e·Vᵀ + d)), with Linear's row-invariant products.
        let layer =
            |h: &Tensor, layer: &Linear, condition: &Linear| -> candle_core::Result<Tensor> {
                let (Some(b), Some(d)) = (layer.bias(), condition.bias()) else {
                    candle_core::bail!("mlp: every layer has a bias");
                };
                let a = times_transposed(h, layer.weight())?;
                let c = times_transposed(&embedding, condition.weight())?;
                bias_add_silu(&a, b, &c, d)
            };
        let mut h = layer(x, &self.input, &self.conditions[0])?;
        for (hidden, condition) in self.hidden.iter().zip(&self.conditions[1..]) {
            h = layer(&h, hidden, condition)?;
        }
        self.output.forward(&h)
    }

    fn variables(&self) -> &VarMap {
        &self.variables
    }
}

fn build(raw: &RawParams, context: &NetworkContext) -> BuildResult<dyn Architecture> {
    let params = MlpParams::from_raw(raw)?;
    if params.hidden == 0 {
        return Err(raw.invalid("hidden", "must be at least 1", "set e.g. `hidden: 128`"));
    }
    if params.layers == 0 {
        return Err(raw.invalid("layers", "must be at least 1", "set e.g. `layers: 3`"));
    }
    if params.embedding < 2 || params.embedding % 2 != 0 {
        return Err(raw.invalid(
            "embedding",
            format!("must be even and at least 2, not {}", params.embedding),
            "set e.g. `embedding: 32`",
        ));
    }
    context.check_classes(raw, "classes", params.classes)?;
    let architecture = MlpArchitecture {
        dim: context.dim,
        params: params.clone(),
    };
    let mut built = Built::<dyn Architecture>::new(Box::new(architecture), &params);
    // An unconditional mlp is recorded as before `classes` existed, so its trial ids stay.
    if let (0, Some(map)) = (params.classes, built.params.as_object_mut()) {
        map.remove("classes");
    }
    Ok(built)
}

inventory::submit! {
    Plugin {
        name: "mlp",
        about: "MLP with a log-sigma embedding added to every hidden layer",
        params: MlpParams::docs,
        build: Builder::Network(build),
    }
}
