//! The FID Inception-v3 network of the `inception` feature extractor: its architecture as a
//! table (which also gives the tensor names and shapes a weights file must hold), reading and
//! checking those weights, and the forward pass to the 2048-d pool3 features. See the plugin,
//! `plugins/features/inception.rs`, for what it reproduces and how the weights are obtained.

use std::collections::HashMap;
use std::path::Path;

use crate::nn::pool;
use crate::samples::Samples;
use candle_core::{DType, Device, Tensor};
use sha2::{Digest, Sha256};

/// Side of the square images the network sees.
pub const INPUT_SIZE: usize = 299;
/// Length of the pool3 feature vector.
pub const FEATURES: usize = 2048;
/// BatchNorm epsilon of torchvision's `BasicConv2d`.
const BN_EPS: f64 = 0.001;

/// How to get the weights, for every error about them.
pub const WEIGHTS_FIX: &str = "convert pytorch-fid's pt_inception-2015-12-05-6726825d.pth to safetensors (`python3 scripts/inception_parity.py --convert PTH OUT`, or the two lines in plugins/features/inception.rs) and set `features.weights` to that file";

/// One `BasicConv2d`: name prefix, input and output channels, kernel (height, width),
/// stride and zero padding (height, width).
#[derive(Debug, Clone, PartialEq)]
pub struct ConvSpec {
    pub name: String,
    pub c_in: usize,
    pub c_out: usize,
    pub kernel: (usize, usize),
    pub stride: usize,
    pub padding: (usize, usize),
}

/// The stem: (name, out channels, kernel, stride, padding); a 3×3 / 2 max pool follows the
/// third and the fifth convolution.
const STEM: [(&str, usize, usize, usize, usize); 5] = [
    ("Conv2d_1a_3x3", 32, 3, 2, 0),
    ("Conv2d_2a_3x3", 32, 3, 1, 0),
    ("Conv2d_2b_3x3", 64, 3, 1, 1),
    ("Conv2d_3b_1x1", 80, 1, 1, 0),
    ("Conv2d_4a_3x3", 192, 3, 1, 0),
];

/// The kinds of mixed block, with what varies between instances.
#[derive(Debug, Clone, Copy)]
enum Mixed {
    A {
        pool_features: usize,
    },
    B,
    C {
        channels_7x7: usize,
    },
    D,
    /// `max_pool`: FIDInceptionE_2's pool branch max-pools (E_1 averages).
    E {
        max_pool: bool,
    },
}

/// The mixed blocks in order.
const BLOCKS: [(&str, Mixed); 11] = [
    ("Mixed_5b", Mixed::A { pool_features: 32 }),
    ("Mixed_5c", Mixed::A { pool_features: 64 }),
    ("Mixed_5d", Mixed::A { pool_features: 64 }),
    ("Mixed_6a", Mixed::B),
    ("Mixed_6b", Mixed::C { channels_7x7: 128 }),
    ("Mixed_6c", Mixed::C { channels_7x7: 160 }),
    ("Mixed_6d", Mixed::C { channels_7x7: 160 }),
    ("Mixed_6e", Mixed::C { channels_7x7: 192 }),
    ("Mixed_7a", Mixed::D),
    ("Mixed_7b", Mixed::E { max_pool: false }),
    ("Mixed_7c", Mixed::E { max_pool: true }),
];

/// One step of a branch of a mixed block.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// A `BasicConv2d`: name, out channels, kernel height and width, stride. Stride-1
    /// convolutions keep the size (padding kernel / 2); stride-2 ones pad nothing.
    Conv(&'static str, usize, usize, usize, usize),
    /// 3×3 average pool, stride 1, padding 1, the padding left out of each average.
    AvgPool,
    /// 3×3 max pool: stride, padding.
    MaxPool(usize, usize),
    /// A 1×3 and a 3×1 convolution of the same input, concatenated (InceptionE).
    Split(&'static str, &'static str, usize),
}

/// The branches of a mixed block, concatenated along the channels in this order (the
/// `forward` of pytorch-fid's FIDInception blocks and torchvision's InceptionB/D); one branch
/// per line.
#[rustfmt::skip]
fn branches(kind: Mixed) -> Vec<Vec<Op>> {
    use Op::{AvgPool, Conv, MaxPool, Split};
    match kind {
        Mixed::A { pool_features } => vec![
            vec![Conv("branch1x1", 64, 1, 1, 1)],
            vec![Conv("branch5x5_1", 48, 1, 1, 1), Conv("branch5x5_2", 64, 5, 5, 1)],
            vec![Conv("branch3x3dbl_1", 64, 1, 1, 1), Conv("branch3x3dbl_2", 96, 3, 3, 1), Conv("branch3x3dbl_3", 96, 3, 3, 1)],
            vec![AvgPool, Conv("branch_pool", pool_features, 1, 1, 1)],
        ],
        Mixed::B => vec![
            vec![Conv("branch3x3", 384, 3, 3, 2)],
            vec![Conv("branch3x3dbl_1", 64, 1, 1, 1), Conv("branch3x3dbl_2", 96, 3, 3, 1), Conv("branch3x3dbl_3", 96, 3, 3, 2)],
            vec![MaxPool(2, 0)],
        ],
        Mixed::C { channels_7x7: c7 } => vec![
            vec![Conv("branch1x1", 192, 1, 1, 1)],
            vec![Conv("branch7x7_1", c7, 1, 1, 1), Conv("branch7x7_2", c7, 1, 7, 1), Conv("branch7x7_3", 192, 7, 1, 1)],
            vec![Conv("branch7x7dbl_1", c7, 1, 1, 1), Conv("branch7x7dbl_2", c7, 7, 1, 1), Conv("branch7x7dbl_3", c7, 1, 7, 1),
                 Conv("branch7x7dbl_4", c7, 7, 1, 1), Conv("branch7x7dbl_5", 192, 1, 7, 1)],
            vec![AvgPool, Conv("branch_pool", 192, 1, 1, 1)],
        ],
        Mixed::D => vec![
            vec![Conv("branch3x3_1", 192, 1, 1, 1), Conv("branch3x3_2", 320, 3, 3, 2)],
            vec![Conv("branch7x7x3_1", 192, 1, 1, 1), Conv("branch7x7x3_2", 192, 1, 7, 1), Conv("branch7x7x3_3", 192, 7, 1, 1),
                 Conv("branch7x7x3_4", 192, 3, 3, 2)],
            vec![MaxPool(2, 0)],
        ],
        Mixed::E { max_pool } => vec![
            vec![Conv("branch1x1", 320, 1, 1, 1)],
            vec![Conv("branch3x3_1", 384, 1, 1, 1), Split("branch3x3_2a", "branch3x3_2b", 384)],
            vec![Conv("branch3x3dbl_1", 448, 1, 1, 1), Conv("branch3x3dbl_2", 384, 3, 3, 1), Split("branch3x3dbl_3a", "branch3x3dbl_3b", 384)],
            vec![if max_pool { MaxPool(1, 1) } else { AvgPool }, Conv("branch_pool", 192, 1, 1, 1)],
        ],
    }
}

/// A convolution of a mixed block (see [`Op::Conv`]).
fn block_conv(
    block: &str,
    name: &str,
    c: (usize, usize),
    kernel: (usize, usize),
    stride: usize,
) -> ConvSpec {
    let padding = if stride == 1 {
        (kernel.0 / 2, kernel.1 / 2)
    } else {
        (0, 0)
    };
    let name = format!("{block}.{name}");
    ConvSpec {
        name,
        c_in: c.0,
        c_out: c.1,
        kernel,
        stride,
        padding,
    }
}

/// Every convolution of the network up to pool3, in order, with channels traced through
/// the branches (a block's output is the sum of its branches').
pub fn conv_specs() -> Vec<ConvSpec> {
    let mut specs = Vec::new();
    let mut c = 3;
    for (name, c_out, k, stride, pad) in STEM {
        specs.push(ConvSpec {
            name: name.to_string(),
            c_in: c,
            c_out,
            kernel: (k, k),
            stride,
            padding: (pad, pad),
        });
        c = c_out;
    }
    for (block, kind) in BLOCKS {
        let mut c_next = 0;
        for branch in branches(kind) {
            let mut cb = c;
            for op in branch {
                match op {
                    Op::Conv(name, c_out, kh, kw, stride) => {
                        specs.push(block_conv(block, name, (cb, c_out), (kh, kw), stride));
                        cb = c_out;
                    }
                    Op::Split(a, b, c_out) => {
                        specs.push(block_conv(block, a, (cb, c_out), (1, 3), 1));
                        specs.push(block_conv(block, b, (cb, c_out), (3, 1), 1));
                        cb = 2 * c_out;
                    }
                    Op::AvgPool | Op::MaxPool(..) => {}
                }
            }
            c_next += cb;
        }
        c = c_next;
    }
    specs
}

/// Every tensor the weights file must hold, with its shape: per convolution `conv.weight`
/// (out, in, kh, kw) and `bn.weight`, `bn.bias`, `bn.running_mean`, `bn.running_var` (out).
pub fn expected_tensors() -> Vec<(String, Vec<usize>)> {
    let mut tensors = Vec::new();
    for spec in conv_specs() {
        let (kh, kw) = spec.kernel;
        tensors.push((
            format!("{}.conv.weight", spec.name),
            vec![spec.c_out, spec.c_in, kh, kw],
        ));
        for part in ["weight", "bias", "running_mean", "running_var"] {
            tensors.push((format!("{}.bn.{part}", spec.name), vec![spec.c_out]));
        }
    }
    tensors
}

/// The tensors a safetensors file declares: name -> (dtype, shape).
pub type Header = HashMap<String, (String, Vec<usize>)>;

/// Reads only the header of a safetensors file (8-byte little-endian length, then JSON).
pub fn read_header(path: &Path) -> Result<Header, String> {
    use std::io::Read;
    #[derive(serde::Deserialize)]
    struct Entry {
        dtype: String,
        shape: Vec<usize>,
    }
    let not_safetensors =
        |why: String| format!("`{}` is not a safetensors file ({why})", path.display());
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("cannot open `{}`: {e}", path.display()))?;
    let mut length = [0u8; 8];
    file.read_exact(&mut length)
        .map_err(|e| not_safetensors(e.to_string()))?;
    let length = u64::from_le_bytes(length);
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if length > size.saturating_sub(8) {
        return Err(not_safetensors(format!(
            "header of {length} bytes in a file of {size}"
        )));
    }
    let length = length as usize;
    let mut text = vec![0u8; length];
    file.read_exact(&mut text)
        .map_err(|e| not_safetensors(e.to_string()))?;
    let mut json: HashMap<String, serde_json::Value> =
        serde_json::from_slice(&text).map_err(|e| not_safetensors(e.to_string()))?;
    json.remove("__metadata__");
    json.into_iter()
        .map(
            |(name, entry)| match serde_json::from_value::<Entry>(entry) {
                Ok(entry) => Ok((name, (entry.dtype, entry.shape))),
                Err(e) => Err(not_safetensors(format!("tensor `{name}`: {e}"))),
            },
        )
        .collect()
}

/// Checks that `header` holds every tensor of [`expected_tensors`] with its shape and a float
/// dtype, naming the first tensor that does not.
pub fn check_header(path: &Path, header: &Header) -> Result<(), String> {
    for (name, shape) in expected_tensors() {
        match header.get(&name) {
            None => {
                return Err(format!(
                    "`{}` has no tensor `{name}` (expected shape {shape:?}): it must hold pytorch-fid's FID Inception state_dict",
                    path.display()
                ))
            }
            Some((_, found)) if *found != shape => {
                return Err(format!("tensor `{name}` in `{}` has shape {found:?}, expected {shape:?}", path.display()))
            }
            Some((dtype, _)) if !matches!(dtype.as_str(), "F16" | "BF16" | "F32" | "F64") => {
                return Err(format!("tensor `{name}` in `{}` has dtype {dtype}, expected a float dtype (F32)", path.display()))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// One `BasicConv2d` with its BatchNorm folded in: relu(conv(x, w · s) + (beta − mean · s)),
/// s = gamma / sqrt(var + eps).
struct Conv {
    /// (out, in, kh, kw).
    weight: Tensor,
    /// (1, out, 1, 1).
    bias: Tensor,
    spec: ConvSpec,
}

impl Conv {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        pool::conv2d(x, &self.weight, self.spec.stride, self.spec.padding)?
            .broadcast_add(&self.bias)?
            .relu()
    }
}

/// The loaded network.
pub struct InceptionNet {
    convs: HashMap<String, Conv>,
    device: Device,
}

impl InceptionNet {
    /// Loads and checks the weights; returns the network and the file's SHA-256 (hex).
    pub fn load(path: &Path, device: &Device) -> Result<(InceptionNet, String), String> {
        if !path.is_file() {
            return Err(format!(
                "inception weights file `{}` does not exist; {WEIGHTS_FIX}",
                path.display()
            ));
        }
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let digest: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .map_err(|e| format!("`{}` is not a safetensors file ({e})", path.display()))?;
        let header: Header = tensors
            .iter()
            .map(|(name, t)| {
                (
                    name.clone(),
                    (format!("{:?}", t.dtype()), t.dims().to_vec()),
                )
            })
            .collect();
        check_header(path, &header)?;
        let mut convs = HashMap::new();
        for spec in conv_specs() {
            let get = |part: &str| -> Result<Vec<f64>, String> {
                let name = format!("{}.{part}", spec.name);
                let values = tensors[&name]
                    .to_dtype(DType::F64)
                    .and_then(|t| t.flatten_all()?.to_vec1::<f64>());
                values.map_err(|e| format!("tensor `{name}` in `{}`: {e}", path.display()))
            };
            let (gamma, beta) = (get("bn.weight")?, get("bn.bias")?);
            let (mean, var) = (get("bn.running_mean")?, get("bn.running_var")?);
            let scale: Vec<f64> = gamma
                .iter()
                .zip(&var)
                .map(|(g, v)| g / (v + BN_EPS).sqrt())
                .collect();
            let bias: Vec<f32> = (0..spec.c_out)
                .map(|o| (beta[o] - mean[o] * scale[o]) as f32)
                .collect();
            let weight = get("conv.weight")?;
            let per_output = weight.len() / spec.c_out;
            let weight: Vec<f32> = weight
                .iter()
                .enumerate()
                .map(|(i, w)| (w * scale[i / per_output]) as f32)
                .collect();
            let (kh, kw) = spec.kernel;
            let tensors = Tensor::from_vec(weight, (spec.c_out, spec.c_in, kh, kw), device)
                .and_then(|w| Ok((w, Tensor::from_vec(bias, (1, spec.c_out, 1, 1), device)?)));
            let (weight, bias) =
                tensors.map_err(|e| format!("placing `{}` on {device:?}: {e}", spec.name))?;
            convs.insert(spec.name.clone(), Conv { weight, bias, spec });
        }
        Ok((
            InceptionNet {
                convs,
                device: device.clone(),
            },
            digest,
        ))
    }

    fn conv(&self, name: &str, x: &Tensor) -> candle_core::Result<Tensor> {
        match self.convs.get(name) {
            Some(conv) => conv.forward(x),
            None => candle_core::bail!("inception: no convolution `{name}`"),
        }
    }

    /// One mixed block: its branches of [`branches`], concatenated.
    fn mixed(&self, block: &str, kind: Mixed, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut outputs = Vec::new();
        for branch in branches(kind) {
            let mut h = x.clone();
            for op in branch {
                h = match op {
                    Op::Conv(name, ..) => self.conv(&format!("{block}.{name}"), &h)?,
                    Op::AvgPool => pool::avg_pool2d(&h, 3, 1, 1, false)?,
                    Op::MaxPool(stride, padding) => pool::max_pool2d(&h, 3, stride, padding)?,
                    Op::Split(a, b, _) => {
                        let (a, b) = (
                            self.conv(&format!("{block}.{a}"), &h)?,
                            self.conv(&format!("{block}.{b}"), &h)?,
                        );
                        Tensor::cat(&[a, b], 1)?
                    }
                };
            }
            outputs.push(h);
        }
        Tensor::cat(&outputs, 1)
    }

    /// Pool3 features (n, 2048) of network inputs (n, 3, H, W) in [-1, 1] (299 × 299 for
    /// the FID protocol; see [`InceptionNet::preprocess`]).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        for (i, (name, ..)) in STEM.iter().enumerate() {
            h = self.conv(name, &h)?;
            if i == 2 || i == 4 {
                h = pool::max_pool2d(&h, 3, 2, 0)?;
            }
        }
        for (block, kind) in BLOCKS {
            h = self.mixed(block, kind, &h)?;
        }
        pool::global_avg_pool(&h)
    }

    /// pytorch-fid's input handling of images (n, 1 or 3, h, w) in [-1, 1]: grey repeated to
    /// RGB, bilinear resize to 299 × 299.
    pub fn preprocess(images: &Tensor) -> candle_core::Result<Tensor> {
        let resized = pool::resize_bilinear(images, INPUT_SIZE, INPUT_SIZE)?;
        match resized.dim(1)? {
            1 => resized.repeat((1, 3, 1, 1)),
            3 => Ok(resized),
            c => candle_core::bail!("inception takes images of 1 or 3 channels, not {c}"),
        }
    }

    /// Features (n, 2048) of images in [-1, 1], `batch_size` images per forward pass.
    pub fn extract(&self, items: &Samples, batch_size: usize) -> Result<Samples, String> {
        let Some((c, h, w)) = items.image_shape().filter(|&(c, ..)| c == 1 || c == 3) else {
            return Err(format!(
                "inception takes images of 1 or 3 channels, not items of shape {:?}",
                items.shape()
            ));
        };
        let mut features = Vec::with_capacity(items.len() * FEATURES);
        let dim = items.dim();
        for start in (0..items.len()).step_by(batch_size.max(1)) {
            let end = (start + batch_size.max(1)).min(items.len());
            let pixels: Vec<f32> = items.as_slice()[start * dim..end * dim]
                .iter()
                .map(|&v| v as f32)
                .collect();
            let batch = || -> candle_core::Result<Vec<f64>> {
                let x = Tensor::from_vec(pixels, (end - start, c, h, w), &self.device)?;
                self.forward(&Self::preprocess(&x)?)?
                    .to_dtype(DType::F64)?
                    .flatten_all()?
                    .to_vec1::<f64>()
            };
            features.extend(
                batch().map_err(|e| format!("inception features of items {start}..{end}: {e}"))?,
            );
        }
        Ok(Samples::new(FEATURES, features))
    }
}
