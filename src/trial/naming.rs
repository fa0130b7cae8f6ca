//! How trials are named: stable hashes of resolved configs, readable labels of swept
//! values, and folder-safe names.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// Hex prefix of the SHA-256 of the canonical (key-sorted, compact) JSON.
pub fn stable_hash(value: &serde_json::Value) -> String {
    let digest = Sha256::digest(canonical_json(value).as_bytes());
    digest.iter().take(5).map(|b| format!("{b:02x}")).collect()
}

fn canonical_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let sorted: BTreeMap<&String, String> =
                map.iter().map(|(k, v)| (k, canonical_json(v))).collect();
            let fields: Vec<String> = sorted
                .iter()
                .map(|(k, v)| format!("{}:{v}", serde_json::Value::from(k.as_str())))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        serde_json::Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(canonical_json)
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

/// A value as people write it: strings without quotes.
/// A plugin table reads as `kind(key=value,...)`, e.g. `heun(steps=18)`.
pub fn display_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(map) if map.get("kind").is_some_and(|k| k.is_string()) => {
            let settings: Vec<String> = map
                .iter()
                .filter(|(k, _)| k.as_str() != "kind")
                .map(|(k, v)| format!("{k}={}", display_value(v)))
                .collect();
            let kind = display_value(&map["kind"]);
            if settings.is_empty() {
                kind
            } else {
                format!("{kind}({})", settings.join(","))
            }
        }
        other => other.to_string(),
    }
}

/// The last part of a key path; a slot's `kind` is named by its slot (`weighting.kind` →
/// `weighting`).
pub fn short_key(key: &str) -> String {
    let mut parts = key.rsplit('.');
    match (parts.next(), parts.next()) {
        (Some("kind"), Some(slot)) => slot.to_string(),
        (Some(last), _) => last.to_string(),
        _ => key.to_string(),
    }
}

/// `num_levels=10,sigma_max=auto`: the last part of each swept key, or the whole path when
/// two swept keys end alike.
pub(super) fn label_of(assignments: &[(String, serde_json::Value)]) -> String {
    if assignments.is_empty() {
        return "base".to_string();
    }
    let shorts: Vec<String> = assignments.iter().map(|(k, _)| short_key(k)).collect();
    assignments
        .iter()
        .zip(&shorts)
        .map(|((key, value), s)| {
            let name = if shorts.iter().filter(|o| *o == s).count() > 1 {
                key.clone()
            } else {
                s.clone()
            };
            format!("{name}={}", display_value(value))
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn sanitize(label: &str) -> String {
    let clean: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._=-,".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    clean
}
