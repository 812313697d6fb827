//! The issuance side of a reissue: keys generated for it, and the certificate it creates.
//! The reissue service decides; the CA and the key store stay here.

use certflow_bus::{CommandMeta, Request, decode_request, refused, response, unavailable};
use certflow_ca::{IssueRequest, SubjectKey, keys};
use certflow_domain::reissue::reissued_certificate;
use certflow_domain::{
    CertificateId, DomainError, Event, Reason, ReissueKey, X509Facts, reactions::key_blocked,
};
use certflow_proto::bus::v1::{
    GenerateKeyRequest, GenerateKeyResponse, IssueReissuedRequest, IssueReissuedResponse, Reply,
    TransportKeyResponse,
};
use certflow_proto::convert::algorithm_from_proto;
use certflow_runtime::CommandRuntime;
use certflow_store::{KeyIndex, StoreError};
use tracing::warn;

use crate::{Signing, ca_refusal, store_key};

/// Answers the transport public key, which the gateway seals a reissue's key password to.
pub(crate) fn transport_key(signing: &Signing) -> Reply {
    response(&TransportKeyResponse {
        public_key: signing.transport.public_key(),
    })
}

/// Generates a key pair for a reissue, encrypts it with the customer's password if one was
/// given (sealed to the transport key), and seals it in the key store; answers its record
/// and public key.
pub(crate) async fn generate_key(signing: &Signing, request: Request) -> Reply {
    let req = match decode_request::<GenerateKeyRequest>(&request) {
        Ok(req) => req,
        Err(err) => return refused(&err),
    };
    if !req.key_password.is_empty() {
        return refused(&DomainError::invalid(
            Reason::InvalidArgument,
            "a key password must come sealed to the issuance service's transport key",
        ));
    }
    let password = if req.sealed_key_password.is_empty() {
        None
    } else {
        let opened = signing
            .transport
            .open(&req.sealed_key_password)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        match opened {
            Some(password) => Some(password),
            None => {
                return refused(&DomainError::invalid(
                    Reason::InvalidArgument,
                    "the sealed key password does not open with this service's transport key; \
                     send the request again",
                ));
            }
        }
    };
    let algorithm = match algorithm_from_proto(req.key_algorithm) {
        Ok(algorithm) => algorithm,
        Err(err) => return refused(&err),
    };
    let key = match crate::signing::generate_key(algorithm).await {
        Ok(key) => key,
        Err(err) => return refused(&err),
    };
    let public_key_der = match key.public_key_der() {
        Ok(der) => der,
        Err(err) => return unavailable(err.to_string()),
    };
    let stored_pem = match &password {
        None => key.private_key_pem().to_string(),
        Some(password) => match keys::encrypt_with_password(&key, password) {
            Ok(pem) => pem,
            Err(err) => return unavailable(err.to_string()),
        },
    };
    match store_key(signing, &stored_pem).await {
        Ok(key_record) => response(&GenerateKeyResponse {
            key_record,
            public_key_der,
        }),
        Err(reply) => reply,
    }
}

/// REI-5, REI-11: certifies a pending reissue and records the new certificate, linked to
/// its original, with the original's expiry. Done once: while the reissue is pending, a
/// repeat finds the certificate recorded and appends nothing.
pub(crate) async fn issue_reissued(
    runtime: &CommandRuntime,
    signing: &Signing,
    keys_index: &KeyIndex,
    request: Request,
) -> Reply {
    let req = match decode_request::<IssueReissuedRequest>(&request) {
        Ok(req) => req,
        Err(err) => return refused(&err),
    };
    let original_id = match CertificateId::parse(&req.original_id) {
        Ok(id) => id,
        Err(err) => return refused(&err),
    };
    let original = match runtime.store.load(&original_id).await {
        Ok(loaded) => loaded.state,
        Err(err) => return unavailable(err.to_string()),
    };
    let Some(cert) = original.as_ref() else {
        return refused(&DomainError::not_found(&original_id));
    };
    let pending = cert
        .pending_reissue
        .as_ref()
        .filter(|p| p.reissue_id == req.reissue_id);
    let Some(pending) = pending else {
        return refused(&DomainError::refused(
            certflow_domain::Rule::Rei11,
            Reason::NotFound,
            "this reissue is not pending: it has completed or failed",
        ));
    };
    match runtime.store.load(&pending.new_certificate_id).await {
        Ok(loaded) if loaded.state.is_some() => {
            return response(&IssueReissuedResponse {
                certificate_id: pending.new_certificate_id.to_string(),
            });
        }
        Ok(_) => {}
        Err(err) => return unavailable(store_message(&err)),
    }
    let (public_key_der, private_key_id) = match &pending.key {
        ReissueKey::Original => match original_public_key(cert.pem.as_deref()) {
            Some(der) => (der, cert.private_key_id.clone()),
            None => {
                return refused(&DomainError::invalid(
                    Reason::InvalidCertificate,
                    "the original has no certificate whose key could be certified again; \
                     reissue it with a generated key or a CSR",
                ));
            }
        },
        ReissueKey::Generated {
            key_record,
            public_key_der,
            ..
        } => (public_key_der.clone(), Some(key_record.clone())),
        ReissueKey::Csr { public_key_der, .. } => (public_key_der.clone(), None),
    };
    // REV-16: a key blocked since the request is not certified.
    let fingerprint = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(&public_key_der))
    };
    match keys_index.blocked_by(&fingerprint).await {
        Ok(None) => {}
        Ok(Some(_)) => return refused(&key_blocked()),
        Err(err) => return unavailable(err.to_string()),
    }
    let now = certflow_runtime::now();
    let issued = reissued_certificate(cert, pending, now);
    let crl_shard = signing.crl_shard(&issued.id);
    let certified = match signing.ca.issue(&IssueRequest {
        brand: issued.brand,
        domains: &issued.domains,
        key: SubjectKey::PublicKey(&public_key_der),
        not_before: issued.not_before,
        not_after: issued.not_after,
        crl_shard,
    }) {
        Ok(certified) => certified,
        Err(err) => {
            warn!(error = %err, reissue = %req.reissue_id, "the CA would not certify a reissue");
            // The same key would be refused again: a final answer, and the reissue fails.
            return match ca_refusal(err) {
                certflow_runtime::CommandError::Domain(err) => refused(&err),
                other => refused(&DomainError::invalid(
                    Reason::KeyPolicyViolation,
                    format!("the CA would not certify this key: {other}"),
                )),
            };
        }
    };
    let new_id = issued.id.clone();
    let event = Event::Issued(issued).certified(X509Facts {
        serial_number: certified.serial_hex,
        public_key_sha256: certified.public_key_sha256,
        pem: certified.pem,
        chain_pem: certified.chain_pem,
        private_key_id,
        crl_shard: Some(crl_shard),
    });
    let meta = reissue_meta(&request, &req.reissue_id);
    let appended = runtime
        .store
        .execute_reaction(&new_id, &meta, |state| {
            if state.is_some() {
                Vec::new()
            } else {
                vec![event.clone()]
            }
        })
        .await;
    match appended {
        Ok(_) => response(&IssueReissuedResponse {
            certificate_id: new_id.to_string(),
        }),
        Err(err) => unavailable(store_message(&err)),
    }
}

fn store_message(err: &StoreError) -> String {
    format!("{err}; try again")
}

/// The new certificate's command id derives from the reissue, so a repeat appends nothing.
fn reissue_meta(request: &Request, reissue_id: &str) -> CommandMeta {
    let id = format!("reissued-{reissue_id}");
    let mut meta = CommandMeta::from_request(&id, request.headers.as_ref());
    meta.command_id = certflow_domain::CommandId(id);
    meta
}

/// The DER SubjectPublicKeyInfo of the certificate in `pem`.
fn original_public_key(pem: Option<&str>) -> Option<Vec<u8>> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem?.as_bytes()).ok()?;
    let certificate = pem.parse_x509().ok()?;
    Some(certificate.public_key().raw.to_vec())
}
