//! The latest signed CRL of each issuing CA's partitions, one subject per partition
//! (`certflow.crls.<issuer>` for the original CRL, `certflow.crls.<issuer>.<shard>` for a
//! shard), so every gateway and every instance of the publisher sees the same list and
//! numbering.

use async_nats::jetstream::{message::PublishMessage, stream};
use async_nats::{HeaderMap, header};
use bytes::Bytes;

use crate::store::{Attached, StoreError};

const NUMBER: &str = "Certflow-Crl-Number";
const ENTRIES: &str = "Certflow-Crl-Entries";
const THIS_UPDATE: &str = "Certflow-Crl-This-Update";
const NEXT_UPDATE: &str = "Certflow-Crl-Next-Update";
const DIGEST: &str = "Certflow-Crl-Entries-Digest";

/// A published CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedCrl {
    /// Stream sequence of the message, for the next publish's expectation.
    pub sequence: u64,
    /// The CRL number (monotonic per CA).
    pub number: u64,
    /// How many certificates it lists.
    pub entries: u64,
    /// `thisUpdate` and `nextUpdate`, Unix milliseconds.
    pub this_update: i64,
    pub next_update: i64,
    /// A digest of the entries listed, so a publisher that holds the same entries knows
    /// this CRL is already current without signing again.
    pub digest: String,
    /// The CRL in DER.
    pub der: Bytes,
}

/// The CRLs stream.
#[derive(Clone, Debug)]
pub struct CrlStore {
    on: Attached,
}

impl CrlStore {
    /// The stream's name.
    pub const STREAM: &'static str = "CERTFLOW_CRLS";
    const PREFIX: &'static str = "certflow.crls";

    /// The stream: the latest CRL per issuer.
    pub(crate) fn stream_config() -> stream::Config {
        crate::store::latest_per_subject(
            Self::STREAM,
            "the latest signed CRL of each issuing CA",
            Self::PREFIX,
            std::time::Duration::ZERO,
        )
    }

    /// Attaches to the stream, which `certd provision` made.
    pub async fn attach(client: async_nats::Client) -> Result<Self, StoreError> {
        Ok(CrlStore {
            on: Attached::to(client, Self::STREAM).await?,
        })
    }

    fn subject(issuer: &str) -> String {
        format!("{}.{issuer}", Self::PREFIX)
    }

    /// The latest CRL of `partition` (subject tokens: `geotrust`, `geotrust.7`).
    pub async fn latest(&self, partition: &str) -> Result<Option<PublishedCrl>, StoreError> {
        Ok(self
            .on
            .last(Self::subject(partition))
            .await?
            .map(|message| {
                let number = |name: &str| {
                    message
                        .headers
                        .get(name)
                        .and_then(|v| v.as_str().parse::<i64>().ok())
                        .unwrap_or_default()
                };
                PublishedCrl {
                    sequence: message.sequence,
                    number: number(NUMBER) as u64,
                    entries: number(ENTRIES) as u64,
                    this_update: number(THIS_UPDATE),
                    next_update: number(NEXT_UPDATE),
                    digest: message
                        .headers
                        .get(DIGEST)
                        .map(|v| v.as_str().to_string())
                        .unwrap_or_default(),
                    der: message.payload,
                }
            }))
    }

    /// The partitions of `issuer` (its slug) that have a CRL, as subject tokens after the
    /// issuer's: `""` for the original CRL, `"7"` for shard 7.
    pub async fn partitions(&self, issuer: &str) -> Result<Vec<String>, StoreError> {
        use futures::TryStreamExt;
        let original = Self::subject(issuer);
        let shards = format!("{original}.*");
        let stream = &self.on.stream;
        let mut found = Vec::new();
        for filter in [original.clone(), shards] {
            let subjects: Vec<(String, usize)> = stream
                .info_with_subjects(filter)
                .await
                .map_err(|e| StoreError::Unavailable(e.into()))?
                .try_collect()
                .await
                .map_err(|e| StoreError::Unavailable(e.into()))?;
            found.extend(subjects.into_iter().filter_map(|(subject, _)| {
                subject
                    .strip_prefix(&original)
                    .map(|rest| rest.trim_start_matches('.').to_string())
            }));
        }
        Ok(found)
    }

    /// Publishes `crl` as `partition`'s latest, if the latest is still the message at
    /// `expected` (0: none yet). `None`: another publisher got there first.
    pub async fn publish(
        &self,
        partition: &str,
        expected: u64,
        crl: &PublishedCrl,
    ) -> Result<Option<u64>, StoreError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            expected.to_string().as_str(),
        );
        headers.insert(NUMBER, crl.number.to_string().as_str());
        headers.insert(ENTRIES, crl.entries.to_string().as_str());
        headers.insert(THIS_UPDATE, crl.this_update.to_string().as_str());
        headers.insert(NEXT_UPDATE, crl.next_update.to_string().as_str());
        headers.insert(DIGEST, crl.digest.as_str());
        headers.insert("Content-Type", "application/pkix-crl");
        let publish = PublishMessage::build()
            .headers(headers)
            .payload(crl.der.clone());
        self.on
            .publish_expecting(Self::subject(partition), publish)
            .await
    }
}
