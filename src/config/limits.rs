//! Sizes and rates beyond which a setting is refused while resolving: valid numbers, but more
//! than a run can sensibly hold or do. Every part of the engine and every plugin checks its
//! settings against these same bounds.

/// Most items a data set or sample set may have (they are held in memory).
pub const MAX_ITEMS: usize = 100_000_000;
/// Most training steps: 10^9 steps of even a tiny network take weeks on a CPU.
pub const MAX_STEPS: usize = 1_000_000_000;
/// Most examples per training step.
pub const MAX_BATCH: usize = 1_000_000;
/// Largest learning rate accepted: Adam's steps are about `lr` in size, so anything above
/// this diverges at once.
pub const MAX_LR: f64 = 10.0;
/// Widest layer, channel count, feature or embedding size of a network (a 65536 × 65536
/// layer alone is 16 GiB of weights; the memory estimate refuses what does not fit).
pub const MAX_WIDTH: usize = 65_536;
/// Most layers or residual blocks per level of a network.
pub const MAX_LAYERS: usize = 1_000;
/// Largest channel multiplier of a U-Net-like level.
pub const MAX_CHANNEL_MULT: usize = 64;
/// Most classes a model or classifier may be conditioned on.
pub const MAX_CLASSES: usize = 100_000;
/// Most points a metric compares, repetitions (subsets, projections, probes) it averages, or
/// neighbours it counts.
pub const MAX_POINTS: usize = 1_000_000;
/// Most repetitions a metric averages over (subsets, projections, probes).
pub const MAX_REPEATS: usize = 100_000;
/// Largest side of an image, in pixels.
pub const MAX_SIDE: usize = 4_096;
