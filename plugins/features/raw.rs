//! `raw`: the items themselves as features — pixels of images, coordinates of points (a
//! sanity baseline: FID on raw pixels is `fd` on images).

use scorelab::config::{NoParams, Params, RawParams};
use scorelab::dataset::Samples;
use scorelab::features::{FeatureExtractor, FeatureMap, FeaturesContext, PrepareContext};
use scorelab::registry::{BuildResult, Builder, Built, Plugin};

pub struct Raw;

impl FeatureExtractor for Raw {
    fn prepare(&self, _context: &mut PrepareContext) -> Result<Box<dyn FeatureMap>, String> {
        Ok(Box::new(RawMap))
    }
}

/// The identity map.
pub struct RawMap;

impl FeatureMap for RawMap {
    fn extract(&self, items: &Samples) -> Result<Samples, String> {
        Ok(Samples::new(items.dim(), items.as_slice().to_vec()))
    }

    fn identity(&self) -> String {
        "raw".to_string()
    }
}

fn build(raw: &RawParams, _context: &FeaturesContext) -> BuildResult<dyn FeatureExtractor> {
    let params = NoParams::from_raw(raw)?;
    Ok(Built::new(Box::new(Raw), &params))
}

inventory::submit! {
    Plugin {
        name: "raw",
        about: "the items themselves (pixels or coordinates) as features",
        params: NoParams::docs,
        build: Builder::Features(build),
    }
}
