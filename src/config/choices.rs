//! The value types a plugin parameter may take beyond plain numbers, strings and lists: a
//! count or a number that may be `auto`, and a plugin chosen inside another plugin's table.
//! Each serialises as a plain value would where it can, so a parameter that gains one keeps
//! the resolved configs, and the trial ids, it had.

/// A whole number, or `auto` for a count the plugin derives (e.g. `num_levels: auto`). A
/// count serialises as the integer it is (`10`, never `10.0`), so a parameter that gains
/// `auto` keeps the resolved configs, and the trial ids, it had as a plain `usize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountOrAuto {
    Auto,
    Count(usize),
}

impl serde::Serialize for CountOrAuto {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            CountOrAuto::Auto => serializer.serialize_str("auto"),
            CountOrAuto::Count(n) => serializer.serialize_u64(*n as u64),
        }
    }
}

impl<'de> serde::Deserialize<'de> for CountOrAuto {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = CountOrAuto;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a whole number or `auto`")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<CountOrAuto, E> {
                usize::try_from(v)
                    .map(CountOrAuto::Count)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<CountOrAuto, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(serde::de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CountOrAuto, E> {
                match v {
                    "auto" => Ok(CountOrAuto::Auto),
                    _ => Err(E::invalid_type(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A number, or `auto` for a value the plugin derives from the data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NumberOrAuto {
    Auto,
    Number(f64),
}

impl serde::Serialize for NumberOrAuto {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            NumberOrAuto::Auto => serializer.serialize_str("auto"),
            NumberOrAuto::Number(v) => serializer.serialize_f64(*v),
        }
    }
}

impl<'de> serde::Deserialize<'de> for NumberOrAuto {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(f64),
            Word(String),
        }
        match Either::deserialize(deserializer) {
            Ok(Either::Number(v)) => Ok(NumberOrAuto::Number(v)),
            Ok(Either::Word(w)) if w == "auto" => Ok(NumberOrAuto::Auto),
            Ok(Either::Word(w)) => Err(serde::de::Error::custom(format!(
                "expected a number or `auto`, found `{w}`"
            ))),
            Err(_) => Err(serde::de::Error::custom("expected a number or `auto`")),
        }
    }
}

/// A plugin chosen inside another plugin's table (`pc`'s `predictor`): its name, or a
/// `{kind: NAME, ...}` table with its parameters (without `kind`: the owner's default). Resolved, it holds every parameter of the
/// chosen plugin, defaults included, so the trial's id covers them.
#[derive(Debug, Clone, PartialEq)]
pub struct SubPlugin {
    pub kind: String,
    pub params: serde_json::Map<String, serde_json::Value>,
}

impl SubPlugin {
    /// The plugin `kind` with its defaults.
    pub fn named(kind: &str) -> Self {
        SubPlugin {
            kind: kind.to_string(),
            params: serde_json::Map::new(),
        }
    }

    /// The plugin `kind` with its resolved parameters (a JSON object; anything else is none).
    pub fn resolved(kind: &str, params: serde_json::Value) -> Self {
        let params = match params {
            serde_json::Value::Object(fields) => fields,
            _ => serde_json::Map::new(),
        };
        SubPlugin {
            kind: kind.to_string(),
            params,
        }
    }
}

impl serde::Serialize for SubPlugin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut table = serde_json::Map::new();
        table.insert("kind".into(), self.kind.clone().into());
        table.extend(self.params.clone());
        table.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for SubPlugin {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bad = || serde::de::Error::custom("expected a plugin name or a table with `kind`");
        match serde_json::Value::deserialize(deserializer).map_err(|_| bad())? {
            serde_json::Value::String(kind) => Ok(SubPlugin::named(&kind)),
            // No `kind`: the owner's default plugin, named when it is built.
            serde_json::Value::Object(mut table) => match table.remove("kind") {
                Some(serde_json::Value::String(kind)) => Ok(SubPlugin {
                    kind,
                    params: table,
                }),
                None => Ok(SubPlugin {
                    kind: String::new(),
                    params: table,
                }),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}
