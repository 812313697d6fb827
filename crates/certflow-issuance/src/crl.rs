//! REV-15 and CA-4: the issuing CA is told of every completed revocation, and the CRL that
//! lists it is signed again. The same follower of the log erases the private key of every
//! deleted certificate.
//!
//! Each issuer's CRL is partitioned (BR 7.2): a certificate names one shard in its
//! distribution point, chosen when it was signed and recorded in its issue event
//! ([`X509Facts::crl_shard`](certflow_domain::X509Facts)); certificates signed before
//! partitioning name the issuer's original CRL, which stays a partition of its own. Only the
//! partitions a batch of revocations touched are signed again, so a revocation costs the
//! signing of its shard, not of every revocation the issuer ever made.
//!
//! The publisher follows the event log from the start: it learns each platform
//! certificate's partition, serial and expiry from its issue event, and each revocation
//! from the revoked event. Revocations arriving close together make one new CRL per
//! partition: after the first change the changed partitions wait for the debounce interval,
//! then each is signed once with everything that arrived meanwhile. Signing takes time in
//! proportion to the CRLs' size, so the wait after a round of signing is also at least
//! [`PACE`] times as long as the round's signing took (reading and storing CRLs does not
//! count: it does not grow with them).
//!
//! Every partition is signed again before it could go stale (CA-4, [`CrlConfig::refresh`]),
//! and an entry leaves its CRL once its certificate has been expired for
//! [`CrlConfig::keep_expired`]. A stored CRL carries a digest of its entries: a partition
//! whose stored CRL lists exactly what the ledger holds and is not due for refresh is not
//! signed again, so a restart, or a second instance, signs only what changed. CRLs are
//! numbered by the CRL stream itself (the next number is the stored one plus one, written
//! with an expected sequence), so several publishers never reuse or lower a number.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use certflow_bus::{CancellationToken, Request, decode_request, refused, response};
use certflow_ca::{CertificateAuthority, CrlPartition, IssuerId, RevokedEntry, Shard};
use certflow_domain::{CertificateId, Event, Timestamp};
use certflow_proto::bus::v1::Reply;
use certflow_proto::convert::{brand_from_proto, timestamp_to_proto};
use certflow_proto::v1::{GetCrlRequest, GetCrlResponse, ListCrlsRequest, ListCrlsResponse};
use certflow_store::{CrlStore, EventStore, PublishedCrl, StoreError};
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::Signing;

/// Records that every revocation up to stream sequence `sequence` is on a stored CRL.
fn covered(sequence: u64) {
    certflow_telemetry::instruments()
        .crl_covered_sequence
        .record(sequence, &[]);
}

/// Records the `thisUpdate` and `nextUpdate` of `partition`'s stored CRL (Unix
/// milliseconds), so an alert sees a CRL that is not being signed again in time.
fn stored(partition: CrlPartition, this_update: i64, next_update: i64) {
    let shard = match partition.shard {
        certflow_ca::Shard::Original => "original".to_string(),
        certflow_ca::Shard::Numbered(n) => n.to_string(),
    };
    let labels = [
        opentelemetry::KeyValue::new("issuer", partition.issuer.slug()),
        opentelemetry::KeyValue::new("partition", shard),
    ];
    let seconds = |millis: i64| u64::try_from(millis / 1000).unwrap_or(0);
    let metrics = certflow_telemetry::instruments();
    metrics
        .crl_this_update
        .record(seconds(this_update), &labels);
    metrics
        .crl_next_update
        .record(seconds(next_update), &labels);
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
    /// How long after its certificate expired an entry stays on the CRL: relying parties
    /// that check a certificate a little past its expiry still see it revoked.
    pub keep_expired: Duration,
}

impl Default for CrlConfig {
    fn default() -> Self {
        CrlConfig {
            debounce: Duration::from_secs(1),
            validity: Duration::from_secs(7 * 24 * 3600),
            refresh: Duration::from_secs(24 * 3600),
            keep_expired: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Follows revocations and keeps every partition's CRL current.
pub struct CrlPublisher {
    pub(crate) ca: Arc<dyn CertificateAuthority>,
    pub(crate) crls: CrlStore,
    pub(crate) keys: certflow_store::KeyStore,
    pub(crate) store: EventStore,
    pub(crate) config: CrlConfig,
    /// How many shards new certificates are spread over: every issuer's shards `0..shards`
    /// get a CRL from the start, so each distribution point answers before its first
    /// revocation.
    pub(crate) shards: u32,
}

impl std::fmt::Debug for CrlPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrlPublisher")
            .field("config", &self.config)
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

/// Where a certificate the CA issued is listed once revoked.
struct Listing {
    partition: CrlPartition,
    serial: String,
    not_after: Timestamp,
}

/// A revocation on a partition's CRL, and when its certificate expires.
#[derive(Clone)]
struct Listed {
    entry: RevokedEntry,
    not_after: Timestamp,
}

#[derive(Default)]
struct Ledger {
    /// Where each certificate the CA issued is listed.
    issued: HashMap<CertificateId, Listing>,
    /// Revoked entries per partition, by serial.
    revoked: HashMap<CrlPartition, BTreeMap<String, Listed>>,
    /// Every partition a certificate names.
    partitions: HashSet<CrlPartition>,
    /// Key store records of the private keys held for certificates.
    keys: HashMap<CertificateId, String>,
}

/// What an event asks of the publisher.
enum Effect {
    /// This partition's CRL changed.
    Crl(CrlPartition),
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
                let partition = CrlPartition {
                    issuer: IssuerId::for_key(issued.brand, issued.algorithm),
                    shard: x509.crl_shard.map_or(Shard::Original, Shard::Numbered),
                };
                self.partitions.insert(partition);
                self.issued.insert(
                    id.clone(),
                    Listing {
                        partition,
                        serial: x509.serial_number.clone(),
                        not_after: issued.not_after,
                    },
                );
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
                let listing = self.issued.get(id)?;
                let entries = self.revoked.entry(listing.partition).or_default();
                // REV-17: the first revocation stands.
                if entries.contains_key(&listing.serial) {
                    return None;
                }
                entries.insert(
                    listing.serial.clone(),
                    Listed {
                        entry: RevokedEntry {
                            serial_hex: listing.serial.clone(),
                            revoked_at: revoked.revoked_at,
                            reason: revoked.reason,
                        },
                        not_after: listing.not_after,
                    },
                );
                Some(Effect::Crl(listing.partition))
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

    /// What `partition`'s CRL lists at `now`: entries whose certificate expired before
    /// `expired_before` leave it, and the ledger, for good.
    fn entries(&mut self, partition: CrlPartition, expired_before: Timestamp) -> Vec<RevokedEntry> {
        let Some(listed) = self.revoked.get_mut(&partition) else {
            return Vec::new();
        };
        listed.retain(|_, listed| listed.not_after >= expired_before);
        listed.values().map(|listed| listed.entry.clone()).collect()
    }
}

/// The digest a stored CRL carries of its entries, in serial order.
pub(crate) fn entries_digest(entries: &[RevokedEntry]) -> String {
    let mut hash = Sha256::new();
    for entry in entries {
        hash.update(entry.serial_hex.as_bytes());
        hash.update(entry.revoked_at.unix_millis().to_be_bytes());
        hash.update([entry.reason as u8]);
    }
    hex::encode(hash.finalize())
}

/// The subject token of a partition in the CRL store: `geotrust`, `geotrust.7`.
pub(crate) fn store_token(partition: CrlPartition) -> String {
    match partition.shard {
        Shard::Original => partition.issuer.slug(),
        Shard::Numbered(n) => format!("{}.{n}", partition.issuer.slug()),
    }
}

/// Unix milliseconds now.
fn now_millis() -> i64 {
    certflow_runtime::now().unix_millis()
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// One run of the publisher over the log: the ledger, what must be signed, and when each
/// partition's CRL is due to be signed again.
struct Round {
    ledger: Ledger,
    /// Partitions whose CRL must be signed (or checked current) at the next signing.
    dirty: HashSet<CrlPartition>,
    /// When each partition's stored CRL is due for refresh, Unix milliseconds.
    refresh_due: HashMap<CrlPartition, i64>,
}

impl Round {
    /// The instant the earliest refresh falls due.
    fn next_refresh(&self) -> Option<Instant> {
        let due = *self.refresh_due.values().min()?;
        let wait = u64::try_from(due.saturating_sub(now_millis())).unwrap_or(0);
        Some(Instant::now() + Duration::from_millis(wait))
    }

    /// Marks every partition whose refresh is due.
    fn mark_due(&mut self) {
        let now = now_millis();
        for (partition, due) in &self.refresh_due {
            if *due <= now {
                self.dirty.insert(*partition);
            }
        }
    }
}

/// What signing a partition came to.
enum Signed {
    /// A new CRL was stored; signing it took this long.
    New(Duration),
    /// The stored CRL already listed exactly these entries and was fresh.
    Current,
}

impl CrlPublisher {
    /// Every partition that gets a CRL whether or not a certificate named it yet.
    fn base_partitions(&self) -> impl Iterator<Item = CrlPartition> + '_ {
        IssuerId::all().into_iter().flat_map(move |issuer| {
            std::iter::once(Shard::Original)
                .chain((0..self.shards).map(Shard::Numbered))
                .map(move |shard| CrlPartition { issuer, shard })
        })
    }

    /// Follows the log and publishes CRLs until `shutdown`. Every partition gets a CRL on
    /// start, so each distribution point answers from the first moment.
    pub async fn run(self, shutdown: CancellationToken) {
        certflow_telemetry::instruments()
            .crl_refresh_interval
            .record(self.config.refresh.as_secs(), &[]);
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
            let mut round = Round {
                ledger: Ledger::default(),
                dirty: self.base_partitions().collect(),
                refresh_due: HashMap::new(),
            };
            let mut applied = 0u64;
            let mut deadline = Some(Instant::now() + self.config.debounce);
            // How long changes gather before the next CRL: grows with what signing costs.
            let mut gather = self.config.debounce;
            loop {
                let wake = [deadline, round.next_refresh()]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or_else(|| Instant::now() + self.config.refresh);
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep_until(wake) => {
                        if applied < replay_until {
                            deadline = Some(Instant::now() + self.config.debounce);
                            continue;
                        }
                        round.mark_due();
                        let signing = self.sign_dirty(&mut round).await;
                        gather = gather_for(self.config.debounce, signing);
                        deadline = (!round.dirty.is_empty()).then(|| Instant::now() + gather);
                        if round.dirty.is_empty() {
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
                                    match round.ledger.apply(&batch.certificate_id, event) {
                                        Some(Effect::Crl(partition)) => {
                                            round.dirty.insert(partition);
                                        }
                                        Some(Effect::Shred(key_id)) => self.shred(&key_id).await,
                                        None => {}
                                    }
                                }
                            }
                            if !round.dirty.is_empty() && deadline.is_none() {
                                deadline = Some(Instant::now() + gather);
                            }
                            if round.dirty.is_empty() && applied >= replay_until {
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

    /// Signs every dirty partition (and every partition a certificate names that has no
    /// refresh time yet); what fails stays dirty for the next round. Returns the time spent
    /// signing, the part of the round that grows with the CRLs (reading and storing them
    /// takes what the network and the server take, busy or not).
    async fn sign_dirty(&self, round: &mut Round) -> Duration {
        let unknown: Vec<CrlPartition> = round
            .ledger
            .partitions
            .iter()
            .filter(|p| !round.refresh_due.contains_key(p))
            .copied()
            .collect();
        round.dirty.extend(unknown);
        let mut signed = 0usize;
        let mut signing = Duration::ZERO;
        for partition in std::mem::take(&mut round.dirty) {
            match self.publish(partition, &mut round.ledger).await {
                Ok((outcome, this_update)) => {
                    if let Signed::New(took) = outcome {
                        signed += 1;
                        signing += took;
                    }
                    round
                        .refresh_due
                        .insert(partition, this_update + millis(self.config.refresh));
                }
                Err(err) => {
                    error!(%partition, error = %err, "could not publish the CRL");
                    round.dirty.insert(partition);
                }
            }
        }
        if signed > 0 {
            info!(signed, ?signing, "CRLs signed");
        }
        signing
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

    /// Signs and stores `partition`'s next CRL, unless the stored one already lists the
    /// same entries and is not due for refresh. Returns what happened and the `thisUpdate`
    /// of the CRL now stored.
    async fn publish(
        &self,
        partition: CrlPartition,
        ledger: &mut Ledger,
    ) -> Result<(Signed, i64), PublishError> {
        let expired_before = certflow_runtime::now().plus(certflow_domain::Duration::millis(
            -millis(self.config.keep_expired),
        ));
        let entries = ledger.entries(partition, expired_before);
        let digest = entries_digest(&entries);
        let token = store_token(partition);
        loop {
            let latest = self.crls.latest(&token).await?;
            if let Some(latest) = &latest
                && latest.digest == digest
                && latest.this_update + millis(self.config.refresh) > now_millis()
            {
                stored(partition, latest.this_update, latest.next_update);
                return Ok((Signed::Current, latest.this_update));
            }
            let number = latest.as_ref().map_or(1, |l| l.number + 1);
            let now = certflow_runtime::now();
            let next = now.plus(certflow_domain::Duration::millis(millis(
                self.config.validity,
            )));
            // Signing a large CRL takes seconds of CPU: off the async workers.
            let ca = self.ca.clone();
            let to_sign = entries.clone();
            let (signed, took) = tokio::task::spawn_blocking(move || {
                let started = std::time::Instant::now();
                ca.crl(partition, number, &to_sign, now, next)
                    .map(|signed| (signed, started.elapsed()))
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
                digest: digest.clone(),
                der: signed.der.into(),
            };
            let expected = latest.as_ref().map_or(0, |l| l.sequence);
            if self.crls.publish(&token, expected, &crl).await?.is_some() {
                certflow_telemetry::instruments().crl_signed.add(
                    1,
                    &[opentelemetry::KeyValue::new(
                        "issuer",
                        partition.issuer.slug(),
                    )],
                );
                stored(partition, crl.this_update, crl.next_update);
                if !entries.is_empty() {
                    info!(%partition, number, entries = entries.len(), "CRL published");
                }
                return Ok((Signed::New(took), crl.this_update));
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

/// The issuer a CRL request names.
fn issuer_of(brand: i32, sm2: bool) -> Result<IssuerId, certflow_domain::DomainError> {
    Ok(IssuerId {
        brand: brand_from_proto(brand)?,
        sm2,
    })
}

/// Answers `GetCrl` from the CRL stream.
pub(crate) async fn answer(crls: &CrlStore, signing: &Signing, request: Request) -> Reply {
    let partition = match decode_request::<GetCrlRequest>(&request).and_then(|req| {
        Ok(CrlPartition {
            issuer: issuer_of(req.brand, req.sm2)?,
            shard: req.shard.map_or(Shard::Original, Shard::Numbered),
        })
    }) {
        Ok(partition) => partition,
        Err(err) => return refused(&err),
    };
    match crls.latest(&store_token(partition)).await {
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
            url: signing.ca.crl_url(partition),
        }),
        Ok(None) => match partition.shard {
            Shard::Numbered(n) if n >= signing.crl_shards.max(1) => {
                refused(&certflow_domain::DomainError::not_found_named(format!(
                    "{partition} has no CRL: no certificate names it; ListCrls lists them"
                )))
            }
            _ => certflow_bus::unavailable(format!(
                "no CRL of {partition} has been published yet; try again shortly"
            )),
        },
        Err(err) => {
            warn!(error = %err, "CRL read failed");
            certflow_bus::unavailable("the CRL store is unavailable; try again")
        }
    }
}

/// Answers `ListCrls`: the distribution point of every partition of the issuer with a
/// stored CRL, the original first, then shards in order.
pub(crate) async fn list(crls: &CrlStore, signing: &Signing, request: Request) -> Reply {
    let issuer = match decode_request::<ListCrlsRequest>(&request)
        .and_then(|req| issuer_of(req.brand, req.sm2))
    {
        Ok(issuer) => issuer,
        Err(err) => return refused(&err),
    };
    let tokens = match crls.partitions(&issuer.slug()).await {
        Ok(tokens) => tokens,
        Err(err) => {
            warn!(error = %err, "CRL list failed");
            return certflow_bus::unavailable("the CRL store is unavailable; try again");
        }
    };
    let mut shards: Vec<Shard> = tokens
        .iter()
        .filter_map(|token| match token.as_str() {
            "" => Some(Shard::Original),
            number => number.parse().ok().map(Shard::Numbered),
        })
        .collect();
    shards.sort();
    shards.dedup();
    response(&ListCrlsResponse {
        urls: shards
            .into_iter()
            .map(|shard| signing.ca.crl_url(CrlPartition { issuer, shard }))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use certflow_domain::{
        Brand, CertificateIssued, CertificateRevoked, KeyAlgorithm, Level, RevocationCause,
        RevocationReason, X509Facts,
    };

    fn at(days: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_800_000_000_000 + days * 86_400_000)
    }

    fn issued(id: &str, serial: &str, crl_shard: Option<u32>, not_after: Timestamp) -> Event {
        Event::Issued(CertificateIssued {
            id: CertificateId::parse(id).expect("id"),
            account: "acme".into(),
            brand: Brand::GeoTrust,
            level: Level::Dv,
            paid: false,
            algorithm: KeyAlgorithm::EccP256,
            domains: vec![certflow_domain::DomainName::parse("a.example.com").expect("name")],
            term_years: 1,
            issued_at: at(0),
            not_before: at(0),
            not_after,
            validation_setup: Default::default(),
            renewal_ordered: false,
            x509: Some(X509Facts {
                serial_number: serial.into(),
                public_key_sha256: "ab".into(),
                pem: String::new(),
                chain_pem: String::new(),
                private_key_id: None,
                crl_shard,
            }),
            original: None,
            enterprise_info: Default::default(),
            legacy: false,
        })
    }

    fn revoked(day: i64) -> Event {
        Event::Revoked(CertificateRevoked {
            reason: RevocationReason::KeyCompromise,
            revoked_at: at(day),
            cause: RevocationCause::Requested,
        })
    }

    const GEOTRUST: IssuerId = IssuerId {
        brand: Brand::GeoTrust,
        sm2: false,
    };

    #[test]
    fn ca4_a_revocation_changes_only_the_partition_its_certificate_names() {
        let mut ledger = Ledger::default();
        let id = |s: &str| CertificateId::parse(s).expect("id");
        // Signed before partitioning: no shard recorded, so the original CRL.
        assert!(
            ledger
                .apply(&id("old"), &issued("old", "0a", None, at(90)))
                .is_none()
        );
        assert!(
            ledger
                .apply(&id("new"), &issued("new", "0b", Some(5), at(90)))
                .is_none()
        );
        let original = CrlPartition {
            issuer: GEOTRUST,
            shard: Shard::Original,
        };
        let shard5 = CrlPartition {
            issuer: GEOTRUST,
            shard: Shard::Numbered(5),
        };
        assert_eq!(
            ledger.partitions,
            HashSet::from([original, shard5]),
            "every partition a certificate names gets a CRL"
        );
        assert!(matches!(
            ledger.apply(&id("old"), &revoked(1)),
            Some(Effect::Crl(p)) if p == original
        ));
        assert!(matches!(
            ledger.apply(&id("new"), &revoked(1)),
            Some(Effect::Crl(p)) if p == shard5
        ));
        // REV-17: revoked again changes nothing.
        assert!(ledger.apply(&id("new"), &revoked(2)).is_none());
        let listed = ledger.entries(shard5, at(0));
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].serial_hex.as_str(), listed[0].revoked_at),
            ("0b", at(1))
        );
        assert_eq!(ledger.entries(original, at(0))[0].serial_hex, "0a");
    }

    #[test]
    fn ca4_an_entry_leaves_its_crl_once_its_certificate_expired_long_enough_ago() {
        let mut ledger = Ledger::default();
        let id = |s: &str| CertificateId::parse(s).expect("id");
        ledger.apply(&id("short"), &issued("short", "01", Some(0), at(10)));
        ledger.apply(&id("long"), &issued("long", "02", Some(0), at(400)));
        ledger.apply(&id("short"), &revoked(1));
        ledger.apply(&id("long"), &revoked(1));
        let shard = CrlPartition {
            issuer: GEOTRUST,
            shard: Shard::Numbered(0),
        };
        // Expired, but not before the cut-off (keep_expired before now): still listed.
        assert_eq!(ledger.entries(shard, at(10)).len(), 2);
        let kept = ledger.entries(shard, at(11));
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].serial_hex, "02");
        assert_eq!(ledger.entries(shard, at(11)).len(), 1, "gone for good");
    }

    #[test]
    fn ca4_the_digest_tells_one_set_of_entries_from_another() {
        let entry = |serial: &str, day, reason| RevokedEntry {
            serial_hex: serial.into(),
            revoked_at: at(day),
            reason,
        };
        let base = vec![entry("01", 1, RevocationReason::KeyCompromise)];
        assert_eq!(entries_digest(&base), entries_digest(&base.clone()));
        for other in [
            vec![],
            vec![entry("02", 1, RevocationReason::KeyCompromise)],
            vec![entry("01", 2, RevocationReason::KeyCompromise)],
            vec![entry("01", 1, RevocationReason::Superseded)],
            vec![
                entry("01", 1, RevocationReason::KeyCompromise),
                entry("02", 1, RevocationReason::KeyCompromise),
            ],
        ] {
            assert_ne!(entries_digest(&base), entries_digest(&other), "{other:?}");
        }
    }

    #[test]
    fn ca4_the_store_names_each_partition_apart() {
        let token = |shard| {
            store_token(CrlPartition {
                issuer: GEOTRUST,
                shard,
            })
        };
        assert_eq!(token(Shard::Original), "geotrust");
        assert_eq!(token(Shard::Numbered(7)), "geotrust.7");
    }

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
