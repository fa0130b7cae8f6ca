//! Compute devices: CPU by default; CUDA only in builds with the `cuda` feature.

use candle_core::Device;

/// Parses `cpu`, `cuda` or `cuda:N`.
pub fn parse(name: &str) -> Result<Device, String> {
    match name {
        "cpu" => Ok(Device::Cpu),
        cuda if cuda == "cuda" || cuda.starts_with("cuda:") => {
            let ordinal = match cuda.strip_prefix("cuda:") {
                Some(n) => n
                    .parse::<usize>()
                    .map_err(|_| format!("`{name}` has no valid GPU number"))?,
                None => 0,
            };
            cuda_device(ordinal)
        }
        other => Err(format!("unknown device `{other}`")),
    }
}

#[cfg(feature = "cuda")]
fn cuda_device(ordinal: usize) -> Result<Device, String> {
    Device::new_cuda(ordinal).map_err(|e| format!("cannot open CUDA device {ordinal}: {e}"))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(_ordinal: usize) -> Result<Device, String> {
    Err(
        "this runner was built without CUDA support; build with the cuda feature \
         (`cargo build --release --features cuda`)"
            .to_string(),
    )
}
