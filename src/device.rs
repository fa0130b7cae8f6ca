//! Compute devices: `cpu` (the default), `cuda` / `cuda:N` in builds with the `cuda` feature,
//! and `auto` (CUDA when the build has it and a GPU answers, else the CPU).
//!
//! A trial's resolved config records the kind of device it ran on, `cpu` or `cuda`: the number
//! of the GPU does not change a trial's id, and `auto` records what it chose, so an `auto` run
//! on a machine without a GPU has the same ids (and numbers) as a `cpu` run.

use candle_core::Device;

/// The settings the `device` key takes.
pub const NAMES: &str = "`auto`, `cpu`, `cuda` or `cuda:N`";

/// The devices a completion script offers (`cuda:N` is `cuda` and a number).
pub const CHOICES: [&str; 3] = ["auto", "cpu", "cuda"];

/// How to get a runner that can use CUDA.
pub const BUILD_HINT: &str = "build the runner with the cuda feature: \
    `scripts/cuda-toolchain.sh cargo build --release --features cuda` \
    (or `cargo build --release --features cuda` with a CUDA 13 toolkit installed)";

/// A chosen device.
#[derive(Clone, Debug)]
pub struct Selection {
    pub device: Device,
    /// What the resolved config records: `cpu` or `cuda`.
    pub name: &'static str,
    /// For `auto`: which device it chose and why.
    pub note: Option<String>,
}

/// A `device` setting that cannot be used: what is wrong and the fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceError {
    pub message: String,
    pub fix: String,
}

/// Whether this build has CUDA support.
pub const fn cuda_built() -> bool {
    cfg!(feature = "cuda")
}

/// The device a `device` setting names; `auto` asks GPU 0 and falls back to the CPU.
pub fn select(setting: &str) -> Result<Selection, DeviceError> {
    let cpu = |note| Selection {
        device: Device::Cpu,
        name: "cpu",
        note,
    };
    match parse(setting)? {
        Request::Cpu => Ok(cpu(None)),
        Request::Cuda(ordinal) => cuda(ordinal)
            .map(|device| Selection {
                device,
                name: "cuda",
                note: None,
            })
            .map_err(|message| DeviceError {
                fix: if cuda_built() {
                    "check `nvidia-smi` (the driver and the GPU's number), or use `device: cpu`"
                        .to_string()
                } else {
                    format!("{BUILD_HINT}; or use `device: cpu`")
                },
                message,
            }),
        Request::Auto if !cuda_built() => Ok(cpu(Some(
            "device: auto chose cpu (this runner was built without the cuda feature)".to_string(),
        ))),
        Request::Auto => Ok(match cuda(0) {
            Ok(device) => Selection {
                device,
                name: "cuda",
                note: Some("device: auto chose cuda (GPU 0)".to_string()),
            },
            Err(why) => cpu(Some(format!("device: auto chose cpu ({why})"))),
        }),
    }
}

/// What a `device` setting asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Auto,
    Cpu,
    Cuda(usize),
}

/// Reads a `device` setting without opening any device.
pub fn parse(setting: &str) -> Result<Request, DeviceError> {
    match setting {
        "auto" => return Ok(Request::Auto),
        "cpu" => return Ok(Request::Cpu),
        "cuda" => return Ok(Request::Cuda(0)),
        _ => {}
    }
    if let Some(number) = setting.strip_prefix("cuda:") {
        return match number.parse::<usize>() {
            Ok(ordinal) if number.chars().all(|c| c.is_ascii_digit()) => Ok(Request::Cuda(ordinal)),
            _ => Err(DeviceError {
                message: format!("`{setting}` has no valid GPU number"),
                fix: "write the GPU's number as `nvidia-smi` lists it, from 0: `cuda:0`, `cuda:1`, ..."
                    .to_string(),
            }),
        };
    }
    let lower = setting.trim().to_ascii_lowercase();
    let known = ["auto", "cpu", "cuda"];
    let near = match lower.as_str() {
        "gpu" | "nvidia" => Some("cuda"),
        _ => known.into_iter().find(|name| lower == *name).or_else(|| {
            known
                .into_iter()
                .find(|name| strsim::levenshtein(&lower, name) <= 1)
        }),
    };
    Err(DeviceError {
        message: format!("unknown device `{setting}`"),
        fix: match near {
            Some(name) => format!("did you mean `{name}`? (devices: {NAMES})"),
            None => format!("use one of {NAMES}"),
        },
    })
}

/// GPU `ordinal`, opened once per process: every trial and model of a run shares it (candle
/// treats two openings of one GPU as different devices and will not mix their tensors).
#[cfg(feature = "cuda")]
fn cuda(ordinal: usize) -> Result<Device, String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static OPENED: OnceLock<Mutex<HashMap<usize, Device>>> = OnceLock::new();
    let mut opened = OPENED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(device) = opened.get(&ordinal) {
        return Ok(device.clone());
    }
    let device = Device::new_cuda(ordinal).map_err(|e| {
        // The error's first line: candle appends a backtrace when RUST_BACKTRACE is set.
        let text = e.to_string();
        let cause = text.lines().next().unwrap_or_default().trim().to_string();
        format!("cannot open CUDA device {ordinal}: {cause}")
    })?;
    opened.insert(ordinal, device.clone());
    Ok(device)
}

#[cfg(not(feature = "cuda"))]
fn cuda(_ordinal: usize) -> Result<Device, String> {
    Err("this runner was built without CUDA support (the cuda feature)".to_string())
}

/// Prints an `auto` choice once per process (every trial of a sweep resolves the setting).
pub fn announce(selection: &Selection) {
    use std::sync::Mutex;
    static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
    if let Some(note) = &selection.note {
        let mut said = SAID.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !said.contains(note) {
            eprintln!("{note}");
            said.push(note.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse("cpu"), Ok(Request::Cpu));
        assert_eq!(parse("auto"), Ok(Request::Auto));
        assert_eq!(parse("cuda"), Ok(Request::Cuda(0)));
        assert_eq!(parse("cuda:3"), Ok(Request::Cuda(3)));
        for bad in ["cuda:", "cuda:x", "cuda:-1", "cuda:+1", "cuda: 1"] {
            let error = parse(bad).unwrap_err();
            assert!(
                error.message.contains("no valid GPU number"),
                "{bad}: {error:?}"
            );
        }
        assert!(parse("gpu")
            .unwrap_err()
            .fix
            .contains("did you mean `cuda`"));
        assert!(parse("CPU").unwrap_err().fix.contains("did you mean `cpu`"));
        assert!(parse("tpu").unwrap_err().fix.contains("did you mean `cpu`"));
        assert!(parse("metal")
            .unwrap_err()
            .fix
            .contains("use one of `auto`"));
    }
}
