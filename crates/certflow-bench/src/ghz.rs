//! ghz configuration files (`tests/load/*.json`), run the way ghz runs them: the same call,
//! host, totals, data and metadata files, so a figure from ghz and one from this tool come
//! from the same requests.
//!
//! The request messages are protobuf JSON, turned into the method's input type through the
//! descriptors the server also serves for reflection. The data templates certflow's files
//! use are supported: `{{newUUID}}` and `{{.RequestNumber}}`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use serde::Deserialize;
use serde_json::Value;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstCodec;

use crate::load::{CallError, Schedule};

/// The ghz options this tool honours; any other is refused, not silently ignored.
const SUPPORTED: &[&str] = &[
    "call",
    "host",
    "insecure",
    "total",
    "concurrency",
    "qps",
    "data",
    "data-file",
    "metadata",
    "metadata-file",
    "name",
];

/// One ghz configuration file, as far as this tool runs it.
#[derive(Debug, Deserialize)]
pub struct LoadConfig {
    /// `package.Service.Method` or `package.Service/Method`.
    pub call: String,
    pub host: String,
    #[serde(default)]
    pub insecure: bool,
    #[serde(default = "default_total")]
    pub total: u64,
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Calls a second; 0 for as fast as the callers go.
    #[serde(default)]
    pub qps: u64,
    #[serde(default)]
    pub data: Option<Value>,
    #[serde(default, rename = "data-file")]
    pub data_file: Option<PathBuf>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "metadata-file")]
    pub metadata_file: Option<PathBuf>,
    #[serde(default)]
    pub name: Option<String>,
}

fn default_total() -> u64 {
    200
}

fn default_concurrency() -> usize {
    50
}

impl LoadConfig {
    /// Reads a configuration file; its data and metadata files are named relative to the
    /// current directory, as ghz reads them.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let raw: serde_json::Map<String, Value> = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a JSON object", path.display()))?;
        if let Some(unsupported) = raw.keys().find(|key| !SUPPORTED.contains(&key.as_str())) {
            bail!(
                "{}: the ghz option {unsupported:?} is not supported by certflow-bench; run this \
                 file with ghz, or use only {SUPPORTED:?}",
                path.display()
            );
        }
        serde_json::from_value(Value::Object(raw))
            .with_context(|| format!("{} is not a ghz configuration", path.display()))
    }

    /// How the calls are paced: `qps` as an open-loop rate, else `concurrency` callers.
    pub fn schedule(&self) -> Schedule {
        if self.qps > 0 {
            Schedule::Open {
                rate: self.qps as f64,
                max_outstanding: 10_000,
            }
        } else {
            Schedule::Closed {
                concurrency: self.concurrency,
            }
        }
    }

    /// The gateway as a URL.
    pub fn endpoint(&self) -> String {
        if self.host.contains("://") {
            self.host.clone()
        } else if self.insecure {
            format!("http://{}", self.host)
        } else {
            format!("https://{}", self.host)
        }
    }

    /// The request messages: `data`, or the JSON array or object in `data-file`.
    fn messages(&self) -> anyhow::Result<Vec<Value>> {
        let data = match (&self.data, &self.data_file) {
            (Some(data), _) => data.clone(),
            (None, Some(path)) => serde_json::from_slice(
                &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
            )
            .with_context(|| format!("{} is not JSON", path.display()))?,
            (None, None) => Value::Object(serde_json::Map::new()),
        };
        match data {
            Value::Array(messages) if messages.is_empty() => bail!("the call data is empty"),
            Value::Array(messages) => Ok(messages),
            object @ Value::Object(_) => Ok(vec![object]),
            _ => bail!("the call data is neither an object nor an array of objects"),
        }
    }

    /// The metadata sent with every call: `metadata`, or the JSON object in `metadata-file`.
    fn metadata(&self) -> anyhow::Result<Vec<(AsciiMetadataKey, AsciiMetadataValue)>> {
        let pairs: BTreeMap<String, String> = match (&self.metadata, &self.metadata_file) {
            (Some(pairs), _) => pairs.clone(),
            (None, Some(path)) => serde_json::from_slice(
                &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
            )
            .with_context(|| format!("{} is not a JSON object of strings", path.display()))?,
            (None, None) => BTreeMap::new(),
        };
        pairs
            .into_iter()
            .map(|(key, value)| {
                Ok((
                    key.parse()
                        .with_context(|| format!("metadata key {key:?} is not valid"))?,
                    value
                        .parse()
                        .with_context(|| format!("metadata value of {key:?} is not ASCII"))?,
                ))
            })
            .collect()
    }
}

/// Calls of one unary method with the configuration's messages and metadata; call `n`
/// sends message `n` modulo their number, as ghz does.
#[derive(Debug, Clone)]
pub struct ConfiguredCall {
    channel: Channel,
    path: PathAndQuery,
    input: MessageDescriptor,
    messages: Arc<[Value]>,
    metadata: Arc<[(AsciiMetadataKey, AsciiMetadataValue)]>,
}

impl ConfiguredCall {
    /// Resolves the method against certflow's descriptors, checks every message against its
    /// input type, and connects.
    pub async fn prepare(config: &LoadConfig) -> anyhow::Result<Self> {
        let pool = DescriptorPool::decode(certflow_proto::FILE_DESCRIPTOR_SET)
            .context("certflow's descriptors")?;
        let (service, method) = config
            .call
            .rsplit_once(['/', '.'])
            .with_context(|| format!("call {:?} is not package.Service.Method", config.call))?;
        let method = pool
            .get_service_by_name(service)
            .and_then(|s| s.methods().find(|m| m.name() == method))
            .with_context(|| format!("certflow has no method {}", config.call))?;
        if method.is_client_streaming() || method.is_server_streaming() {
            bail!("{} streams; only unary calls are supported", config.call);
        }
        let input = method.input();
        let messages = config.messages()?;
        for (index, message) in messages.iter().enumerate() {
            encode(&input, message, 0)
                .with_context(|| format!("message {index} of the call data"))?;
        }
        let channel = Endpoint::from_shared(config.endpoint())?
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| format!("connecting to {}", config.host))?;
        Ok(ConfiguredCall {
            channel,
            path: format!("/{service}/{}", method.name()).parse()?,
            input,
            messages: messages.into(),
            metadata: config.metadata()?.into(),
        })
    }

    /// Makes call number `index`.
    pub async fn call(&self, index: u64) -> Result<(), CallError> {
        let at = usize::try_from(index).unwrap_or(usize::MAX) % self.messages.len();
        let message = encode(&self.input, &self.messages[at], index)
            .map_err(|err| CallError::new("InvalidArgument", err.to_string()))?;
        let mut request = tonic::Request::new(message);
        for (key, value) in self.metadata.iter() {
            request.metadata_mut().insert(key.clone(), value.clone());
        }
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|err| CallError::new("Unavailable", err.to_string()))?;
        // The reply is decoded as an empty message: its fields are skipped, not needed.
        let codec: ProstCodec<DynamicMessage, ()> = ProstCodec::default();
        grpc.unary(request, self.path.clone(), codec).await?;
        Ok(())
    }
}

/// `message` as `input`, its templates filled in for call `index`.
fn encode(
    input: &MessageDescriptor,
    message: &Value,
    index: u64,
) -> anyhow::Result<DynamicMessage> {
    let filled = fill_templates(message, index)?;
    DynamicMessage::deserialize(input.clone(), filled)
        .with_context(|| format!("not a {}", input.full_name()))
}

/// Replaces ghz's `{{newUUID}}` and `{{.RequestNumber}}` in every string of `value`.
fn fill_templates(value: &Value, index: u64) -> anyhow::Result<Value> {
    Ok(match value {
        Value::String(text) if text.contains("{{") => {
            let filled = text
                .replace("{{newUUID}}", &uuid::Uuid::new_v4().to_string())
                .replace("{{.RequestNumber}}", &index.to_string());
            if filled.contains("{{") {
                bail!("{text:?}: only {{{{newUUID}}}} and {{{{.RequestNumber}}}} are supported");
            }
            Value::String(filled)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| fill_templates(item, index))
                .collect::<anyhow::Result<_>>()?,
        ),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, item)| Ok((key.clone(), fill_templates(item, index)?)))
                .collect::<anyhow::Result<_>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn templates_are_filled_per_call_and_unknown_ones_refused() {
        let message = serde_json::json!({
            "request_id": "{{newUUID}}",
            "nested": [{ "n": "call {{.RequestNumber}}" }],
            "plain": 7,
        });
        let first = fill_templates(&message, 3).expect("filled");
        let second = fill_templates(&message, 3).expect("filled");
        assert_ne!(
            first["request_id"], second["request_id"],
            "a new UUID each time"
        );
        assert!(
            uuid::Uuid::parse_str(first["request_id"].as_str().expect("string")).is_ok(),
            "{first}"
        );
        assert_eq!(first["nested"][0]["n"], "call 3");
        assert_eq!(first["plain"], 7);
        assert!(fill_templates(&serde_json::json!({ "x": "{{.WorkerID}}" }), 0).is_err());
    }

    #[test]
    fn every_shipped_load_file_names_a_certflow_method_and_only_supported_options() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/load");
        let pool = DescriptorPool::decode(certflow_proto::FILE_DESCRIPTOR_SET).expect("pool");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("tests/load") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let config = LoadConfig::read(&path).expect("a supported ghz configuration");
            let (service, method) = config.call.rsplit_once('.').expect("dotted");
            assert!(
                pool.get_service_by_name(service)
                    .is_some_and(|s| s.methods().any(|m| m.name() == method)),
                "{}: {}",
                path.display(),
                config.call
            );
            assert!(
                config.metadata_file.is_some(),
                "{}: carries its token",
                path.display()
            );
            seen += 1;
        }
        assert!(seen >= 4, "the four load files");
    }

    #[test]
    fn an_unsupported_ghz_option_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.json");
        std::fs::write(&path, r#"{"call":"a.B.C","host":"x","duration":"10s"}"#).expect("write");
        let err = LoadConfig::read(&path).expect_err("refused");
        assert!(err.to_string().contains("\"duration\""), "{err}");
    }

    #[test]
    fn a_message_that_is_not_the_input_type_is_refused() {
        let pool = DescriptorPool::decode(certflow_proto::FILE_DESCRIPTOR_SET).expect("pool");
        let input = pool
            .get_message_by_name("certflow.v1.RequestRevocationRequest")
            .expect("message");
        let good = serde_json::json!({
            "request_id": "{{newUUID}}",
            "certificate_id": "c-1",
            "reason": "REVOCATION_REASON_SUPERSEDED",
        });
        let encoded = encode(&input, &good, 0).expect("a revocation request");
        let decoded = certflow_proto::v1::RequestRevocationRequest::decode(
            prost::Message::encode_to_vec(&encoded).as_slice(),
        )
        .expect("decodes as the generated type");
        assert_eq!(decoded.certificate_id, "c-1");
        assert_eq!(
            decoded.reason,
            certflow_proto::v1::RevocationReason::Superseded as i32
        );
        assert!(encode(&input, &serde_json::json!({ "no_such_field": 1 }), 0).is_err());
        assert!(encode(&input, &serde_json::json!({ "reason": "NOT_A_REASON" }), 0).is_err());
    }
}
