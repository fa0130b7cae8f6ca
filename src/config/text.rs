//! Checks on an experiment file's text before it is parsed, and parser errors rephrased.
//!
//! - Size: an experiment is a few kilobytes; a megabyte is refused before parsing.
//! - Nesting: lists and tables more than [`MAX_DEPTH`] deep are refused by a linear scan,
//!   before the YAML reader sees them (its cost grows with the square of the depth: 40000
//!   levels took 20 s, and deeper files would take hours).
//! - Duplicate YAML keys: the YAML reader keeps the last value silently; here the second
//!   one is an error naming its key path (TOML's reader refuses duplicates itself).
//! - Parser errors (recursion and alias limits, several documents, a top level that is not
//!   a table, TOML's multi-line reports) become one line with the cause and a fix.

use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::error::ConfigError;

/// Largest experiment file read (bytes).
pub const MAX_FILE_BYTES: usize = 1 << 20;
/// Deepest nesting of lists and tables (`[` and `{`) accepted. A real experiment needs 3
/// (`data: {means: [[0, 0]]}`).
pub const MAX_DEPTH: usize = 64;

/// The syntax an experiment file is written in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Syntax {
    Yaml,
    Toml,
}

/// Size, nesting and (YAML) duplicate keys, checked before the file is parsed.
pub fn check_text(file: &Path, text: &str, syntax: Syntax) -> Result<(), ConfigError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(ConfigError::file(
            file,
            format!(
                "is {:.1} MB; an experiment file is a few kB (the limit is {} MB)",
                text.len() as f64 / 1e6,
                MAX_FILE_BYTES >> 20
            ),
            "give the path of the experiment file itself (data belongs in a data folder, read by a `data` plugin)",
        ));
    }
    if let Some((line, column)) = too_deep(text, MAX_DEPTH) {
        return Err(ConfigError::file(
            file,
            format!(
                "is nested more than {MAX_DEPTH} levels deep (lists and tables inside each other) at line {line}, column {column}"
            ),
            "remove the extra brackets: an experiment is a few levels deep, e.g. `data: {kind: gmm, means: [[0, 0]]}`",
        ));
    }
    if syntax == Syntax::Yaml {
        let checked = serde_yaml::Deserializer::from_str(text)
            .next()
            .map(|document| KeyPath(String::new()).deserialize(document));
        if let Some(Err(e)) = checked {
            let message = e.to_string();
            if let Some(rest) = message.split(DUPLICATE).nth(1) {
                return Err(ConfigError::file(
                    file,
                    format!("gives the key {DUPLICATE}{rest}"),
                    "remove one of the two (YAML would silently keep only the last)",
                ));
            }
        }
    }
    Ok(())
}

const DUPLICATE: &str = "twice: ";

/// The line and column (1-based) where `[`/`{` nesting first exceeds `limit`, outside
/// quoted strings and comments. A linear scan: it is what keeps absurd nesting cheap.
pub fn too_deep(text: &str, limit: usize) -> Option<(usize, usize)> {
    let mut depth = 0usize;
    let (mut line, mut column) = (1usize, 0usize);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut comment = false;
    let mut previous = '\n';
    for c in text.chars() {
        column += 1;
        if c == '\n' {
            line += 1;
            column = 0;
            comment = false;
        }
        if comment {
            previous = c;
            continue;
        }
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => {
                // A quote opens a string only where a token starts (YAML's `it's` is plain).
                let token_start = previous.is_whitespace() || "[{,:=".contains(previous);
                match c {
                    '"' | '\'' if token_start => quote = Some(c),
                    '#' if previous.is_whitespace() => comment = true,
                    '[' | '{' => {
                        depth += 1;
                        if depth > limit {
                            return Some((line, column));
                        }
                    }
                    ']' | '}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
        }
        previous = c;
    }
    None
}

/// Walks a YAML document and fails on the first key given twice in one table, naming its
/// key path (`data.kind`, `eval[1].kind`).
struct KeyPath(String);

impl KeyPath {
    fn child(&self, key: &str) -> KeyPath {
        if self.0.is_empty() {
            KeyPath(key.to_string())
        } else {
            KeyPath(format!("{}.{key}", self.0))
        }
    }
}

impl<'de> DeserializeSeed<'de> for KeyPath {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyPath {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_i128<E>(self, _: i128) -> Result<(), E> {
        Ok(())
    }
    fn visit_u128<E>(self, _: u128) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bytes<E>(self, _: &[u8]) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while seq
            .next_element_seed(KeyPath(format!("{}[{index}]", self.0)))?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(KeyText(key)) = map.next_key()? {
            let child = self.child(&key);
            if !seen.insert(key) {
                return Err(de::Error::custom(format!("{DUPLICATE}`{}`", child.0)));
            }
            map.next_value_seed(child)?;
        }
        Ok(())
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        // A tagged value (`!tag value`): check the value under it.
        let (IgnoredAny, variant) = data.variant()?;
        de::VariantAccess::newtype_variant_seed(variant, self)
    }
}

/// A table key as text (YAML keys may be numbers, booleans or null too).
struct KeyText(String);

impl<'de> de::Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".into()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyText, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(KeyText("(a list used as a key)".into()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyText, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(KeyText("(a table used as a key)".into()))
            }
        }
        d.deserialize_any(V)
    }
}

/// One line: a parser's error text with its cause named and a fix that fits it.
pub fn parse_error(file: &Path, text: &str) -> ConfigError {
    let text = one_line(text);
    let (message, fix) = if text.contains("recursion limit exceeded") {
        (
            format!("is nested too deeply ({text})"),
            "remove the extra nesting: an experiment is a few levels deep".to_string(),
        )
    } else if text.contains("repetition limit exceeded") {
        (
            "uses YAML aliases (`*name`) that expand to too many values (repetition limit exceeded; an alias bomb?)".to_string(),
            "write the values out, or refer to each anchor only a few times".to_string(),
        )
    } else if text.contains("more than one document") {
        (
            "holds more than one YAML document (separated by `---`)".to_string(),
            "keep one experiment per file: remove the `---` lines or split the file".to_string(),
        )
    } else if text.contains("unknown anchor") {
        (
            format!("uses an alias whose anchor is not defined before it ({text})"),
            "define the anchor first (`key: &name value`), or write the value out".to_string(),
        )
    } else if let Some(found) = text
        .strip_prefix("invalid type: ")
        .and_then(|rest| rest.strip_suffix(", expected a map"))
    {
        (
            format!("the top level must be a table of settings, not {found}"),
            "write `key: value` lines such as `seed: 0` and `data: {kind: gmm}` (see experiments/quickstart.yaml)".to_string(),
        )
    } else if text.contains("number too large") || text.contains("invalid floating-point number") {
        (
            format!("cannot be parsed: {text}"),
            "write numbers that fit in 64 bits: integers up to 9223372036854775807, decimals up to about 1.8e308".to_string(),
        )
    } else {
        (
            format!("cannot be parsed: {text}"),
            "fix the syntax at the position given".to_string(),
        )
    };
    ConfigError::file(file, shorten(&message, 400), fix)
}

/// TOML's multi-line report (a header, the source line with a caret, the cause) as one line:
/// `TOML parse error at line 3, column 8: duplicate key `seed``.
fn one_line(text: &str) -> String {
    let mut lines = text.lines();
    let Some(first) = lines.next() else {
        return String::new();
    };
    let causes: Vec<&str> = lines
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !is_source_line(l))
        .collect();
    if causes.is_empty() {
        first.trim().to_string()
    } else {
        format!("{}: {}", first.trim(), causes.join("; "))
    }
}

/// A numbered source line of TOML's report (`21 | hidden = = 32`).
fn is_source_line(line: &str) -> bool {
    match line.split_once('|') {
        Some((number, _)) => {
            let number = number.trim();
            !number.is_empty() && number.chars().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

/// `text` cut to at most `max` characters (with the count of those left out).
pub fn shorten(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept}… ({} more characters)", count - max)
}
