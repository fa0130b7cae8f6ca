//! Plugin parameters: one macro declares a params struct together with its documented
//! defaults, and decodes it field by field so every error names its exact key path.

use figment::value::{Dict, Value};
use serde::de::DeserializeOwned;

pub use super::bounds::{check_bound, range_text};
use super::{ConfigError, Provenance};

/// One parameter as `runner plugins` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDoc {
    pub name: &'static str,
    pub ty: String,
    pub default: String,
    pub doc: String,
    /// The values allowed, e.g. `1..=65536` (for a list, each element's), where declared.
    pub bound: Option<String>,
}

/// A params struct declared with [`params!`](crate::params).
pub trait Params: Sized + Default + serde::Serialize {
    /// Every field with its type, default and one-line meaning.
    fn docs() -> Vec<ParamDoc>;
    /// Decodes the struct from the raw slot, starting from the defaults.
    fn from_raw(raw: &RawParams) -> Result<Self, ConfigError>;
}

/// The keys of one plugin slot as written (after overrides and sweep values), with the
/// provenance needed to name where a bad value came from.
#[derive(Clone)]
pub struct RawParams<'a> {
    /// Key path of the slot, e.g. `sampler` or `eval[1]`.
    pub path: String,
    /// The keys of the slot except `kind`.
    pub dict: Dict,
    /// The slot's `kind` value as written, so errors about the plugin choice (`kind`) name
    /// where it came from.
    kind: Option<Value>,
    provenance: &'a Provenance,
}

impl<'a> RawParams<'a> {
    pub fn new(path: impl Into<String>, dict: Dict, provenance: &'a Provenance) -> Self {
        RawParams {
            path: path.into(),
            dict,
            kind: None,
            provenance,
        }
    }

    /// Keeps the slot's `kind` value (removed from `dict`) as the origin of errors about it.
    pub fn with_kind_value(mut self, kind: Value) -> Self {
        self.kind = Some(kind);
        self
    }

    /// The value written for `key` (`kind` included).
    fn written(&self, key: &str) -> Option<&Value> {
        match (self.dict.get(key), key) {
            (Some(value), _) => Some(value),
            (None, "kind") => self.kind.as_ref(),
            (None, _) => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.dict.get(key)
    }

    /// Where the slot's values came from, for the raw parameters of a plugin inside it.
    pub fn provenance(&self) -> &'a Provenance {
        self.provenance
    }

    /// Full key path of one field, e.g. `schedule.sigma_max`.
    pub fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{}", self.path, key)
        }
    }

    /// Rejects keys the params struct does not have, suggesting the nearest one.
    pub fn check_keys(&self, known: &[&str]) -> Result<(), ConfigError> {
        for (key, value) in &self.dict {
            if !known.contains(&key.as_str()) {
                let listing = if known.is_empty() {
                    "it takes no parameters".to_string()
                } else {
                    format!("its parameters are: {}", known.join(", "))
                };
                let fix = match super::nearest(key, known.iter().copied()) {
                    Some(near) => format!("did you mean `{near}`? ({listing})"),
                    None => format!("remove it ({listing})"),
                };
                return Err(self.provenance.key_error(
                    value,
                    &self.key_path(key),
                    format!("unknown key `{key}`"),
                    fix,
                ));
            }
        }
        Ok(())
    }

    /// Decodes one field, naming the key path and expected type on failure.
    pub fn decode<T: DeserializeOwned>(
        &self,
        key: &str,
        ty: &str,
    ) -> Result<Option<T>, ConfigError> {
        let Some(value) = self.dict.get(key) else {
            return Ok(None);
        };
        // `steps: 1e3` is a float to YAML: a whole number is accepted where an integer is
        // expected, as the integer it is.
        let first = value.deserialize::<T>();
        if first.is_err() {
            if let Some(whole) = whole_number(value) {
                if let Ok(decoded) = whole.deserialize::<T>() {
                    return Ok(Some(decoded));
                }
            }
        }
        first.map(Some).map_err(|e| {
            let kind = e.kind.to_string();
            let (message, fix) = match (&e.kind, out_of_range_number(&kind)) {
                // A field of enum type (e.g. `train.time_sampling`) lists its choices.
                (figment::error::Kind::UnknownVariant(found, choices), _) => (
                    format!("unknown choice `{found}`"),
                    format!("use one of: {}", choices.join(", ")),
                ),
                (_, Some(number)) => (
                    format!("`{number}` is too large for a 64-bit number ({kind})"),
                    format!(
                        "give a value of type {ty} (integers up to 18446744073709551615, decimals up to about 1.8e308)"
                    ),
                ),
                (_, None) => (kind, format!("give a value of type {ty}")),
            };
            self.provenance
                .key_error(value, &self.key_path(key), message, fix)
        })
    }

    /// An error about one field's value (a broken invariant rather than a wrong type).
    pub fn invalid(
        &self,
        key: &str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        match self.written(key) {
            Some(value) => {
                self.provenance
                    .key_error(value, &self.key_path(key), message.into(), fix.into())
            }
            None => self
                .provenance
                .default_error(&self.key_path(key), message.into(), fix.into()),
        }
    }
}

impl RawParams<'_> {
    /// Refuses a number outside `[min, max]` (NaN too), saying which bound it broke and
    /// `why` that bound is there. Numbers are printed compactly (`1e308`).
    pub fn check_within(
        &self,
        key: &str,
        value: f64,
        (min, max): (f64, f64),
        why: &str,
        fix: &str,
    ) -> Result<(), ConfigError> {
        use super::number;
        if value > max {
            return Err(self.invalid(
                key,
                format!(
                    "{} is above the limit of {} ({why})",
                    number(value),
                    number(max)
                ),
                fix,
            ));
        }
        // NaN fails this too.
        if value.is_nan() || value < min {
            return Err(self.invalid(
                key,
                format!(
                    "must lie in [{}, {}], not {} ({why})",
                    number(min),
                    number(max),
                    number(value)
                ),
                fix,
            ));
        }
        Ok(())
    }

    /// An error about one element inside a field, e.g. `suffix = "[0][1]"` under `means`
    /// names `data.means[0][1]` (the field's own value gives the origin).
    pub fn invalid_at(
        &self,
        key: &str,
        suffix: &str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        let path = format!("{}{suffix}", self.key_path(key));
        match self.written(key) {
            Some(value) => self
                .provenance
                .key_error(value, &path, message.into(), fix.into()),
            None => self
                .provenance
                .default_error(&path, message.into(), fix.into()),
        }
    }
}

/// The number in a decoding error about a value that is a number too large for 64 bits: the
/// YAML reader keeps `1e400` and 2^70 as text, the TOML and YAML readers keep 2^70 as a
/// 128-bit integer.
fn out_of_range_number(kind: &str) -> Option<String> {
    if let Some(rest) = kind.split("found string \"").nth(1) {
        let text = rest.split('"').next()?;
        let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
        let integer = !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit());
        let numeric = digits
            .chars()
            .all(|c| c.is_ascii_digit() || ".eE+-_".contains(c))
            && digits
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit() || c == '.');
        let overflows = if integer {
            text.parse::<i64>().is_err() && text.parse::<u64>().is_err()
        } else {
            numeric && text.parse::<f64>().is_ok_and(f64::is_infinite)
        };
        return overflows.then(|| text.to_string());
    }
    let rest = kind.split("found integer `").nth(1)?;
    let (number, tail) = rest.split_once('`')?;
    (tail.starts_with(" as u128") || tail.starts_with(" as i128")).then(|| number.to_string())
}

/// A float that is a whole number (`1e3`, `1000.0`) as the integer it is, keeping its tag
/// (where it was written); `None` for anything else.
fn whole_number(value: &Value) -> Option<Value> {
    let Value::Num(tag, num) = value else {
        return None;
    };
    let x = num.to_f64()?;
    let is_float = matches!(
        num,
        figment::value::Num::F32(_) | figment::value::Num::F64(_)
    );
    if !(is_float && x.fract() == 0.0 && x.abs() < 9.0e15) {
        return None;
    }
    let whole = if x >= 0.0 {
        figment::value::Num::U64(x as u64)
    } else {
        figment::value::Num::I64(x as i64)
    };
    Some(Value::Num(*tag, whole))
}

/// Removes the spaces `stringify!` puts inside generic types (`Vec < f64 >`).
pub fn type_name(stringified: &str) -> String {
    stringified.replace(' ', "")
}

/// A default as `runner plugins` shows it: its JSON text.
pub fn default_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "?".to_string())
}

/// A field's doc comment lines joined into one line.
pub fn doc_text(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|line| line.trim())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Declares a params struct: fields with doc comments and defaults, `Default`, serde, and
/// [`Params`] (docs for `runner plugins`, field-by-field decoding with key paths).
///
/// Everything the expansion names is reached through this crate (`$crate` and the hidden
/// `scorelab::__private` re-exports), so a plugin crate needs no `serde` or `serde_json` of its
/// own. It does need this crate under its own name, `scorelab` (no `package =` rename).
///
/// ```
/// use scorelab::plugin::prelude::*;
///
/// params! {
///     /// Parameters of the sampler.
///     pub struct LangevinParams {
///         /// Langevin steps per noise level.
///         steps_per_level: usize = 100 => 1..=1_000_000,
///     }
/// }
///
/// assert_eq!(LangevinParams::default().steps_per_level, 100);
/// assert_eq!(LangevinParams::docs()[0].doc, "Langevin steps per noise level.");
/// assert_eq!(LangevinParams::docs()[0].bound.as_deref(), Some("1..=1e6"));
/// ```
///
/// `=> min..=max` after a default bounds the field (each element of a list or option): a
/// value outside is refused while resolving, naming the key path and the bound, and
/// `runner plugins` lists the bound. Every count and size is bounded this way (a test checks
/// each registered plugin), so that no size can outgrow memory before the memory estimate
/// sees it.
#[macro_export]
macro_rules! params {
    (
        $(#[doc = $sdoc:literal])*
        pub struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $field:ident : $ty:ty = $default:expr $(=> $bound:expr)?
            ),* $(,)?
        }
    ) => {
        $(#[doc = $sdoc])*
        #[derive(
            ::std::fmt::Debug,
            ::std::clone::Clone,
            ::std::cmp::PartialEq,
            $crate::__private::serde::Serialize,
            $crate::__private::serde::Deserialize,
        )]
        // The derive's own paths: `scorelab` is in every caller's extern prelude (inside this
        // crate through `extern crate self as scorelab`), so a plugin crate needs no serde.
        #[serde(crate = "scorelab::__private::serde", deny_unknown_fields, default)]
        pub struct $name {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl ::std::default::Default for $name {
            fn default() -> Self {
                $name { $( $field: $default, )* }
            }
        }

        // Absolute paths throughout: a plugin file may well have its own `Result` in scope.
        impl $crate::config::Params for $name {
            fn docs() -> ::std::vec::Vec<$crate::config::ParamDoc> {
                #[allow(unused_variables)]
                let defaults = <$name as ::std::default::Default>::default();
                ::std::vec![ $(
                    $crate::config::ParamDoc {
                        name: ::std::stringify!($field),
                        ty: $crate::config::params::type_name(::std::stringify!($ty)),
                        default: $crate::config::params::default_text(&defaults.$field),
                        doc: $crate::config::params::doc_text(&[$($doc),*]),
                        bound: $crate::__param_bound_text!($($bound)?),
                    },
                )* ]
            }

            fn from_raw(
                raw: &$crate::config::RawParams,
            ) -> ::std::result::Result<Self, $crate::config::ConfigError> {
                raw.check_keys(&[$(::std::stringify!($field)),*])?;
                #[allow(unused_mut)]
                let mut params = <$name as ::std::default::Default>::default();
                $(
                    if let ::std::option::Option::Some(value) = raw.decode::<$ty>(
                        ::std::stringify!($field),
                        &$crate::config::params::type_name(::std::stringify!($ty)),
                    )? {
                        params.$field = value;
                    }
                    $(
                        $crate::config::params::check_bound(
                            raw,
                            ::std::stringify!($field),
                            &params.$field,
                            $bound,
                            &$crate::config::params::default_text(
                                &<$name as ::std::default::Default>::default().$field,
                            ),
                        )?;
                    )?
                )*
                ::std::result::Result::Ok(params)
            }
        }
    };
}

/// The text of a field's bound for [`ParamDoc::bound`] (used by [`params!`](crate::params)).
#[doc(hidden)]
#[macro_export]
macro_rules! __param_bound_text {
    () => {
        ::std::option::Option::None
    };
    ($bound:expr) => {
        ::std::option::Option::Some($crate::config::params::range_text(&$bound))
    };
}

crate::params! {
    /// For plugins without parameters.
    pub struct NoParams {}
}
