//! What the runner composes around the plain path of one evaluation: the feature space of
//! FID-style metrics, a space the sampler runs in other than the data's, and whether the
//! sweep compares sampling time per item.

use candle_core::Tensor;

use crate::features::FeatureSpace;
use crate::guidance::Prepared;
use crate::network::ScoreModel;

/// A space sampling runs in instead of the data's (one a stage maps the data into): the
/// prior is drawn in it, the samples and the trace are mapped back to data space before any
/// metric sees them.
pub trait SampleSpace {
    /// The dimension of one item of the space (what the prior is drawn in).
    fn dim(&self) -> usize;

    /// Items of the space (n, dim) as data-space items (n, D), in the data's row layout.
    fn to_data(&self, items: &Tensor) -> candle_core::Result<Tensor>;

    /// What metrics get as the model: the trial's model scores items of this space, not
    /// data points, so a metric that evaluates it on data points must get an error instead.
    fn model_for_metrics(&self) -> &dyn ScoreModel;

    /// The first `n` training items mapped into the space and back (n, D): what a perfect
    /// model of this space reaches. Feature metrics record their value on them as
    /// `<metric>_recon`.
    fn round_trip(&self, n: usize) -> candle_core::Result<Tensor>;

    /// What preparing the space cost, recorded beside the metrics (name ending in `_s`,
    /// seconds).
    fn costs(&self) -> Vec<(&'static str, f64)>;
}

/// The stages around one evaluation; [`Around::default`] is the plain path (data space, no
/// feature metrics, no per-item time).
#[derive(Default, Clone, Copy)]
pub struct Around<'a> {
    /// The prepared feature space of the trial's `features:` slot (needed only when one of
    /// its metrics uses features).
    pub features: Option<&'a FeatureSpace>,
    /// The space sampling runs in, when it is not the data's own.
    pub space: Option<&'a dyn SampleSpace>,
    /// What the trial's guidance prepared (its trained classifier), when it was prepared.
    pub guidance: Option<&'a Prepared>,
    /// Records `sample_ms_per_image`: sampling plus mapping back, per item, in
    /// milliseconds (every trial of a sweep that samples in another space, so the table
    /// compares them in one column).
    pub time_per_item: bool,
}
