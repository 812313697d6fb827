//! The issuance service: issues certificates through the CA, stores third-party
//! certificates customers upload after parsing their PEM for real, builds the files
//! customers download, and publishes each CA's partitioned CRLs.
//!
//! It answers `certflow.cmd.issuance.>`, `certflow.crl.get` and `certflow.crl.list` on the
//! queue group `issuance`. A new certificate's id is derived from the command id, so a retried request
//! lands on the same certificate and is answered from its first outcome (GEN-1).
//!
//! Issuing: the domain decides first (so a refused request signs nothing); the CA then
//! certifies the key of the customer's CSR, or of a key pair generated here. A generated
//! private key is sealed into the key store (optionally encrypted with the customer's
//! password first) before the event is appended, under a fresh record id that the event
//! names; the event never holds the key. A key whose certificate was not recorded (a refusal,
//! a retry answered from its first outcome) is shredded.
//!
//! ## Layout
//!
//! - `crl` (private): [`CrlPublisher`]: CRLs re-signed (REV-15), deleted certificates' keys erased.
//! - `download` (private): the files a server needs (DL-1), PEM or PKCS#12; nothing appended.
//! - `reissue` (private): the issuance side of a reissue: its generated key and its certificate.
//! - `signing` (private): [`Signing`]: the CA and the sealed key store; KEK rotation.
//! - [`upload`]: reading an uploaded PEM certificate with x509-parser; public for `fuzz/`.

#![forbid(unsafe_code)]

mod crl;
mod download;
mod reissue;
mod signing;
pub mod upload;

use certflow_bus::{
    CancellationToken, Request, bound_command_meta, decode_request, not_available, refused,
    subjects,
};
use certflow_ca::{CaError, IssueRequest, SubjectKey, keys};
use certflow_domain::{
    CertificateId, Command, DomainError, Event, IssueCertificate, Reason, RecordLegacyCertificate,
    X509Facts, decide,
};
use certflow_proto::bus::v1::Reply;
use certflow_proto::convert::{
    algorithm_from_proto, brand_from_proto, certificate_to_proto, enterprise_info_from_request,
    level_from_proto, setups_from_proto, timestamp_from_request,
};
use certflow_proto::v1::{
    IssueCertificateRequest, IssueCertificateResponse, RecordLegacyCertificateRequest,
    RecordLegacyCertificateResponse, UploadCertificateRequest, UploadCertificateResponse,
};
use certflow_runtime::{CommandError, CommandRuntime, Service, ServiceSpec};
use certflow_store::{CrlStore, KeyIndex, StoreError};
use tracing::warn;

pub use crl::{CrlConfig, CrlPublisher};
pub use signing::{BRANDS, Rewrapped, Signing, builtin_ca, open_record, rewrap_keys};
pub use upload::parse_upload;

/// Errors starting the service.
#[derive(Debug, thiserror::Error)]
pub enum IssuanceError {
    #[error(transparent)]
    Bus(#[from] certflow_bus::BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("CA: {0}")]
    Ca(String),
}

/// The issuance service: the commands' runtime, the CA and key store, the CRL store and
/// the key index.
#[derive(Debug, Clone)]
pub struct IssuanceService {
    runtime: CommandRuntime,
    signing: Signing,
    crls: CrlStore,
    keys: KeyIndex,
    crl_config: CrlConfig,
}

impl IssuanceService {
    /// The service on `runtime`, signing with `signing`, attached to the CRL store and the
    /// key index.
    pub async fn new(
        client: async_nats::Client,
        runtime: CommandRuntime,
        signing: Signing,
        crl_config: CrlConfig,
    ) -> Result<Self, IssuanceError> {
        Ok(IssuanceService {
            crls: CrlStore::attach(client.clone()).await?,
            keys: KeyIndex::attach(client).await?,
            runtime,
            signing,
            crl_config,
        })
    }
}

impl Service for IssuanceService {
    const SPEC: ServiceSpec = ServiceSpec::answering(
        "issuance",
        &[subjects::ISSUANCE, subjects::GET_CRL, subjects::LIST_CRLS],
    );

    async fn answer(&self, request: Request) -> Reply {
        let IssuanceService {
            runtime,
            signing,
            keys,
            crls,
            ..
        } = self;
        match request.subject.as_str() {
            subjects::ISSUE_CERTIFICATE => issue(runtime, signing, keys, request).await,
            subjects::UPLOAD_CERTIFICATE => upload(runtime, signing, keys, request).await,
            subjects::RECORD_LEGACY_CERTIFICATE => record_legacy(runtime, signing, request).await,
            subjects::GENERATE_KEY => reissue::generate_key(signing, request).await,
            subjects::TRANSPORT_KEY => reissue::transport_key(signing),
            subjects::ISSUE_REISSUED => {
                reissue::issue_reissued(runtime, signing, keys, request).await
            }
            subjects::DOWNLOAD_CERTIFICATE => {
                download::answer(&runtime.store, signing, request).await
            }
            subjects::GET_CRL => crl::answer(crls, signing, request).await,
            subjects::LIST_CRLS => crl::list(crls, signing, request).await,
            other => not_available("issuance", other),
        }
    }

    /// Publishes CRLs from the revocations in the log.
    async fn background(&self, shutdown: CancellationToken) {
        let publisher = CrlPublisher {
            ca: self.signing.ca.clone(),
            crls: self.crls.clone(),
            keys: self.signing.keys.clone(),
            store: self.runtime.store.clone(),
            config: self.crl_config.clone(),
            shards: self.signing.crl_shards,
        };
        publisher.run(shutdown).await;
    }
}

/// The id of a certificate created by a command: the command id (a UUID), so a retry finds
/// the certificate its first attempt created.
fn new_certificate_id(meta: &certflow_bus::CommandMeta) -> Result<CertificateId, DomainError> {
    CertificateId::parse(&meta.command_id.0)
}

/// An issue request, parsed: the command and where its key comes from.
struct IssueParts {
    meta: certflow_bus::CommandMeta,
    command: IssueCertificate,
    csr_pem: Option<String>,
    /// Hex SHA-256 of the CSR's SubjectPublicKeyInfo.
    csr_key_sha256: Option<String>,
    /// The CSR's SubjectPublicKeyInfo, DER, once its self-signature is checked.
    csr_public_key: Option<Vec<u8>>,
    key_password: Option<String>,
}

fn parse_issue(request: &Request) -> Result<IssueParts, DomainError> {
    let req = decode_request::<IssueCertificateRequest>(request)?;
    let canonical = IssueCertificateRequest {
        key_password: String::new(),
        ..req.clone()
    };
    let meta = bound_command_meta(request, &req.request_id, &canonical)?;
    let csr_pem = (!req.csr_pem.trim().is_empty()).then(|| req.csr_pem.clone());
    let (algorithm, csr_key_sha256, csr_public_key) = match &csr_pem {
        Some(csr) => {
            let info = certflow_ca::csr::inspect(csr)?;
            (
                info.algorithm,
                Some(info.public_key_sha256),
                Some(info.public_key_der),
            )
        }
        None => (algorithm_from_proto(req.key_algorithm)?, None, None),
    };
    let key_password = (!req.key_password.is_empty()).then(|| req.key_password.clone());
    if csr_pem.is_some() && key_password.is_some() {
        return Err(DomainError::invalid(
            Reason::InvalidArgument,
            "key_password protects a key the product generates; with a CSR the key is yours",
        ));
    }
    let command = IssueCertificate {
        id: new_certificate_id(&meta)?,
        account: req.account.clone(),
        brand: brand_from_proto(req.brand)?,
        level: level_from_proto(req.level)?,
        paid: req.paid,
        algorithm,
        domains: req.domains.clone(),
        term_years: req.term_years,
        not_before: req
            .not_before
            .as_ref()
            .map(|t| timestamp_from_request("not_before", t))
            .transpose()?,
        not_after: req
            .not_after
            .as_ref()
            .map(|t| timestamp_from_request("not_after", t))
            .transpose()?,
        validation_setup: setups_from_proto(&req.validation_setup)?,
        renewal_ordered: req.renewal_ordered,
        enterprise_info: enterprise_info_from_request(&req.enterprise_info)?,
    };
    Ok(IssueParts {
        meta,
        command,
        csr_pem,
        csr_key_sha256,
        csr_public_key,
        key_password,
    })
}

fn ca_refusal(err: CaError) -> CommandError {
    match err {
        CaError::InvalidCsr(why) => {
            DomainError::invalid(Reason::CsrInvalid, format!("the CSR is not valid: {why}")).into()
        }
        CaError::Unsupported(why) => DomainError::invalid(Reason::KeyPolicyViolation, why).into(),
        other => CommandError::Failed(other.to_string()),
    }
}

/// REV-16: a key revoked for compromise is never certified again. `None` when the key may
/// be used; otherwise the reply to send.
async fn refuse_blocked_key(keys: &KeyIndex, key_sha256: &str) -> Option<Reply> {
    match keys.blocked_by(key_sha256).await {
        Ok(None) => None,
        Ok(Some(_)) => Some(refused(&certflow_domain::reactions::key_blocked())),
        Err(err) => {
            warn!(error = %err, "could not read the key index");
            Some(certflow_bus::unavailable(
                "the key index is unavailable; retry with the same request id",
            ))
        }
    }
}

/// Seals a private key into the key store under a fresh record id.
async fn store_key(signing: &Signing, pem: &str) -> Result<String, Reply> {
    let key_id = format!("key-{}", uuid::Uuid::new_v4());
    match signing::seal_record(&signing.keys, &signing.kek, &key_id, pem.as_bytes()).await {
        Ok(_) => Ok(key_id),
        Err(err) => {
            warn!(error = %err, "could not store a private key");
            Err(certflow_bus::unavailable(
                "the key store is unavailable; retry with the same request id",
            ))
        }
    }
}

/// Shreds a stored key that no recorded certificate refers to. Only a definite outcome
/// says so: a success naming another key (a retry), or a refusal by the rules. After an
/// ambiguous failure (the log did not answer, the append may have landed) the key is kept:
/// an unused sealed key is harmless, a shredded key of a recorded certificate is lost.
async fn shred_unused(signing: &Signing, key_id: Option<&String>, kept: bool, reply: &Reply) {
    if let (Some(key_id), false, true) = (key_id, kept, reply.is_definite())
        && let Err(err) = signing.keys.shred(key_id).await
    {
        warn!(error = %err, %key_id, "could not shred an unused key");
    }
}

async fn issue(
    runtime: &CommandRuntime,
    signing: &Signing,
    keys: &KeyIndex,
    request: Request,
) -> Reply {
    let parts = match parse_issue(&request) {
        Ok(parts) => parts,
        Err(err) => return refused(&err),
    };
    if let Some(key) = &parts.csr_key_sha256 {
        // A retry is answered as it was, even if the key has been blocked since (GEN-1).
        if let Some(first) = runtime.first_outcome(&parts.meta).await {
            return first;
        }
        if let Some(reply) = refuse_blocked_key(keys, key).await {
            return reply;
        }
    }
    // A request the rules refuse costs no key and leaves none behind. (A retry without a
    // CSR is answered from its first outcome by `run`; the key made for it is shredded.)
    let command = Command::Issue(parts.command.clone());
    if let Err(refusal) = runtime.preview_new(&parts.meta, &command) {
        return refusal;
    }
    // A generated key is sealed away before anything refers to it.
    let generated = match &parts.csr_pem {
        Some(_) => None,
        None => {
            let key = match signing::generate_key(parts.command.algorithm).await {
                Ok(key) => key,
                Err(err) => return refused(&err),
            };
            let stored_pem = match &parts.key_password {
                Some(password) => match keys::encrypt_with_password(&key, password) {
                    Ok(pem) => pem,
                    Err(err) => return certflow_bus::unavailable(err.to_string()),
                },
                None => key.private_key_pem().to_string(),
            };
            match store_key(signing, &stored_pem).await {
                Ok(key_id) => Some((key, key_id)),
                Err(reply) => return reply,
            }
        }
    };
    let id = parts.command.id.clone();
    let key_id = generated.as_ref().map(|(_, id)| id.clone());
    let mut kept_key = false;
    let reply = runtime
        .run(
            &parts.meta,
            &id,
            |state, ctx| {
                let events = decide(state, &command, ctx)?;
                let Some(Event::Issued(issued)) = events.first() else {
                    return Ok(events);
                };
                // A CSR's key is certified from its checked public key (SM2 included).
                let key = match (&parts.csr_public_key, &generated) {
                    (Some(public_key), _) => SubjectKey::PublicKey(public_key),
                    (None, Some((key, _))) => SubjectKey::Generated(key),
                    (None, None) => {
                        return Err(CommandError::Failed("no key to certify".into()));
                    }
                };
                let crl_shard = signing.crl_shard(&issued.id);
                let certified = signing
                    .ca
                    .issue(&IssueRequest {
                        brand: issued.brand,
                        domains: &issued.domains,
                        key,
                        not_before: issued.not_before,
                        not_after: issued.not_after,
                        crl_shard,
                    })
                    .map_err(ca_refusal)?;
                let facts = X509Facts {
                    serial_number: certified.serial_hex,
                    public_key_sha256: certified.public_key_sha256,
                    pem: certified.pem,
                    chain_pem: certified.chain_pem,
                    private_key_id: key_id.clone(),
                    crl_shard: Some(crl_shard),
                };
                Ok(events
                    .into_iter()
                    .map(|event| event.certified(facts.clone()))
                    .collect())
            },
            |cert, now| {
                kept_key = key_id.is_some() && cert.private_key_id == key_id;
                IssueCertificateResponse {
                    certificate: Some(certificate_to_proto(cert, now)),
                }
            },
        )
        .await;
    shred_unused(signing, key_id.as_ref(), kept_key, &reply).await;
    reply
}

async fn upload(
    runtime: &CommandRuntime,
    signing: &Signing,
    keys: &KeyIndex,
    request: Request,
) -> Reply {
    let parsed = decode_request::<UploadCertificateRequest>(&request).and_then(|req| {
        let canonical = UploadCertificateRequest {
            private_key_pem: String::new(),
            ..req.clone()
        };
        let meta = bound_command_meta(&request, &req.request_id, &canonical)?;
        let key = (!req.private_key_pem.trim().is_empty()).then_some(req.private_key_pem.clone());
        upload::check_upload(&req.pem, key.as_deref(), certflow_runtime::now())?;
        let command = parse_upload(new_certificate_id(&meta)?, &req.account, &req.pem)?;
        Ok((meta, command, key))
    });
    let (meta, mut command, key) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => return refused(&err),
    };
    if let Some(first) = runtime.first_outcome(&meta).await {
        return first;
    }
    if let Some(reply) = refuse_blocked_key(keys, &command.public_key_sha256).await {
        return reply;
    }
    if key.is_some()
        && let Err(refusal) = runtime.preview_new(&meta, &Command::Upload(command.clone()))
    {
        return refusal;
    }
    if let Some(key) = &key {
        match store_key(signing, key).await {
            Ok(key_id) => command.private_key_id = Some(key_id),
            Err(reply) => return reply,
        }
    }
    let key_id = command.private_key_id.clone();
    record_stored(
        runtime,
        signing,
        &meta,
        key_id,
        Command::Upload(command),
        |certificate| UploadCertificateResponse { certificate },
    )
    .await
}

/// Runs a command that records a certificate signed elsewhere (an upload, a legacy
/// record), with the private key stored for it if any, which is shredded unless the
/// recorded certificate keeps it.
async fn record_stored<M: prost::Message>(
    runtime: &CommandRuntime,
    signing: &Signing,
    meta: &certflow_bus::CommandMeta,
    key_id: Option<String>,
    command: Command,
    respond: fn(Option<certflow_proto::v1::Certificate>) -> M,
) -> Reply {
    let mut kept_key = false;
    let id = command.certificate_id().clone();
    let reply = runtime
        .run(
            meta,
            &id,
            |state, ctx| decide(state, &command, ctx).map_err(CommandError::from),
            |cert, now| {
                kept_key = key_id.is_some() && cert.private_key_id == key_id;
                respond(Some(certificate_to_proto(cert, now)))
            },
        )
        .await;
    shred_unused(signing, key_id.as_ref(), kept_key, &reply).await;
    reply
}

/// CA-3: records, for an administrator, a certificate the platform issued before certflow:
/// what the certificate says, checked as an upload is (it may have expired), under the
/// purchase the request names. Nothing is signed; a private key given with it is sealed
/// like any other.
async fn record_legacy(runtime: &CommandRuntime, signing: &Signing, request: Request) -> Reply {
    let parsed = decode_request::<RecordLegacyCertificateRequest>(&request).and_then(|req| {
        let canonical = RecordLegacyCertificateRequest {
            private_key_pem: String::new(),
            ..req.clone()
        };
        let meta = bound_command_meta(&request, &req.request_id, &canonical)?;
        let key = (!req.private_key_pem.trim().is_empty()).then_some(req.private_key_pem.clone());
        upload::check_legacy_record(&req.pem, key.as_deref())?;
        let certificate = parse_upload(new_certificate_id(&meta)?, &req.account, &req.pem)?;
        let command = RecordLegacyCertificate {
            brand: brand_from_proto(req.brand)?,
            paid: req.paid,
            term_years: req.term_years,
            validation_setup: setups_from_proto(&req.validation_setup)?,
            renewal_ordered: req.renewal_ordered,
            enterprise_info: enterprise_info_from_request(&req.enterprise_info)?,
            certificate,
        };
        Ok((meta, command, key))
    });
    let (meta, mut command, key) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => return refused(&err),
    };
    if let Some(first) = runtime.first_outcome(&meta).await {
        return first;
    }
    if let Err(refusal) = runtime.preview_new(&meta, &Command::RecordLegacy(command.clone())) {
        return refusal;
    }
    if let Some(key) = &key {
        match store_key(signing, key).await {
            Ok(key_id) => command.certificate.private_key_id = Some(key_id),
            Err(reply) => return reply,
        }
    }
    let key_id = command.certificate.private_key_id.clone();
    record_stored(
        runtime,
        signing,
        &meta,
        key_id,
        Command::RecordLegacy(command),
        |certificate| RecordLegacyCertificateResponse { certificate },
    )
    .await
}
