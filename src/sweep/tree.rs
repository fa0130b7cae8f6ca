//! One trial's config, built layer by layer: the file, then each assignment of the
//! file's sweep, the command-line values and the command-line sweeps. Every leaf remembers
//! which source set it, so that the figment built at the end names, for each value, the
//! file, the `sweep:` section or the very override it came from.

use std::collections::BTreeMap;
use std::path::Path;

use figment::value::{Dict, Map, Tag, Value};
use figment::{Figment, Metadata, Profile, Provider};

/// A table of the config, or a value (lists are values; their elements are set by index).
#[derive(Debug, Clone)]
pub(super) enum Node {
    Table {
        entries: BTreeMap<String, Node>,
        source: usize,
    },
    Leaf {
        value: Value,
        source: usize,
    },
}

/// The value with every tag reset, so that the provider it is served by tags it: each value
/// then names its source (for errors and `runner show`) in the figment built here, whatever
/// figment it was read from.
fn untagged(value: &Value) -> Value {
    match value {
        Value::String(_, v) => Value::String(Tag::Default, v.clone()),
        Value::Char(_, v) => Value::Char(Tag::Default, *v),
        Value::Bool(_, v) => Value::Bool(Tag::Default, *v),
        Value::Num(_, v) => Value::Num(Tag::Default, *v),
        Value::Empty(_, v) => Value::Empty(Tag::Default, *v),
        Value::Dict(_, dict) => Value::Dict(
            Tag::Default,
            dict.iter().map(|(k, v)| (k.clone(), untagged(v))).collect(),
        ),
        Value::Array(_, items) => Value::Array(Tag::Default, items.iter().map(untagged).collect()),
    }
}

impl Node {
    fn from_value(value: &Value, source: usize) -> Node {
        match value {
            Value::Dict(_, dict) => Node::Table {
                entries: dict
                    .iter()
                    .map(|(k, v)| (k.clone(), Node::from_value(v, source)))
                    .collect(),
                source,
            },
            other => Node::Leaf {
                value: untagged(other),
                source,
            },
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            Node::Table { entries, .. } => Value::from(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect::<Dict>(),
            ),
            Node::Leaf { value, .. } => value.clone(),
        }
    }
}

/// The root table of a config under construction.
#[derive(Debug, Clone, Default)]
pub(super) struct Tree {
    pub root: BTreeMap<String, Node>,
}

fn index(part: &str) -> Option<usize> {
    part.parse::<usize>().ok()
}

impl Tree {
    pub fn from_dict(dict: &Dict, source: usize) -> Tree {
        Tree {
            root: dict
                .iter()
                .map(|(k, v)| (k.clone(), Node::from_value(v, source)))
                .collect(),
        }
    }

    pub fn to_dict(&self) -> Dict {
        self.root
            .iter()
            .map(|(k, v)| (k.clone(), v.to_value()))
            .collect()
    }

    /// The value at a dotted key path (list elements by index), if set.
    pub fn get(&self, path: &str) -> Option<Value> {
        let parts: Vec<&str> = path.split('.').collect();
        let mut map = &self.root;
        for (i, part) in parts.iter().enumerate() {
            match map.get(*part)? {
                Node::Table { entries, .. } => map = entries,
                node @ Node::Leaf { value, .. } => {
                    let mut value = value;
                    if i + 1 == parts.len() {
                        return Some(node.to_value());
                    }
                    for part in &parts[i + 1..] {
                        value = match value {
                            Value::Array(_, items) => items.get(index(part)?)?,
                            Value::Dict(_, dict) => dict.get(*part)?,
                            _ => return None,
                        };
                    }
                    return Some(value.clone());
                }
            }
        }
        Some(
            Node::Table {
                entries: map.clone(),
                source: 0,
            }
            .to_value(),
        )
    }

    /// Sets a dotted key path. A table value merges into the table there (as Hydra and
    /// figment merge); any other value replaces what was there. A number indexes into a
    /// list (`data.weights.0`), which must be long enough.
    pub fn set(&mut self, path: &str, value: Value, source: usize) -> Result<(), String> {
        let parts: Vec<&str> = path.split('.').collect();
        set_in(&mut self.root, &parts, path, value, source)
    }

    /// Removes a dotted key path (a list element by index); whether anything was there.
    pub fn remove(&mut self, path: &str) -> Result<bool, String> {
        let parts: Vec<&str> = path.split('.').collect();
        remove_in(&mut self.root, &parts, path)
    }

    /// The figment of this config: one provider per source, each holding the values that
    /// source set (`names[i]` names source i; source 0 is the experiment file).
    pub fn figment(&self, file: &Path, names: &[String]) -> Figment {
        let mut parts: Vec<Dict> = vec![Dict::new(); names.len().max(1)];
        split(&self.root, &mut Vec::new(), &mut parts);
        let mut figment = Figment::new();
        for (source, dict) in parts.into_iter().enumerate() {
            if dict.is_empty() && source != 0 {
                continue;
            }
            figment = figment.merge(Layer {
                metadata: if source == 0 {
                    Metadata::from(names[0].clone(), figment::Source::File(file.to_path_buf()))
                } else {
                    Metadata::named(names[source].clone())
                },
                dict,
            });
        }
        figment
    }
}

fn set_in(
    map: &mut BTreeMap<String, Node>,
    parts: &[&str],
    path: &str,
    value: Value,
    source: usize,
) -> Result<(), String> {
    let Some((head, rest)) = parts.split_first() else {
        return Ok(());
    };
    if rest.is_empty() {
        match value {
            Value::Dict(_, dict) => {
                let node = map.entry(head.to_string()).or_insert(Node::Table {
                    entries: BTreeMap::new(),
                    source,
                });
                if !matches!(node, Node::Table { .. }) {
                    *node = Node::Table {
                        entries: BTreeMap::new(),
                        source,
                    };
                }
                if let Node::Table { entries, .. } = node {
                    for (k, v) in dict {
                        set_in(entries, &[k.as_str()], path, v, source)?;
                    }
                }
            }
            value => {
                let value = untagged(&value);
                map.insert(head.to_string(), Node::Leaf { value, source });
            }
        }
        return Ok(());
    }
    let node = map.entry(head.to_string()).or_insert(Node::Table {
        entries: BTreeMap::new(),
        source,
    });
    match node {
        Node::Table { entries, .. } => set_in(entries, rest, path, value, source),
        Node::Leaf {
            value: list @ Value::Array(..),
            source: leaf_source,
        } => {
            let depth = path.split('.').count() - rest.len();
            let list_key: Vec<&str> = path.split('.').take(depth).collect();
            set_in_value(list, rest, &list_key.join("."), value)?;
            *leaf_source = source;
            Ok(())
        }
        Node::Leaf {
            value: name,
            source: named,
        } => {
            // A plugin named by its shorthand (`launcher: slurm`) keeps its name when a
            // setting is made below it (`launcher.partition=gpu`); other values give way.
            let mut entries = BTreeMap::new();
            if let Value::String(..) = name {
                let kind = Node::Leaf {
                    value: name.clone(),
                    source: *named,
                };
                entries.insert("kind".to_string(), kind);
            }
            *node = Node::Table { entries, source };
            match node {
                Node::Table { entries, .. } => set_in(entries, rest, path, value, source),
                Node::Leaf { .. } => Ok(()),
            }
        }
    }
}

/// What to write when a list index is wrong.
fn index_error(key: &str, part: &str, len: usize) -> String {
    if len == 0 {
        format!("`{key}` is an empty list, so it has no element {part}")
    } else {
        format!(
            "`{key}` is a list of {len}: its elements are {key}.0 to {key}.{}, not {key}.{part}",
            len - 1
        )
    }
}

/// Sets a path inside a value (a list by index, a table by key). The list or table gets a
/// fresh tag, so that it is attributed to the source that changed it.
fn set_in_value(target: &mut Value, parts: &[&str], key: &str, new: Value) -> Result<(), String> {
    let Some((head, rest)) = parts.split_first() else {
        *target = untagged(&new);
        return Ok(());
    };
    let here = format!("{key}.{head}");
    match target {
        Value::Array(_, items) => {
            let len = items.len();
            let i = index(head)
                .filter(|i| *i < len)
                .ok_or_else(|| index_error(key, head, len))?;
            set_in_value(&mut items[i], rest, &here, new)?;
            *target = Value::Array(Tag::Default, std::mem::take(items));
        }
        Value::Dict(_, dict) => {
            let entry = dict
                .entry(head.to_string())
                .or_insert_with(|| Value::from(Dict::new()));
            set_in_value(entry, rest, &here, new)?;
            *target = Value::Dict(Tag::Default, std::mem::take(dict));
        }
        _ => {
            return Err(format!(
                "`{key}` is a single value, not a list or table, so it has no `{head}`"
            ))
        }
    }
    Ok(())
}

fn remove_in(map: &mut BTreeMap<String, Node>, parts: &[&str], path: &str) -> Result<bool, String> {
    let Some((head, rest)) = parts.split_first() else {
        return Ok(false);
    };
    if rest.is_empty() {
        return Ok(map.remove(*head).is_some());
    }
    match map.get_mut(*head) {
        Some(Node::Table { entries, .. }) => remove_in(entries, rest, path),
        Some(Node::Leaf { value, .. }) => {
            let key_parts = path.split('.').count() - rest.len();
            let key: Vec<&str> = path.split('.').take(key_parts).collect();
            remove_in_value(value, rest, &key.join("."))
        }
        None => Ok(false),
    }
}

fn remove_in_value(target: &mut Value, parts: &[&str], key: &str) -> Result<bool, String> {
    let Some((head, rest)) = parts.split_first() else {
        return Ok(false);
    };
    let here = format!("{key}.{head}");
    match target {
        Value::Array(_, items) => {
            let len = items.len();
            let i = index(head)
                .filter(|i| *i < len)
                .ok_or_else(|| index_error(key, head, len))?;
            if rest.is_empty() {
                items.remove(i);
            } else if !remove_in_value(&mut items[i], rest, &here)? {
                return Ok(false);
            }
            *target = Value::Array(Tag::Default, std::mem::take(items));
            Ok(true)
        }
        Value::Dict(_, dict) => {
            let removed = if rest.is_empty() {
                dict.remove(*head).is_some()
            } else {
                match dict.get_mut(*head) {
                    Some(inner) => remove_in_value(inner, rest, &here)?,
                    None => false,
                }
            };
            if removed {
                *target = Value::Dict(Tag::Default, std::mem::take(dict));
            }
            Ok(removed)
        }
        _ => Ok(false),
    }
}

/// Distributes the leaves over one dict per source (an empty table goes to its maker).
fn split(map: &BTreeMap<String, Node>, path: &mut Vec<String>, out: &mut [Dict]) {
    for (key, node) in map {
        path.push(key.clone());
        match node {
            Node::Table { entries, source } if entries.is_empty() => {
                insert(&mut out[*source], path, Value::from(Dict::new()));
            }
            Node::Table { entries, .. } => split(entries, path, out),
            Node::Leaf { value, source } => insert(&mut out[*source], path, value.clone()),
        }
        path.pop();
    }
}

/// The tag of the tables that only hold other values: one that no figment built here has
/// metadata for, so that a table is attributed to no source (each of its values names its
/// own), where figment would otherwise give it the last source that set anything in it.
fn table_tag() -> Tag {
    static TAG: std::sync::OnceLock<Tag> = std::sync::OnceLock::new();
    *TAG.get_or_init(|| {
        let probe = Figment::new().merge(Layer {
            metadata: Metadata::named("tables"),
            dict: Dict::from([("t".to_string(), Value::from(0))]),
        });
        probe.find_value("t").map(|v| v.tag()).unwrap_or_default()
    })
}

fn insert(dict: &mut Dict, path: &[String], value: Value) {
    let (last, parents) = path.split_last().expect("a path has a key");
    let mut dict = dict;
    for part in parents {
        let entry = dict
            .entry(part.clone())
            .or_insert_with(|| Value::Dict(table_tag(), Dict::new()));
        if !matches!(entry, Value::Dict(..)) {
            *entry = Value::Dict(table_tag(), Dict::new());
        }
        dict = match entry {
            Value::Dict(_, inner) => inner,
            _ => unreachable!("just made a table"),
        };
    }
    dict.insert(last.clone(), value);
}

/// One source's values, under its name (the file's under the file's path).
struct Layer {
    metadata: Metadata,
    dict: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Map::from([(Profile::Default, self.dict.clone())]))
    }
}
