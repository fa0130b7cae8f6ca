//! `inception`: the FID variant of Inception-v3, the network behind the standard FID numbers
//! (TensorFlow's 2015-12-05 graph as ported by pytorch-fid), giving its 2048-d pool3 features
//! (after the final average pool).
//!
//! The architecture is pytorch-fid's `fid_inception_v3()`: torchvision's `Inception3` with its
//! `FIDInceptionA/C/E_1/E_2` blocks, whose pool branches average over the real pixels only
//! (`count_include_pad=False`), and whose last block (`Mixed_7c`) max-pools in its pool branch.
//! Every `BasicConv2d` is a bias-free convolution, BatchNorm in eval mode (eps 0.001, folded
//! into the convolution when the weights load) and a ReLU. Input handling is pytorch-fid's
//! `InceptionV3(resize_input=True)`: images in [-1, 1] (this runner's data range, which is
//! what pytorch-fid's `normalize_input` makes of [0, 1] images), grey images repeated to three
//! channels, bilinear resize to 299 × 299 (`align_corners=False`).
//!
//! Nothing is downloaded: the weights come from a safetensors file whose tensor names are the
//! state_dict names of pytorch-fid's FID Inception (`Conv2d_1a_3x3.conv.weight`,
//! `Conv2d_1a_3x3.bn.running_mean`, `Mixed_7c.branch_pool.bn.bias`, …; extra tensors such
//! as `fc.weight` are ignored). Convert pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`
//! once, with `pip install torch safetensors`:
//!
//! ```text
//! import torch; from safetensors.torch import save_file
//! save_file(torch.load("pt_inception-2015-12-05-6726825d.pth", map_location="cpu"), "data/pt_inception-2015-12-05.safetensors")
//! ```
//!
//! `scripts/inception_parity.py` checks this network against pytorch-fid's on random weights.

use std::path::{Path, PathBuf};

use candle_core::Device;
use scorelab::config::{Params, RawParams};
use scorelab::dataset::Samples;
use scorelab::features::{FeatureExtractor, FeatureMap, FeaturesContext, PrepareContext};
use scorelab::nn::inception::{check_header, read_header, InceptionNet, WEIGHTS_FIX};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};

params! {
    /// Parameters of `inception`.
    pub struct InceptionParams {
        /// Safetensors file of the FID Inception weights (pytorch-fid's state_dict names),
        /// relative to the working directory; see `plugins/features/inception.rs` for the
        /// two-line conversion of pytorch-fid's pt_inception-2015-12-05-6726825d.pth.
        weights: String = "data/pt_inception-2015-12-05.safetensors".to_string(),
        /// Images per forward pass (memory grows with it: about 60 MB per image on the CPU).
        batch_size: usize = 50 => 1..=100_000,
    }
}

/// The configured extractor: weights are loaded in `prepare`.
pub struct Inception {
    weights: PathBuf,
    batch_size: usize,
}

/// The prepared feature map.
pub struct InceptionMap {
    net: InceptionNet,
    batch_size: usize,
    identity: String,
}

impl InceptionMap {
    /// Loads the weights at `path` (what `prepare` does).
    pub fn load(path: &Path, batch_size: usize, device: &Device) -> Result<InceptionMap, String> {
        let (net, digest) = InceptionNet::load(path, device)?;
        Ok(InceptionMap {
            net,
            batch_size,
            identity: format!("inception-{}", &digest[..16]),
        })
    }
}

impl FeatureExtractor for Inception {
    fn prepare(&self, context: &mut PrepareContext) -> Result<Box<dyn FeatureMap>, String> {
        (context.log)(&format!("inception: loading {}", self.weights.display()));
        Ok(Box::new(InceptionMap::load(
            &self.weights,
            self.batch_size,
            context.device,
        )?))
    }
}

impl FeatureMap for InceptionMap {
    fn extract(&self, items: &Samples) -> Result<Samples, String> {
        self.net.extract(items, self.batch_size)
    }

    fn identity(&self) -> String {
        self.identity.clone()
    }
}

fn build(raw: &RawParams, context: &FeaturesContext) -> BuildResult<dyn FeatureExtractor> {
    let params = InceptionParams::from_raw(raw)?;
    if params.batch_size == 0 {
        return Err(raw.invalid(
            "batch_size",
            "must be at least 1",
            "set e.g. `batch_size: 50`",
        ));
    }
    if !matches!(context.shape, [1 | 3, _, _]) {
        let message = format!(
            "inception takes images of 1 or 3 channels; the data's items have shape {:?}",
            context.shape
        );
        return Err(raw.invalid(
            "kind",
            message,
            "use `features: raw` for this data, or image data with 1 or 3 channels",
        ));
    }
    let weights = PathBuf::from(&params.weights);
    if !weights.is_file() {
        return Err(raw.invalid(
            "weights",
            format!("no weights file `{}`", weights.display()),
            WEIGHTS_FIX,
        ));
    }
    read_header(&weights)
        .and_then(|header| check_header(&weights, &header))
        .map_err(|message| raw.invalid("weights", message, WEIGHTS_FIX))?;
    let extractor = Inception {
        weights,
        batch_size: params.batch_size,
    };
    Ok(Built::new(Box::new(extractor), &params))
}

inventory::submit! {
    Plugin {
        name: "inception",
        about: "pool3 features (2048-d) of the FID Inception-v3 (pytorch-fid's), weights from a safetensors file",
        params: InceptionParams::docs,
        build: Builder::Features(build),
    }
}
