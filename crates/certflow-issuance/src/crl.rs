//! REV-15: the issuing CA is told of every completed revocation, and its CRL is regenerated.
//! The same follower of the log erases the private key of every deleted certificate.
//!
//! The publisher follows the event log from the start: it learns each platform
//! certificate's brand and serial from its issue event, and each revocation from the revoked
//! event. Revocations arriving close together make one new CRL: after the first change a
//! brand's CRL waits for the debounce interval, then is signed once with everything that
//! arrived meanwhile. Signing takes time in proportion to the CRL's size, so the wait after
//! a signing is also at least [`PACE`] times as long as that signing took: a stream of
//! revocations into a CRL of hundreds of thousands of entries makes a new CRL every few
//! seconds, not one a second that would each cost most of that second. CRLs are numbered by the CRL stream itself (the next number is the
//! stored one plus one, written with an expected sequence), so several publishers never
//! reuse or lower a number.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use certflow_bus::{CancellationToken, Request, decode_request, refused, response};
use certflow_ca::{CertificateAuthority, IssuerId, RevokedEntry};
use certflow_domain::{CertificateId, Event, Timestamp};
use certflow_proto::bus::v1::Reply;
use certflow_proto::convert::{brand_from_proto, timestamp_to_proto};
use certflow_proto::v1::{GetCrlRequest, GetCrlResponse};
use certflow_store::{CrlStore, EventStore, PublishedCrl, StoreError};
use tokio::time::Instant;
use tracing::{error, info, warn};

/// Records that every revocation up to stream sequence `sequence` is on a stored CRL.
fn covered(sequence: u64) {
    certflow_telemetry::instruments()
        .crl_covered_sequence
        .record(sequence, &[]);
}

/// After signing, wait at least this many times as long as the signing took: signing then
/// takes at most about a tenth of the publisher's time, however large the CRLs grow.
pub const PACE: u32 = 9;

/// How long changes gather before the next CRL, given that the last signing round took
/// `took`: the debounce interval, or [`PACE`] times `took` when that is longer.
pub fn gather_for(debounce: Duration, took: Duration) -> Duration {
    debounce.max(took.saturating_mul(PACE))
}

/// How CRLs are made.
#[derive(Debug, Clone)]
pub struct CrlConfig {
    /// How long changes gather before a CRL is signed.
    pub debounce: Duration,
    /// `nextUpdate` minus `thisUpdate`: at most 10 days (CA-4).
    pub validity: Duration,
    /// A CRL is signed again when it is this old, changes or not: at most 7 days, and well
    /// before `nextUpdate` (CA-4).
    pub refresh: Duration,
}

impl Default for CrlConfig {
    fn default() -> Self {
        CrlConfig {
            debounce: Duration::from_secs(1),
            validity: Duration::from_secs(7 * 24 * 3600),
            refresh: Duration::from_secs(24 * 3600),
        }
    }
}

/// Follows revocations and keeps every brand's CRL current.
pub struct CrlPublisher {
    pub(crate) ca: Arc<dyn CertificateAuthority>,
    pub(crate) crls: CrlStore,
    pub(crate) keys: certflow_store::KeyStore,
    pub(crate) store: EventStore,
    pub(crate) config: CrlConfig,
}

impl std::fmt::Debug for CrlPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrlPublisher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Ledger {
    /// Issuer and serial of each certificate the CA issued.
    issued: HashMap<CertificateId, (IssuerId, String)>,
    /// Revoked entries per issuer, by serial.
    revoked: HashMap<IssuerId, BTreeMap<String, RevokedEntry>>,
    /// Key store records of the private keys held for certificates.
    keys: HashMap<CertificateId, String>,
}

/// What an event asks of the publisher.
enum Effect {
    /// This issuer's CRL changed.
    Crl(IssuerId),
    /// This key store record is to be erased.
    Shred(String),
}

impl Ledger {
    /// Takes in one event; returns what it asks for.
    fn apply(&mut self, id: &CertificateId, event: &Event) -> Option<Effect> {
        match event {
            Event::Issued(issued) => {
                let x509 = issued.x509.as_ref()?;
                if let Some(key) = &x509.private_key_id {
                    self.keys.insert(id.clone(), key.clone());
                }
                let issuer = IssuerId::for_key(issued.brand, issued.algorithm);
                self.issued
                    .insert(id.clone(), (issuer, x509.serial_number.clone()));
                None
            }
            Event::Uploaded(uploaded) => {
                if let Some(key) = &uploaded.private_key_id {
                    self.keys.insert(id.clone(), key.clone());
                }
                None
            }
            Event::Deleted(_) => self.keys.remove(id).map(Effect::Shred),
            Event::Revoked(revoked) => {
                let (issuer, serial) = self.issued.get(id)?;
                let entries = self.revoked.entry(*issuer).or_default();
                // REV-17: the first revocation stands.
                if entries.contains_key(serial) {
                    return None;
                }
                entries.insert(
                    serial.clone(),
                    RevokedEntry {
                        serial_hex: serial.clone(),
                        revoked_at: revoked.revoked_at,
                        reason: revoked.reason,
                    },
                );
                Some(Effect::Crl(*issuer))
            }
            Event::RevocationRequested(_)
            | Event::RenewalOrdered(_)
            | Event::ValidationChallengesIssued(_)
            | Event::DomainValidated(_)
            | Event::ValidationPassed(_)
            | Event::ValidationExpired(_)
            | Event::RevocationFailed(_)
            | Event::ReissueFailed(_)
            | Event::RevocationDocumentUploaded(_)
            | Event::ReviewQueued(_)
            | Event::ReviewApproved(_)
            | Event::ReviewPassed(_)
            | Event::ReviewRejected(_)
            | Event::ReissueRequested(_)
            | Event::ReissueCompleted(_) => None,
        }
    }
}

impl CrlPublisher {
    /// Follows the log and publishes CRLs until `shutdown`. Every brand gets a CRL on
    /// start, so each distribution point answers from the first moment.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut refresh_at = Instant::now() + self.config.refresh;
        let mut first = true;
        'follow: loop {
            if !std::mem::take(&mut first) {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
            // Each (re)start rebuilds the ledger from the whole log and publishes nothing
            // until it has read what the log held at that moment: a CRL signed mid-replay
            // would leave out revocations already made.
            let Some((mut feed, replay_until)) = self.follow(&shutdown).await else {
                return;
            };
            let mut ledger = Ledger::default();
            let mut applied = 0u64;
            let mut dirty: HashSet<IssuerId> = IssuerId::all().into_iter().collect();
            let mut deadline = Some(Instant::now() + self.config.debounce);
            // How long changes gather before the next CRL: grows with what signing costs.
            let mut gather = self.config.debounce;
            loop {
                let wake = deadline.unwrap_or(refresh_at).min(refresh_at);
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep_until(wake) => {
                        if applied < replay_until {
                            deadline = Some(Instant::now() + self.config.debounce);
                            continue;
                        }
                        if Instant::now() >= refresh_at {
                            dirty.extend(IssuerId::all());
                            refresh_at = Instant::now() + self.config.refresh;
                        }
                        let signing = Instant::now();
                        for issuer in std::mem::take(&mut dirty) {
                            if let Err(err) = self.publish(issuer, &ledger).await {
                                error!(%issuer, error = %err, "could not publish the CRL");
                                dirty.insert(issuer);
                            }
                        }
                        gather = gather_for(self.config.debounce, signing.elapsed());
                        deadline = (!dirty.is_empty()).then(|| Instant::now() + gather);
                        if dirty.is_empty() {
                            covered(applied);
                        }
                    }
                    chunk = feed.next_chunk(1_000) => match chunk {
                        Some(Ok(chunk)) => {
                            for delivered in &chunk {
                                applied = applied.max(delivered.sequence);
                                let batch = match &delivered.batch {
                                    Ok(batch) => batch,
                                    Err(err) => {
                                        error!(sequence = delivered.sequence, error = %err,
                                            "CRL publisher skips an unreadable message");
                                        continue;
                                    }
                                };
                                for event in &batch.events {
                                    match ledger.apply(&batch.certificate_id, event) {
                                        Some(Effect::Crl(issuer)) => {
                                            dirty.insert(issuer);
                                        }
                                        Some(Effect::Shred(key_id)) => self.shred(&key_id).await,
                                        None => {}
                                    }
                                }
                            }
                            if !dirty.is_empty() && deadline.is_none() {
                                deadline = Some(Instant::now() + gather);
                            }
                            if dirty.is_empty() && applied >= replay_until {
                                covered(applied);
                            }
                        }
                        Some(Err(err)) => {
                            warn!(error = %err, "CRL publisher feed failed; following the log anew");
                            continue 'follow;
                        }
                        None => {
                            warn!("CRL publisher's feed ended; following the log anew");
                            continue 'follow;
                        }
                    },
                }
            }
        }
    }

    /// Follows the log from its start (every instance of the issuance service runs its own
    /// publisher); also returns the log's last sequence at that moment.
    /// `None` on shutdown.
    async fn follow(
        &self,
        shutdown: &CancellationToken,
    ) -> Option<(certflow_store::EventFeed, u64)> {
        let mut backoff = Duration::from_millis(200);
        loop {
            let attempt = async {
                let last = self.store.last_sequence().await?;
                let feed = self.store.follow(0).await?;
                Ok::<_, StoreError>((feed, last))
            };
            match attempt.await {
                Ok(followed) => return Some(followed),
                Err(err) => warn!(error = %err, "CRL publisher cannot follow the log yet"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Erases a deleted certificate's private key (crypto-shredding). A key erased already
    /// (a replay of the log after a restart, another instance) is left as it is.
    async fn shred(&self, key_id: &str) {
        if let Err(err) = self.keys.shred(key_id).await {
            error!(%key_id, error = %err, "could not erase a deleted certificate's key");
        }
    }

    /// Signs and stores `issuer`'s next CRL.
    async fn publish(&self, issuer: IssuerId, ledger: &Ledger) -> Result<(), PublishError> {
        let entries: Vec<RevokedEntry> = ledger
            .revoked
            .get(&issuer)
            .map(|entries| entries.values().cloned().collect())
            .unwrap_or_default();
        let slug = issuer.slug();
        let slug = slug.as_str();
        loop {
            let latest = self.crls.latest(slug).await?;
            let number = latest.as_ref().map_or(1, |l| l.number + 1);
            let now = certflow_runtime::now();
            let next = now.plus(certflow_domain::Duration::millis(
                self.config.validity.as_millis() as i64,
            ));
            // Signing a large CRL takes seconds of CPU: off the async workers.
            let ca = self.ca.clone();
            let to_sign = entries.clone();
            let signed = tokio::task::spawn_blocking(move || {
                ca.crl(issuer, number, &to_sign, now, next)
                    .map_err(|e| PublishError::Ca(e.to_string()))
            })
            .await
            .map_err(|e| PublishError::Ca(format!("signing stopped: {e}")))??;
            let crl = PublishedCrl {
                sequence: 0,
                number,
                entries: entries.len() as u64,
                this_update: now.unix_millis(),
                next_update: next.unix_millis(),
                der: signed.der.into(),
            };
            let expected = latest.as_ref().map_or(0, |l| l.sequence);
            if self.crls.publish(slug, expected, &crl).await?.is_some() {
                info!(%issuer, number, entries = entries.len(), "CRL published");
                return Ok(());
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum PublishError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("CA: {0}")]
    Ca(String),
}

/// Answers `GetCrl` from the CRL stream.
pub(crate) async fn answer(crls: &CrlStore, request: Request) -> Reply {
    let issuer = match decode_request::<GetCrlRequest>(&request).and_then(|req| {
        Ok(IssuerId {
            brand: brand_from_proto(req.brand)?,
            sm2: req.sm2,
        })
    }) {
        Ok(issuer) => issuer,
        Err(err) => return refused(&err),
    };
    match crls.latest(&issuer.slug()).await {
        Ok(Some(crl)) => response(&GetCrlResponse {
            der: crl.der.to_vec(),
            number: crl.number,
            entries: crl.entries,
            this_update: Some(timestamp_to_proto(Timestamp::from_unix_millis(
                crl.this_update,
            ))),
            next_update: Some(timestamp_to_proto(Timestamp::from_unix_millis(
                crl.next_update,
            ))),
        }),
        Ok(None) => certflow_bus::unavailable(format!(
            "no CRL of {issuer} has been published yet; try again shortly"
        )),
        Err(err) => {
            warn!(error = %err, "CRL read failed");
            certflow_bus::unavailable("the CRL store is unavailable; try again")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rev15_a_crl_that_took_long_to_sign_waits_in_proportion_before_the_next() {
        let debounce = Duration::from_secs(1);
        assert_eq!(
            gather_for(debounce, Duration::from_millis(20)),
            debounce,
            "small CRLs follow revocations within the debounce interval"
        );
        assert_eq!(
            gather_for(debounce, Duration::from_secs(2)),
            Duration::from_secs(18),
            "a CRL that took 2 s to sign is followed by the next 18 s later"
        );
        // Signing's share of the time stays at most 1 / (PACE + 1), whatever it costs.
        for took in [1, 100, 1_000, 10_000] {
            let took = Duration::from_millis(took);
            let share = took.as_secs_f64() / (took + gather_for(debounce, took)).as_secs_f64();
            assert!(
                share <= 1.0 / f64::from(PACE + 1) + 1e-9,
                "{took:?}: {share}"
            );
        }
    }

    #[test]
    fn ca4_by_default_a_crl_is_signed_again_long_before_it_goes_stale() {
        let config = CrlConfig::default();
        let day = Duration::from_secs(24 * 3600);
        assert!(config.validity <= 10 * day, "nextUpdate within 10 days");
        assert!(config.refresh <= 7 * day, "a new CRL at least every 7 days");
        assert!(
            config.refresh < config.validity,
            "signed again before nextUpdate passes"
        );
    }
}
