//! The latest signed CRL of each issuing CA, one subject per CA, so every gateway and
//! every instance of the publisher sees the same list and numbering.

use async_nats::jetstream::{message::PublishMessage, stream};
use async_nats::{HeaderMap, header};
use bytes::Bytes;

use crate::store::{Attached, StoreError};

const NUMBER: &str = "Certflow-Crl-Number";
const ENTRIES: &str = "Certflow-Crl-Entries";
const THIS_UPDATE: &str = "Certflow-Crl-This-Update";
const NEXT_UPDATE: &str = "Certflow-Crl-Next-Update";

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

    /// The latest CRL of `issuer` (a subject token, e.g. the brand's slug).
    pub async fn latest(&self, issuer: &str) -> Result<Option<PublishedCrl>, StoreError> {
        Ok(self.on.last(Self::subject(issuer)).await?.map(|message| {
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
                der: message.payload,
            }
        }))
    }

    /// Publishes `crl` as `issuer`'s latest, if the latest is still the message at
    /// `expected` (0: none yet). `None`: another publisher got there first.
    pub async fn publish(
        &self,
        issuer: &str,
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
        headers.insert("Content-Type", "application/pkix-crl");
        let publish = PublishMessage::build()
            .headers(headers)
            .payload(crl.der.clone());
        self.on
            .publish_expecting(Self::subject(issuer), publish)
            .await
    }
}
