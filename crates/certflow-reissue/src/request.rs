//! A reissue request (REI-1 … REI-12): the key source checked or made, the registrable
//! domains reserved (REI-4), and `ReissueRequested` appended to the original.

use bytes::Bytes;
use certflow_bus::{
    CommandMeta, Envelope, Request, bound_command_meta, decode_request, refused, subjects,
    unavailable,
};
use certflow_domain::reissue::reservations;
use certflow_domain::{
    CertificateId, Command, DomainError, Event, Reason, ReissueKey, RequestReissue, decide,
    reactions::key_blocked,
};
use certflow_proto::bus::v1::{GenerateKeyRequest, GenerateKeyResponse, Reply, reply::Outcome};
use certflow_proto::convert::{algorithm_from_proto, certificate_to_proto};
use certflow_proto::v1::{RequestReissueRequest, RequestReissueResponse, request_reissue_request};
use certflow_store::LockHolder;
use prost::Message;
use uuid::Uuid;

use crate::ReissueService;
use crate::reservations::Held;

/// Namespace of the ids of reissued certificates, derived from their reissue's id.
const NEW_CERTIFICATE_NAMESPACE: Uuid = Uuid::from_u128(0x0b7d_53a4_98c1_4f62_a1de_6c2f_08e5_9d37);

/// The id of the certificate a reissue creates.
fn new_certificate_id(reissue_id: &str) -> Result<CertificateId, DomainError> {
    CertificateId::parse(
        &Uuid::new_v5(&NEW_CERTIFICATE_NAMESPACE, reissue_id.as_bytes()).to_string(),
    )
}

pub(crate) async fn request_reissue(service: &ReissueService, request: Request) -> Reply {
    let parsed = decode_request::<RequestReissueRequest>(&request).and_then(|req| {
        // The password travels sealed in a header, never in the body fingerprinted here.
        let meta = bound_command_meta(&request, &req.request_id, &req)?;
        let id = CertificateId::parse(&req.certificate_id)?;
        Ok((meta, id, req))
    });
    let (meta, id, req) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => return refused(&err),
    };
    if let Some(first) = service.runtime.first_outcome(&meta).await {
        return first;
    }
    let reissue_id = meta.command_id.0.clone();
    let new_id = match new_certificate_id(&reissue_id) {
        Ok(id) => id,
        Err(err) => return refused(&err),
    };
    // The key source, as far as it can be known before anything is made (REI-7, REV-16).
    let (key, password) = match key_source(service, &req, &request).await {
        Ok(key) => key,
        Err(reply) => return reply,
    };
    let mut command = RequestReissue {
        id: id.clone(),
        reissue_id: reissue_id.clone(),
        new_certificate_id: new_id.clone(),
        domains: req.domains.clone(),
        reason: req.reason.clone(),
        key,
        enterprise_info: match certflow_proto::convert::enterprise_info_from_request(
            &req.enterprise_info,
        ) {
            Ok(info) => info,
            Err(err) => return refused(&err),
        },
        validation_method: match certflow_proto::convert::method_from_proto(req.validation_method) {
            Ok(method) => method,
            Err(err) => return refused(&err),
        },
    };
    let respond = |cert: &certflow_domain::Certificate, now| RequestReissueResponse {
        certificate: Some(certificate_to_proto(cert, now)),
        new_certificate_id: new_id.to_string(),
    };
    // Decide once on the current state before reserving or generating anything.
    let requested = match preview(service, &meta, &command).await {
        Ok(Some(requested)) => requested,
        // Recorded already, its answer lost (the service stopped before replying): the
        // retry is answered from the log, as its first try would have been.
        Ok(None) => {
            let recorded = Command::RequestReissue(command);
            return service
                .runtime
                .run(
                    &meta,
                    &id,
                    |state, ctx| Ok(decide(state, &recorded, ctx)?),
                    respond,
                )
                .await;
        }
        Err(reply) => return reply,
    };
    let Event::ReissueRequested(requested) = requested else {
        return unavailable("the reissue could not be decided");
    };
    let holder = LockHolder {
        reissue_id: reissue_id.clone(),
        certificate_id: id.clone(),
    };
    let domains: Vec<String> = reservations(&requested.domains).into_iter().collect();
    // Held while the request is made and recorded; released unless it was recorded (then
    // the reissue's end releases them).
    let holder = &holder;
    crate::reservations::holding(service, &domains, holder, |reserved_at| async move {
        // Only a reissue that holds its reservations has a key made for it.
        if let Some(password) = password {
            match generate_key(service, &request, &command, password).await {
                Ok(key) => command.key = key,
                Err(reply) => return Held::NotRecorded(reply),
            }
        }
        // A hold may be taken over once it is older than `stale_after`: a request that got
        // this slow gives up before recording rather than race a taker.
        if reserved_at.elapsed() > service.config.stale_after / 2 {
            return Held::NotRecorded(unavailable(
                "the reissue took too long to start; retry with the same request id",
            ));
        }
        let command = Command::RequestReissue(command);
        let reply = service
            .runtime
            .run(
                &meta,
                &id,
                |state, ctx| Ok(decide(state, &command, ctx)?),
                respond,
            )
            .await;
        Held::from_reply(service, holder, reply).await
    })
    .await
}

/// The key a request names: the original's, a CSR's (checked, and not blocked), or a key
/// to generate, with the password to encrypt it under as the gateway sealed it to the
/// issuance service (empty for none): this service carries it and cannot read it.
async fn key_source(
    service: &ReissueService,
    req: &RequestReissueRequest,
    request: &Request,
) -> Result<(ReissueKey, Option<Vec<u8>>), Reply> {
    use request_reissue_request::Key;
    match &req.key {
        None | Some(Key::OriginalKey(_)) => Ok((ReissueKey::Original, None)),
        Some(Key::GeneratedKey(generated)) => {
            let algorithm =
                algorithm_from_proto(generated.key_algorithm).map_err(|e| refused(&e))?;
            if !generated.key_password.is_empty() {
                return Err(refused(&DomainError::invalid(
                    Reason::InvalidArgument,
                    "a key password must come sealed to the issuance service; send the \
                     request through the gateway",
                )));
            }
            let sealed = sealed_key_password(request).map_err(|e| refused(&e))?;
            // Record and public key are filled in once the key is made.
            Ok((
                ReissueKey::Generated {
                    algorithm,
                    key_record: String::new(),
                    public_key_der: Vec::new(),
                },
                Some(sealed),
            ))
        }
        Some(Key::CsrPem(pem)) => {
            let info = certflow_ca::csr::inspect(pem).map_err(|e| refused(&e))?;
            match service.keys.blocked_by(&info.public_key_sha256).await {
                Ok(None) => {}
                Ok(Some(_)) => return Err(refused(&key_blocked())),
                Err(err) => return Err(unavailable(err.to_string())),
            }
            Ok((
                ReissueKey::Csr {
                    algorithm: info.algorithm,
                    names: info.names,
                    public_key_sha256: info.public_key_sha256,
                    public_key_der: info.public_key_der,
                },
                None,
            ))
        }
    }
}

/// The request decided on the current state: the `ReissueRequested` it would append, or
/// `None` when this very request is recorded already (a retry).
async fn preview(
    service: &ReissueService,
    meta: &CommandMeta,
    command: &RequestReissue,
) -> Result<Option<Event>, Reply> {
    let events = service
        .runtime
        .preview(meta, &command.id, &Command::RequestReissue(command.clone()))
        .await?;
    Ok(events.into_iter().next())
}

/// The key password the gateway sealed to the issuance service, from its header (empty:
/// none).
fn sealed_key_password(request: &Request) -> Result<Vec<u8>, DomainError> {
    use base64::Engine;
    let Some(value) = request
        .headers
        .as_ref()
        .and_then(|headers| headers.get(certflow_bus::headers::SEALED_KEY_PASSWORD))
    else {
        return Ok(Vec::new());
    };
    base64::engine::general_purpose::STANDARD
        .decode(value.as_str())
        .map_err(|_| {
            DomainError::invalid(
                Reason::InvalidArgument,
                "the sealed key password is not base64",
            )
        })
}

/// Has the issuance service generate and seal the key pair of a reissue, encrypted with
/// the password sealed to it (empty: none).
async fn generate_key(
    service: &ReissueService,
    request: &Request,
    command: &RequestReissue,
    sealed_password: Vec<u8>,
) -> Result<ReissueKey, Reply> {
    let ReissueKey::Generated { algorithm, .. } = &command.key else {
        return Ok(command.key.clone());
    };
    let body = GenerateKeyRequest {
        key_algorithm: certflow_proto::convert::algorithm_to_proto(*algorithm) as i32,
        key_password: String::new(),
        sealed_key_password: sealed_password,
    };
    let reply = call(
        service,
        request,
        subjects::GENERATE_KEY,
        body.encode_to_vec(),
    )
    .await?;
    let generated = GenerateKeyResponse::decode(reply.as_slice())
        .map_err(|_| unavailable("the issuance service answered an unreadable key"))?;
    Ok(ReissueKey::Generated {
        algorithm: *algorithm,
        key_record: generated.key_record,
        public_key_der: generated.public_key_der,
    })
}

/// Sends one request to the issuance service as the caller; the response body, or the
/// reply to send back.
async fn call(
    service: &ReissueService,
    request: &Request,
    subject: &str,
    body: Vec<u8>,
) -> Result<Vec<u8>, Reply> {
    let envelope = Envelope::continuing(request.headers.as_ref());
    match service
        .issuance
        .request(subject, &envelope, Bytes::from(body))
        .await
    {
        Ok(Reply {
            outcome: Some(Outcome::Response(bytes)),
        }) => Ok(bytes),
        Ok(other) => Err(other),
        Err(err) => Err(unavailable(err.to_string())),
    }
}
