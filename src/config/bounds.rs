//! Bounds on plugin parameters (`=> min..=max` in [`params!`](crate::params)): the one rule by
//! which every count and size is refused beyond what a run can hold, with the key path and
//! the bound.

use std::ops::RangeInclusive;

use super::{number, ConfigError, RawParams};

/// A number a bound can be put on.
pub trait BoundNumber: Copy + PartialOrd {
    fn as_f64(self) -> f64;
    /// The value as an error shows it: integers in full, decimals compactly (`1e308`).
    fn text(self) -> String {
        number(self.as_f64())
    }
}

macro_rules! bound_number {
    ($($t:ty),*) => {
        $(impl BoundNumber for $t {
            fn as_f64(self) -> f64 {
                self as f64
            }
            fn text(self) -> String {
                self.to_string()
            }
        })*
    };
}
bound_number!(usize, u8, u16, u32, u64, i32, i64);

impl BoundNumber for f32 {
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl BoundNumber for f64 {
    fn as_f64(self) -> f64 {
        self
    }
}

/// A field a bound applies to: a number, or each element of a list or option of them.
pub trait Bounded {
    type Item: BoundNumber;
    /// Each value with its path below the field (`""` for the field itself, `"[1]"`).
    fn values(&self) -> Vec<(String, Self::Item)>;
}

macro_rules! bounded_number {
    ($($t:ty),*) => {
        $(impl Bounded for $t {
            type Item = $t;
            fn values(&self) -> Vec<(String, $t)> {
                vec![(String::new(), *self)]
            }
        })*
    };
}
bounded_number!(usize, u8, u16, u32, u64, i32, i64, f32, f64);

impl<T: Bounded> Bounded for Vec<T> {
    type Item = T::Item;
    fn values(&self) -> Vec<(String, T::Item)> {
        self.iter()
            .enumerate()
            .flat_map(|(i, v)| {
                v.values()
                    .into_iter()
                    .map(move |(suffix, x)| (format!("[{i}]{suffix}"), x))
            })
            .collect()
    }
}

impl<T: Bounded> Bounded for Option<T> {
    type Item = T::Item;
    fn values(&self) -> Vec<(String, T::Item)> {
        self.as_ref().map_or_else(Vec::new, Bounded::values)
    }
}

/// A bound as `runner plugins` and the errors show it: `1..=65536`, `1..=1e8`.
pub fn range_text<T: BoundNumber>(range: &RangeInclusive<T>) -> String {
    format!(
        "{}..={}",
        number(range.start().as_f64()),
        number(range.end().as_f64())
    )
}

/// Refuses a value of `key` (or an element of it) outside `range`, naming the key path, the
/// bound and the default.
pub fn check_bound<B: Bounded>(
    raw: &RawParams,
    key: &str,
    value: &B,
    range: RangeInclusive<B::Item>,
    default: &str,
) -> Result<(), ConfigError> {
    for (suffix, x) in value.values() {
        // NaN fails both comparisons.
        let inside = x >= *range.start() && x <= *range.end();
        if inside {
            continue;
        }
        let (low, high) = (range.start().as_f64(), range.end().as_f64());
        let message = if x > *range.end() {
            format!(
                "{} is above the limit of {} (bound {})",
                x.text(),
                number(high),
                range_text(&range)
            )
        } else if x < *range.start() {
            format!(
                "must be at least {}, not {} (bound {})",
                number(low),
                x.text(),
                range_text(&range)
            )
        } else {
            format!(
                "must lie in [{}, {}], not {}",
                number(low),
                number(high),
                x.text()
            )
        };
        let example = match default {
            "null" => String::new(),
            default => format!(", e.g. `{key}: {default}` (the default)"),
        };
        let fix = format!(
            "give a value in {}{example}; `runner plugins` lists every bound",
            range_text(&range)
        );
        return Err(raw.invalid_at(key, &suffix, message, fix));
    }
    Ok(())
}

impl Bounded for super::CountOrAuto {
    type Item = usize;
    fn values(&self) -> Vec<(String, usize)> {
        match self {
            super::CountOrAuto::Count(n) => vec![(String::new(), *n)],
            super::CountOrAuto::Auto => Vec::new(),
        }
    }
}
