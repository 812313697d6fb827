//! Command metadata and its NATS headers, shared by command requests and event messages.

use async_nats::HeaderMap;
use certflow_domain::{Actor, CommandId, Role};
use certflow_proto::events::v1::{ActorRole, CommandRecord};
use uuid::Uuid;

/// Header names. The same names carry a command from the gateway to a service and sit on the
/// event message the command appended, so the history can say who, when and why.
pub mod headers {
    /// The client's request id (GEN-1).
    pub const REQUEST_ID: &str = "Certflow-Request-Id";
    /// The command id derived from account and request id.
    pub const COMMAND_ID: &str = "Certflow-Command-Id";
    /// Ties together everything one client call caused.
    pub const CORRELATION_ID: &str = "Certflow-Correlation-Id";
    /// The command or event that caused this one, when it was not a client call.
    pub const CAUSATION_ID: &str = "Certflow-Causation-Id";
    /// The authenticated subject (user or service).
    pub const ACTOR_SUBJECT: &str = "Certflow-Actor-Subject";
    /// The caller's account.
    pub const ACTOR_ACCOUNT: &str = "Certflow-Actor-Account";
    /// Comma-separated roles: customer, reviewer, admin.
    pub const ACTOR_ROLES: &str = "Certflow-Actor-Roles";
    /// Comma-separated event type names of the batch.
    pub const EVENT_TYPES: &str = "Certflow-Event-Types";
    /// Version of the event schema the payload follows.
    pub const SCHEMA_VERSION: &str = "Certflow-Schema-Version";
    /// W3C trace context.
    pub const TRACEPARENT: &str = "traceparent";
    /// What the payload is.
    pub const CONTENT_TYPE: &str = "Content-Type";
    /// A reissue's key password, sealed to the issuance service's transport key and
    /// base64-encoded; the request body carries no password.
    pub const SEALED_KEY_PASSWORD: &str = "Certflow-Sealed-Key-Password";
}

/// Namespace of the v5 UUIDs that turn (account, request id) into a command id.
const COMMAND_NAMESPACE: Uuid = Uuid::from_u128(0x6c0e_2a57_8f3d_4b8e_9a51_c3e1_7d42_b9f0);

/// Who sent a command, which request it is, and what it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandMeta {
    pub command_id: CommandId,
    pub request_id: String,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub actor: Actor,
    pub traceparent: Option<String>,
    /// The request a client's request id was sent with (GEN-1): its first outcome is kept
    /// with it, and a retry must be the same request.
    pub binding: Option<RequestBinding>,
}

/// What a request id is bound to: the RPC (its NATS subject) and a fingerprint of the
/// request (hex SHA-256 of its encoding, secrets left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestBinding {
    pub rpc: String,
    pub fingerprint: String,
}

impl RequestBinding {
    /// The binding of `encoded` (a request without its secrets) sent to `rpc`.
    pub fn of(rpc: &str, encoded: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        RequestBinding {
            rpc: rpc.to_string(),
            fingerprint: hex::encode(Sha256::digest(encoded)),
        }
    }
}

impl CommandMeta {
    /// Metadata of a client request. The command id is derived from the actor's account and
    /// the request id, so the same request retried is the same command, and two accounts
    /// can never collide on a request id.
    pub fn for_request(request_id: &str, correlation_id: &str, actor: Actor) -> Self {
        let command_id = Uuid::new_v5(
            &COMMAND_NAMESPACE,
            format!("{}\n{}", actor.account, request_id).as_bytes(),
        );
        CommandMeta {
            command_id: CommandId(command_id.to_string()),
            request_id: request_id.to_string(),
            correlation_id: correlation_id.to_string(),
            causation_id: None,
            actor,
            traceparent: None,
            binding: None,
        }
    }

    /// This metadata, bound to the request it came with.
    pub fn bound_to(self, binding: RequestBinding) -> Self {
        CommandMeta {
            binding: Some(binding),
            ..self
        }
    }

    /// Writes the metadata into `headers`.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert(headers::COMMAND_ID, self.command_id.0.as_str());
        headers.insert(headers::REQUEST_ID, self.request_id.as_str());
        headers.insert(headers::CORRELATION_ID, self.correlation_id.as_str());
        if let Some(causation) = &self.causation_id {
            headers.insert(headers::CAUSATION_ID, causation.as_str());
        }
        write_actor(headers, &self.actor);
        if let Some(traceparent) = &self.traceparent {
            headers.insert(headers::TRACEPARENT, traceparent.as_str());
        }
    }

    /// Metadata of a command request: the request id from its body, the rest from the
    /// headers the gateway set. A missing correlation id becomes the request id.
    pub fn from_request(request_id: &str, headers: Option<&HeaderMap>) -> Self {
        let get = |name: &str| header(headers, name);
        let actor = actor_from_headers(headers);
        let correlation = get(headers::CORRELATION_ID).unwrap_or_else(|| request_id.to_string());
        let mut meta = CommandMeta::for_request(request_id, &correlation, actor);
        meta.causation_id = get(headers::CAUSATION_ID);
        meta.traceparent = get(headers::TRACEPARENT);
        meta
    }

    /// Reads metadata written by [`CommandMeta::write_headers`]; `None` if the command id
    /// or actor is missing.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let get = |name: &str| header(Some(headers), name);
        Some(CommandMeta {
            command_id: CommandId(get(headers::COMMAND_ID)?),
            request_id: get(headers::REQUEST_ID).unwrap_or_default(),
            correlation_id: get(headers::CORRELATION_ID).unwrap_or_default(),
            causation_id: get(headers::CAUSATION_ID),
            actor: Actor {
                subject: get(headers::ACTOR_SUBJECT)?,
                account: get(headers::ACTOR_ACCOUNT)?,
                roles: roles_from_header(&get(headers::ACTOR_ROLES).unwrap_or_default()),
            },
            traceparent: get(headers::TRACEPARENT),
            binding: None,
        })
    }
}

impl CommandMeta {
    /// The metadata as the event log records it, inside the batch's body.
    pub fn to_record(&self) -> CommandRecord {
        CommandRecord {
            command_id: self.command_id.0.clone(),
            request_id: self.request_id.clone(),
            correlation_id: self.correlation_id.clone(),
            causation_id: self.causation_id.clone().unwrap_or_default(),
            actor_subject: self.actor.subject.clone(),
            actor_account: self.actor.account.clone(),
            actor_roles: self
                .actor
                .roles
                .iter()
                .map(|role| match role {
                    Role::Customer => ActorRole::Customer,
                    Role::Reviewer => ActorRole::Reviewer,
                    Role::Admin => ActorRole::Admin,
                } as i32)
                .collect(),
            traceparent: self.traceparent.clone().unwrap_or_default(),
        }
    }

    /// Reads metadata written by [`CommandMeta::to_record`]; `None` if the command id or the
    /// actor is missing, as [`CommandMeta::from_headers`] reads the older form.
    pub fn from_record(record: CommandRecord) -> Option<Self> {
        let present = |text: String| (!text.is_empty()).then_some(text);
        let roles = record
            .actor_roles
            .iter()
            .filter_map(|role| match ActorRole::try_from(*role) {
                Ok(ActorRole::Customer) => Some(Role::Customer),
                Ok(ActorRole::Reviewer) => Some(Role::Reviewer),
                Ok(ActorRole::Admin) => Some(Role::Admin),
                Ok(ActorRole::Unspecified) | Err(_) => None,
            })
            .collect();
        Some(CommandMeta {
            command_id: CommandId(present(record.command_id)?),
            request_id: record.request_id,
            correlation_id: record.correlation_id,
            causation_id: present(record.causation_id),
            actor: Actor {
                subject: present(record.actor_subject)?,
                account: record.actor_account,
                roles,
            },
            traceparent: present(record.traceparent),
            binding: None,
        })
    }
}

/// The actor a service's own requests and appends are recorded under.
pub fn service_actor(service: &str) -> Actor {
    Actor {
        subject: format!("certflow-{service}"),
        account: "certflow".into(),
        roles: vec![Role::Admin],
    }
}

pub(crate) fn header(headers: Option<&HeaderMap>, name: &str) -> Option<String> {
    headers
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_string())
}

/// The actor of a request, from the headers the gateway set.
pub fn actor_from_headers(headers: Option<&HeaderMap>) -> Actor {
    Actor {
        subject: header(headers, headers::ACTOR_SUBJECT).unwrap_or_else(|| "anonymous".into()),
        account: header(headers, headers::ACTOR_ACCOUNT).unwrap_or_default(),
        roles: roles_from_header(&header(headers, headers::ACTOR_ROLES).unwrap_or_default()),
    }
}

/// The actor as the gateway writes it into request headers.
pub(crate) fn write_actor(headers: &mut HeaderMap, actor: &Actor) {
    headers.insert(headers::ACTOR_SUBJECT, actor.subject.as_str());
    headers.insert(headers::ACTOR_ACCOUNT, actor.account.as_str());
    headers.insert(headers::ACTOR_ROLES, roles_to_header(&actor.roles).as_str());
}

fn roles_to_header(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| match r {
            Role::Customer => "customer",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn roles_from_header(value: &str) -> Vec<Role> {
    value
        .split(',')
        .filter_map(|r| match r.trim() {
            "customer" => Some(Role::Customer),
            "reviewer" => Some(Role::Reviewer),
            "admin" => Some(Role::Admin),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(account: &str) -> Actor {
        Actor {
            subject: "alice".into(),
            account: account.into(),
            roles: vec![Role::Customer, Role::Reviewer],
        }
    }

    #[test]
    fn gen1_same_request_same_command_id_scoped_by_account() {
        let a = CommandMeta::for_request("r-1", "c", actor("acme"));
        let b = CommandMeta::for_request("r-1", "other", actor("acme"));
        let c = CommandMeta::for_request("r-1", "c", actor("globex"));
        assert_eq!(a.command_id, b.command_id);
        assert_ne!(a.command_id, c.command_id);
    }

    #[test]
    fn headers_round_trip() {
        let mut meta = CommandMeta::for_request("r-1", "corr", actor("acme"));
        meta.causation_id = Some("cause".into());
        let mut map = HeaderMap::new();
        meta.write_headers(&mut map);
        assert_eq!(CommandMeta::from_headers(&map), Some(meta));
    }

    /// The record in an event batch's body says what the headers said, with or without the
    /// optional parts; without a command id or an actor it is no record.
    #[test]
    fn record_round_trip() {
        let mut meta = CommandMeta::for_request("r-1", "corr", actor("acme"));
        assert_eq!(
            CommandMeta::from_record(meta.to_record()),
            Some(meta.clone())
        );
        meta.causation_id = Some("cause".into());
        meta.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
        meta.actor.roles = vec![Role::Admin, Role::Reviewer, Role::Customer];
        assert_eq!(
            CommandMeta::from_record(meta.to_record()),
            Some(meta.clone())
        );

        let mut headers = HeaderMap::new();
        meta.write_headers(&mut headers);
        assert_eq!(
            CommandMeta::from_headers(&headers),
            CommandMeta::from_record(meta.to_record()),
            "both forms read as the same metadata"
        );

        let no_command = CommandRecord {
            command_id: String::new(),
            ..meta.to_record()
        };
        assert_eq!(CommandMeta::from_record(no_command), None);
        let no_actor = CommandRecord {
            actor_subject: String::new(),
            ..meta.to_record()
        };
        assert_eq!(CommandMeta::from_record(no_actor), None);
        let unknown_role = CommandRecord {
            actor_roles: vec![ActorRole::Customer as i32, 99],
            ..meta.to_record()
        };
        assert_eq!(
            CommandMeta::from_record(unknown_role).map(|meta| meta.actor.roles),
            Some(vec![Role::Customer]),
            "a role this build does not know grants nothing"
        );
    }
}
