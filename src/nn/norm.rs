//! Normalisation layers that train (candle's fast LayerNorm drops gradients; its GroupNorm is
//! built from ordinary ops and does not).

use candle_core::Device;
use candle_nn::{GroupNorm, VarMap};

use crate::nn::init::constant_variable;

/// PyTorch's GroupNorm eps.
pub const GROUP_NORM_EPS: f64 = 1e-5;

/// Group normalisation over (n, channels, ...) with a learned per-channel scale (1) and shift
/// (0), registered as `name.weight` and `name.bias`. `groups` must divide `channels`.
pub fn group_norm(
    variables: &VarMap,
    name: &str,
    groups: usize,
    channels: usize,
    device: &Device,
) -> candle_core::Result<GroupNorm> {
    if groups == 0 || !channels.is_multiple_of(groups) {
        candle_core::bail!(
            "group_norm `{name}`: {groups} groups do not divide {channels} channels"
        );
    }
    let weight = constant_variable(variables, &format!("{name}.weight"), channels, 1.0, device)?;
    let bias = constant_variable(variables, &format!("{name}.bias"), channels, 0.0, device)?;
    GroupNorm::new(weight, bias, channels, groups, GROUP_NORM_EPS)
}
