//! Feature extractors: maps from data items to vectors in which FID-style metrics compare
//! generated samples with held-out data (pixels, a classifier's penultimate layer, Inception's
//! pool3). An extractor is prepared once per sweep (it may train or load a network and cache
//! it under the results folder); metrics then see the features of one trial's samples.
//!
//! The `classifier` extractor's network (`classifier`) and its trained feature map and cache
//! folder (`trained`) are the engine's; the one loop trains it (`train::feature_classifier`,
//! a layer above), and the plugin fills in its spec.

pub mod classifier;
pub mod trained;

use std::path::Path;

use candle_core::Device;

use crate::dataset::Samples;

/// What a feature plugin may check when it is built.
pub struct FeaturesContext<'a> {
    /// One data item's shape: `[dim]` for points, `[C, H, W]` for images.
    pub shape: &'a [usize],
    /// Number of classes of the data's labels (0: unlabelled).
    pub classes: usize,
}

/// What preparing an extractor may use (once per sweep and distinct extractor config).
pub struct PrepareContext<'a> {
    pub training_data: &'a Samples,
    pub held_out: &'a Samples,
    /// A folder under the results folder where the extractor may cache what it trains.
    pub cache: &'a Path,
    pub device: &'a Device,
    pub seed: u64,
    /// Training steps between snapshots of what it trains (the trial's `checkpoint_every`), so
    /// a killed run resumes there.
    pub checkpoint_every: usize,
    /// Progress lines for the user (training a classifier takes a while).
    pub log: &'a mut dyn FnMut(&str),
    /// The loss records of what it trains, as they come (TensorBoard shows them live).
    pub live: crate::artifact::OnLiveRecord<'a>,
}

/// A feature extractor as configured.
pub trait FeatureExtractor: Send + Sync {
    /// Makes the feature map ready: trains or loads what it needs.
    fn prepare(&self, context: &mut PrepareContext) -> Result<Box<dyn FeatureMap>, String>;
}

/// A prepared feature map.
pub trait FeatureMap: Send + Sync {
    /// Features of each item, as (n, d) points.
    fn extract(&self, items: &Samples) -> Result<Samples, String>;

    /// The class each item is assigned, where the extractor is a classifier.
    fn classify(&self, _items: &Samples) -> Option<Result<Vec<u32>, String>> {
        None
    }

    /// Name plus a hash of weights and config, recorded with every metric computed in this
    /// space so numbers from different extractors are never compared by mistake.
    fn identity(&self) -> String;

    /// Facts to record once per trial (e.g. a classifier's held-out accuracy).
    fn facts(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }
}

/// One trial's samples and reference data in a feature space.
pub struct FeatureSet {
    /// Features of the generated samples.
    pub samples: Samples,
    /// Features of the held-out reference data.
    pub reference: Samples,
    /// The extractor's class for each generated sample, where it is a classifier.
    pub predicted: Option<Vec<u32>>,
    /// The class each sample was generated for, where the network is class-conditional.
    pub intended: Option<Vec<u32>>,
    /// The extractor's [`FeatureMap::identity`].
    pub identity: String,
}

impl FeatureSet {
    /// The features of `samples` against the space's reference, with the classes the map
    /// assigns them and the classes they were generated for.
    pub fn of_samples(space: &FeatureSpace, samples: &Samples) -> Result<Self, String> {
        let predicted = space.map.classify(samples).transpose()?;
        Ok(FeatureSet {
            samples: space.map.extract(samples)?,
            reference: space.reference.clone(),
            predicted,
            intended: samples.labels().map(<[u32]>::to_vec),
            identity: space.map.identity(),
        })
    }
}

/// A prepared feature map with what every trial on the same data shares: the features of
/// the held-out reference, and the real-vs-real floor, real training items scored as if
/// they were samples (what a perfect model would reach at that sample count).
pub struct FeatureSpace {
    pub map: Box<dyn FeatureMap>,
    pub reference: Samples,
    pub floor: FeatureSet,
}

impl FeatureSpace {
    /// Extracts the reference and the floor set (`samples` training items) once.
    pub fn new(
        map: Box<dyn FeatureMap>,
        training: &Samples,
        held_out: &Samples,
        samples: usize,
    ) -> Result<Self, String> {
        let reference = map.extract(held_out)?;
        let floor = FeatureSet {
            samples: map.extract(&training.head(samples))?,
            reference: reference.clone(),
            predicted: None,
            intended: None,
            identity: map.identity(),
        };
        Ok(FeatureSpace {
            map,
            reference,
            floor,
        })
    }
}
