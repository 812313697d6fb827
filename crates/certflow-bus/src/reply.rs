//! Building replies, and reading who sent a command.

use crate::meta::{CommandMeta, RequestBinding};
use async_nats::HeaderMap;
use certflow_domain::{DomainError, Reason};
use certflow_proto::bus::v1::{Refusal, Reply, reply::Outcome};
use certflow_proto::refusal::ServiceReason;
use prost::Message;

/// A successful reply carrying `response`.
pub fn response<M: Message>(response: &M) -> Reply {
    Reply {
        outcome: Some(Outcome::Response(response.encode_to_vec())),
    }
}

/// A refusal by the rules, as a reply.
pub fn refused(err: &DomainError) -> Reply {
    Reply::refused(Refusal::of(err))
}

/// A failure that is not the caller's: the log or a peer was unavailable. Retrying with the
/// same request id is safe.
pub fn unavailable(message: impl Into<String>) -> Reply {
    Reply::refused(Refusal::service(ServiceReason::Unavailable, message))
}

/// A failure on certflow's side; retrying with the same request id is safe.
pub fn internal(message: impl Into<String>) -> Reply {
    Reply::refused(Refusal::service(ServiceReason::Internal, message))
}

/// The request body as the message `M`; undecodable bytes are the caller's error.
pub fn decode_request<M: Message + Default>(request: &crate::Request) -> Result<M, DomainError> {
    M::decode(request.payload.clone()).map_err(|err| {
        DomainError::invalid(
            Reason::InvalidArgument,
            format!("undecodable request: {err}"),
        )
    })
}

/// The answer of a service to a command it does not offer yet.
pub fn not_available(service: &str, subject: &str) -> Reply {
    unimplemented_reply(format!(
        "the {service} service does not offer {subject} yet"
    ))
}

/// `UNIMPLEMENTED` (`NOT_AVAILABLE`): the product does not offer this yet; `message` says
/// what to do instead. Nothing was changed.
pub fn unimplemented_reply(message: impl Into<String>) -> Reply {
    Reply::refused(Refusal::service(ServiceReason::NotAvailable, message))
}

/// The metadata of a command: the request id from its body (checked here, GEN-1), the actor
/// and correlation id from the headers the gateway set.
pub fn command_meta(
    request_id: &str,
    headers: Option<&HeaderMap>,
) -> Result<CommandMeta, DomainError> {
    let request_id = request_id.trim();
    if request_id.is_empty()
        || request_id.len() > 128
        || !request_id.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(DomainError::invalid(
            Reason::InvalidArgument,
            "request_id is required: 1 to 128 printable characters, e.g. a UUID; reuse it \
             only to retry the same request",
        ));
    }
    Ok(CommandMeta::from_request(request_id, headers))
}

/// [`command_meta`] of `request`, bound to it (GEN-1): to its RPC and to `canonical`, the
/// decoded request with any secret it carries emptied (a password's fingerprint is kept
/// nowhere), so the same request id sent again with another request is refused.
pub fn bound_command_meta(
    request: &crate::Request,
    request_id: &str,
    canonical: &impl Message,
) -> Result<CommandMeta, DomainError> {
    bound_command_meta_on(
        &request.subject,
        request.headers.as_ref(),
        request_id,
        canonical,
    )
}

/// [`bound_command_meta`] of a request already decoded: sent to `rpc` with `headers` (one
/// revocation of a batch stands for a request of its own).
pub fn bound_command_meta_on(
    rpc: &str,
    headers: Option<&HeaderMap>,
    request_id: &str,
    canonical: &impl Message,
) -> Result<CommandMeta, DomainError> {
    let binding = RequestBinding::of(rpc, &canonical.encode_to_vec());
    Ok(command_meta(request_id, headers)?.bound_to(binding))
}
