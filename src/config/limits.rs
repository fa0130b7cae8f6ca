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
