//! TensorBoard's HParams plugin: each trial's event file starts a "session" with the trial's
//! swept values and ends it with its status, and one experiment summary at the top of the
//! log folder lists the swept keys and the metric tags, so the HParams tab shows the sweep as
//! one table and a parallel-coordinates view. The messages are the fields of the plugin's
//! `plugin_data.proto` and `api.proto` (and protobuf's `struct.proto`) that we write.

use std::path::Path;

use prost::Message;

use super::error::TensorBoardError;
use super::event::{
    Dimension, Event, Payload, PluginData, Summary, SummaryMetadata, SummaryValue, TensorProto,
    TensorShape, What,
};
use super::writer::{wall_time_now, EventWriter};

const PLUGIN_NAME: &str = "hparams";
const EXPERIMENT_TAG: &str = "_hparams_/experiment";
const SESSION_START_TAG: &str = "_hparams_/session_start_info";
const SESSION_END_TAG: &str = "_hparams_/session_end_info";
/// `DataType`: DATA_TYPE_STRING, DATA_TYPE_BOOL, DATA_TYPE_FLOAT64.
const STRING: i32 = 1;
const BOOL: i32 = 2;
const FLOAT64: i32 = 3;
/// `Status`: STATUS_SUCCESS, STATUS_FAILURE.
const SUCCESS: i32 = 1;
const FAILURE: i32 = 2;
/// `DataType.DT_FLOAT` and `DT_STRING` of TensorFlow's `types.proto`.
const DT_FLOAT: i32 = 1;
const DT_STRING: i32 = 7;
/// The tag of a failed session's cause, a text summary (TensorBoard's Text tab).
pub const FAILURE_TAG: &str = "failure";

#[derive(Clone, PartialEq, Message)]
struct PluginDataProto {
    #[prost(int32, tag = "1")]
    version: i32,
    #[prost(oneof = "Data", tags = "2, 3, 4")]
    data: Option<Data>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Data {
    #[prost(message, tag = "2")]
    Experiment(Experiment),
    #[prost(message, tag = "3")]
    SessionStart(SessionStartInfo),
    #[prost(message, tag = "4")]
    SessionEnd(SessionEndInfo),
}

#[derive(Clone, PartialEq, Message)]
struct Experiment {
    #[prost(string, tag = "1")]
    description: String,
    #[prost(message, repeated, tag = "4")]
    hparam_infos: Vec<HParamInfo>,
    #[prost(message, repeated, tag = "5")]
    metric_infos: Vec<MetricInfo>,
}

#[derive(Clone, PartialEq, Message)]
struct HParamInfo {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(int32, tag = "4")]
    r#type: i32,
    #[prost(message, optional, tag = "5")]
    domain_discrete: Option<ListValue>,
}

#[derive(Clone, PartialEq, Message)]
struct MetricInfo {
    #[prost(message, optional, tag = "1")]
    name: Option<MetricName>,
}

#[derive(Clone, PartialEq, Message)]
struct MetricName {
    #[prost(string, tag = "1")]
    group: String,
    #[prost(string, tag = "2")]
    tag: String,
}

#[derive(Clone, PartialEq, Message)]
struct SessionStartInfo {
    #[prost(btree_map = "string, message", tag = "1")]
    hparams: std::collections::BTreeMap<String, Value>,
    #[prost(string, tag = "4")]
    group_name: String,
    #[prost(double, tag = "5")]
    start_time_secs: f64,
}

#[derive(Clone, PartialEq, Message)]
struct SessionEndInfo {
    #[prost(int32, tag = "1")]
    status: i32,
    #[prost(double, tag = "2")]
    end_time_secs: f64,
}

/// `google.protobuf.Value`, for the kinds a swept value can have.
#[derive(Clone, PartialEq, Message)]
struct Value {
    #[prost(oneof = "Kind", tags = "2, 3, 4")]
    kind: Option<Kind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Kind {
    #[prost(double, tag = "2")]
    Number(f64),
    #[prost(string, tag = "3")]
    Text(String),
    #[prost(bool, tag = "4")]
    Bool(bool),
}

#[derive(Clone, PartialEq, Message)]
struct ListValue {
    #[prost(message, repeated, tag = "1")]
    values: Vec<Value>,
}

/// A swept value as the HParams tab shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum HParamValue {
    Number(f64),
    Text(String),
    Bool(bool),
}

impl HParamValue {
    /// Numbers and booleans as themselves, anything else (`auto`, lists, tables) as text.
    pub fn from_json(value: &serde_json::Value) -> Self {
        match value {
            serde_json::Value::Number(n) => HParamValue::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::Bool(b) => HParamValue::Bool(*b),
            serde_json::Value::String(s) => HParamValue::Text(s.clone()),
            other => HParamValue::Text(other.to_string()),
        }
    }

    fn to_proto(&self) -> Value {
        Value {
            kind: Some(match self {
                HParamValue::Number(x) => Kind::Number(*x),
                HParamValue::Text(s) => Kind::Text(s.clone()),
                HParamValue::Bool(b) => Kind::Bool(*b),
            }),
        }
    }

    fn data_type(&self) -> i32 {
        match self {
            HParamValue::Number(_) => FLOAT64,
            HParamValue::Text(_) => STRING,
            HParamValue::Bool(_) => BOOL,
        }
    }
}

/// A swept key and the values the sweep gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct HParam {
    pub name: String,
    pub values: Vec<HParamValue>,
}

fn plugin_value(tag: &str, data: Data) -> SummaryValue {
    let content = PluginDataProto {
        version: 0,
        data: Some(data),
    }
    .encode_to_vec();
    SummaryValue {
        tag: tag.to_owned(),
        value: Some(Payload::Tensor(TensorProto {
            dtype: DT_FLOAT,
            tensor_shape: Some(TensorShape {
                dim: vec![Dimension { size: 0 }],
            }),
            string_val: Vec::new(),
        })),
        metadata: Some(SummaryMetadata {
            plugin_data: Some(PluginData {
                plugin_name: PLUGIN_NAME.to_owned(),
                content,
            }),
        }),
    }
}

impl EventWriter {
    fn push_plugin_value(&mut self, value: SummaryValue) {
        self.push(Event {
            wall_time: wall_time_now(),
            step: 0,
            what: Some(What::Summary(Summary { value: vec![value] })),
        });
    }

    /// Starts this run's HParams session: the trial's swept values, grouped by `group`
    /// (trials that differ only in the seed share a group).
    pub fn add_hparams_session(&mut self, hparams: &[(String, HParamValue)], group: &str) {
        let start = SessionStartInfo {
            hparams: hparams
                .iter()
                .map(|(k, v)| (k.clone(), v.to_proto()))
                .collect(),
            group_name: group.to_owned(),
            start_time_secs: wall_time_now(),
        };
        self.push_plugin_value(plugin_value(SESSION_START_TAG, Data::SessionStart(start)));
    }

    /// Ends the session with the trial's outcome.
    pub fn end_hparams_session(&mut self, succeeded: bool) {
        let end = SessionEndInfo {
            status: if succeeded { SUCCESS } else { FAILURE },
            end_time_secs: wall_time_now(),
        };
        self.push_plugin_value(plugin_value(SESSION_END_TAG, Data::SessionEnd(end)));
    }
}

/// A text summary (TensorBoard's Text tab shows it as Markdown).
fn text_value(tag: &str, text: &str) -> SummaryValue {
    SummaryValue {
        tag: tag.to_owned(),
        value: Some(Payload::Tensor(TensorProto {
            dtype: DT_STRING,
            tensor_shape: Some(TensorShape { dim: Vec::new() }),
            string_val: vec![text.as_bytes().to_vec()],
        })),
        metadata: Some(SummaryMetadata {
            plugin_data: Some(PluginData {
                plugin_name: "text".to_owned(),
                content: Vec::new(),
            }),
        }),
    }
}

/// A trial's HParams session as one event file of its run, `…scorelab-session`, replacing
/// the run's earlier session files (a run holds one session): its values of the folder's
/// hparams, its group, and its outcome — success, or failure with its cause as the text
/// summary [`FAILURE_TAG`].
pub fn write_hparams_session(
    run: &Path,
    (hparams, group): (&[(String, HParamValue)], &str),
    failure: Option<&str>,
) -> Result<(), TensorBoardError> {
    if let Ok(entries) = std::fs::read_dir(run) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("events.out.tfevents.") && name.contains(".scorelab-session") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let mut writer = EventWriter::create_as(run, "scorelab-session")?;
    writer.add_hparams_session(hparams, group);
    if let Some(cause) = failure {
        writer.push_plugin_value(text_value(FAILURE_TAG, cause));
    }
    writer.end_hparams_session(failure.is_none());
    writer.flush()
}

/// Writes the experiment summary into `dir` (the sweep's log folder): the swept keys with
/// their values and the scalar tags of the metrics, as the HParams tab's columns.
pub fn write_hparams_experiment(
    dir: &Path,
    description: &str,
    hparams: &[HParam],
    metric_tags: &[String],
) -> Result<(), TensorBoardError> {
    let experiment = Experiment {
        description: description.to_owned(),
        hparam_infos: hparams
            .iter()
            .map(|h| HParamInfo {
                name: h.name.clone(),
                r#type: h.values.first().map_or(STRING, HParamValue::data_type),
                domain_discrete: Some(ListValue {
                    values: h.values.iter().map(HParamValue::to_proto).collect(),
                }),
            })
            .collect(),
        metric_infos: metric_tags
            .iter()
            .map(|tag| MetricInfo {
                name: Some(MetricName {
                    group: String::new(),
                    tag: tag.clone(),
                }),
            })
            .collect(),
    };
    let mut writer = EventWriter::create(dir)?;
    writer.push_plugin_value(plugin_value(EXPERIMENT_TAG, Data::Experiment(experiment)));
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_placeholder_tensor_is_tensorboards_null_tensor() {
        // tensorboard.plugins.hparams.metadata.NULL_TENSOR.SerializeToString().hex()
        let value = plugin_value(SESSION_END_TAG, Data::SessionEnd(SessionEndInfo::default()));
        let Some(Payload::Tensor(tensor)) = value.value else {
            panic!("a tensor payload")
        };
        assert_eq!(tensor.encode_to_vec(), [0x08, 0x01, 0x12, 0x02, 0x12, 0x00]);
    }

    #[test]
    fn session_values_round_trip_through_the_plugin_data() {
        let writer_values = [
            ("sampler.kind".to_string(), HParamValue::Text("heun".into())),
            ("train.lr".to_string(), HParamValue::Number(0.001)),
        ];
        let start = SessionStartInfo {
            hparams: writer_values
                .iter()
                .map(|(k, v)| (k.clone(), v.to_proto()))
                .collect(),
            group_name: "train.lr=0.001".into(),
            start_time_secs: 1.0,
        };
        let value = plugin_value(SESSION_START_TAG, Data::SessionStart(start.clone()));
        let content = value.metadata.unwrap().plugin_data.unwrap();
        assert_eq!(content.plugin_name, "hparams");
        let decoded = PluginDataProto::decode(content.content.as_slice()).unwrap();
        assert_eq!(decoded.version, 0);
        assert_eq!(decoded.data, Some(Data::SessionStart(start)));
    }
}
