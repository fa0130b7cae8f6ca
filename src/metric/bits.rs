//! Bits per dimension for the likelihood metrics (`nll_ode`, `elbo`) on quantised data, the
//! way score_sde reports them (Song et al. 2021: `datasets.py` and `likelihood.py`):
//!
//! - each held-out code k (e.g. a pixel byte) is dequantised with uniform noise,
//!   y = low + w (k + u), u ~ U[0, 1) per coordinate, w = (high - low) / bins the bin width
//!   in model space (score_sde: `(u + 255 x) / 256` in [0, 1], then the data scaler);
//! - the metric scores y in nats per dimension as for continuous data;
//! - bits/dim = nats/dim / ln 2 + log2(1 / w). score_sde writes the offset as
//!   `log2(d inverse_scaler / dx) + 8` for 256 bins: +7 for data scaled to [-1, 1]
//!   (w = 2/256), +8 for [0, 1] (w = 1/256).
//!
//! The result is an upper bound on the discrete data's -log2 P(k) per dimension (Jensen over
//! u), and the number every paper's bits/dim table means. The noise comes from the trial's
//! seed, one uniform per coordinate of the scored points in row-major order, so both metrics
//! score the same dequantised points and a rerun gives the same numbers.

use crate::dataset::{Quantisation, Samples};
use crate::rng::Rng;

use super::MetricInput;

/// Seed tag of the dequantisation noise: the same for every likelihood metric, and distinct
/// from the metrics' other draws at the same seed.
const DEQUANTISE_TAG: u64 = 0x0064_6571_7561_6e74;

/// Bits per dimension of quantised data from nats per dimension of its dequantised values:
/// nats / ln 2 + log2(1 / bin width).
pub fn bits_per_dim(nats_per_dim: f64, quantisation: &Quantisation) -> f64 {
    nats_per_dim / std::f64::consts::LN_2 + quantisation.bits_offset()
}

/// Each item's codes plus uniform noise in [0, 1), in model space (see the module doc); the
/// shape and labels are kept. Fails on a value off the grid, naming the item and coordinate.
pub fn dequantise(
    items: &Samples,
    quantisation: &Quantisation,
    rng: &mut Rng,
) -> Result<Samples, String> {
    let dim = items.dim();
    let mut values = Vec::with_capacity(items.as_slice().len());
    for (index, &value) in items.as_slice().iter().enumerate() {
        let Some(code) = quantisation.code(value) else {
            return Err(format!(
                "held-out item {} has {value} at coordinate {}, which is not on the dataset's grid of {} levels in [{}, {}], so it cannot be dequantised",
                index / dim,
                index % dim,
                quantisation.bins,
                quantisation.low,
                quantisation.high
            ));
        };
        values.push(quantisation.dequantised(code, rng.uniform()));
    }
    let dequantised = Samples::with_shape(items.shape(), values);
    Ok(match items.labels() {
        Some(labels) => dequantised.with_labels(labels.to_vec()),
        None => dequantised,
    })
}

/// The first `points` held-out items as a likelihood scores them: dequantised with noise
/// from the trial's seed when the dataset is quantised, as they are otherwise.
pub fn scored_points(input: &MetricInput, points: usize) -> Result<Samples, String> {
    let items = input.reference.head(points);
    match input.dataset.quantisation() {
        Some(quantisation) => {
            let mut rng = Rng::from_seed(input.seed ^ DEQUANTISE_TAG);
            dequantise(&items, &quantisation, &mut rng)
        }
        None => Ok(items),
    }
}

/// `("bpd", bits/dim)` for a likelihood of `nats_per_dim` on quantised data; nothing on
/// continuous data.
pub fn bits_detail(input: &MetricInput, nats_per_dim: f64) -> Option<(&'static str, f64)> {
    let quantisation = input.dataset.quantisation()?;
    Some(("bpd", bits_per_dim(nats_per_dim, &quantisation)))
}

/// The protocol lines that say how quantised data were scored (the dequantisation, and the
/// offset in bpd = nats/dim / ln 2 + offset); nothing on continuous data.
pub fn dequantisation_protocol(input: &MetricInput) -> Vec<(&'static str, String)> {
    let Some(q) = input.dataset.quantisation() else {
        return Vec::new();
    };
    let number = crate::config::number;
    vec![
        (
            "dequantisation",
            format!(
                "uniform, {} bins of width {} in [{}, {}]",
                q.bins,
                number(q.bin_width()),
                number(q.low),
                number(q.high)
            ),
        ),
        ("bits_offset", number(q.bits_offset())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIT: Quantisation = Quantisation {
        bins: 256,
        low: 0.0,
        high: 1.0,
    };

    #[test]
    fn the_offset_is_7_bits_for_bytes_in_minus_one_to_one_and_8_in_zero_to_one() {
        assert_eq!(Quantisation::BYTES.bits_offset(), 7.0);
        assert_eq!(UNIT.bits_offset(), 8.0);
        // 1 nat/dim is 1 / ln 2 = 1.4427 bits/dim before the offset.
        let bits = bits_per_dim(1.0, &Quantisation::BYTES);
        assert!((bits - (7.0 + 1.0 / 2f64.ln())).abs() < 1e-12, "{bits}");
        assert!((bits_per_dim(-2.0, &UNIT) - (8.0 - 2.885_390_081_777_927)).abs() < 1e-12);
        // The same density read in both scalings: a uniform density on [-1, 1) is 1/2, on
        // [0, 1) it is 1, and both are 8 bits/dim of uniform bytes.
        assert_eq!(bits_per_dim(2f64.ln(), &Quantisation::BYTES), 8.0);
        assert_eq!(bits_per_dim(0.0, &UNIT), 8.0);
    }

    #[test]
    fn byte_codes_round_trip_and_dequantise_into_their_own_bins() {
        let q = Quantisation::BYTES;
        for code in 0..256u32 {
            let value = q.value(code);
            assert!((value - (f64::from(code) / 127.5 - 1.0)).abs() < 1e-15);
            assert_eq!(q.code(value), Some(code));
            let (start, end) = (q.dequantised(code, 0.0), q.dequantised(code, 1.0));
            assert!((end - start - 2.0 / 256.0).abs() < 1e-15);
            assert!((start - (-1.0 + 2.0 * f64::from(code) / 256.0)).abs() < 1e-15);
        }
        assert_eq!(q.code(0.5), None, "0.5 is between two byte levels");
        assert_eq!(q.nearest_code(0.5), 191);
        assert_eq!(q.nearest_code(7.0), 255);
    }

    #[test]
    fn dequantising_adds_seeded_noise_within_each_bin_and_refuses_off_grid_values() {
        let q = Quantisation::BYTES;
        let codes = [0u32, 17, 128, 255, 3, 200];
        let items = Samples::with_shape(&[1, 2, 3], codes.iter().map(|&k| q.value(k)).collect());
        let once = dequantise(&items, &q, &mut Rng::from_seed(3)).unwrap();
        let again = dequantise(&items, &q, &mut Rng::from_seed(3)).unwrap();
        let other = dequantise(&items, &q, &mut Rng::from_seed(4)).unwrap();
        assert_eq!(once, again);
        assert_ne!(once, other);
        assert_eq!(once.shape(), &[1, 2, 3]);
        for (y, &k) in once.as_slice().iter().zip(&codes) {
            let start = q.dequantised(k, 0.0);
            assert!(
                *y >= start && *y < start + q.bin_width(),
                "{y} outside bin {k}"
            );
        }
        let off = Samples::new(2, vec![q.value(3), 0.5]);
        let message = dequantise(&off, &q, &mut Rng::from_seed(3)).unwrap_err();
        assert!(
            message.contains("item 0 has 0.5 at coordinate 1"),
            "{message}"
        );
    }
}
