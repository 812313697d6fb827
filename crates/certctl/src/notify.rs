//! `certctl notify …`: the endpoints an account is notified at, and its dead letters.

use anyhow::{Result, bail};
use certflow_proto::v1::{
    CreateEndpointRequest, DeadLetter, DeleteEndpointRequest, Endpoint, ListDeadLettersRequest,
    ListEndpointsRequest, NotificationType, ReplayDeadLetterRequest, RotateEndpointSecretRequest,
    create_endpoint_request, endpoint,
};
use serde_json::{Value, json};

use crate::cli::{NotificationKind, NotifyCommand};
use crate::commands::{NotificationClient, print_json, request_id};
use crate::retry::patiently;

/// Runs a `notify` subcommand.
pub async fn notify(client: NotificationClient, command: NotifyCommand, json: bool) -> Result<()> {
    match command {
        NotifyCommand::Add {
            webhook,
            email,
            types,
            request_id: given,
        } => {
            let target = match (webhook, email) {
                (Some(url), None) => create_endpoint_request::Target::WebhookUrl(url),
                (None, Some(address)) => create_endpoint_request::Target::Email(address),
                _ => bail!("give --webhook or --email"),
            };
            let request = CreateEndpointRequest {
                request_id: request_id(given.as_deref()),
                target: Some(target),
                types: types
                    .iter()
                    .map(|&kind| kind_to_proto(kind) as i32)
                    .collect(),
            };
            let created = patiently(client, request, |mut client, request| async move {
                client.create_endpoint(request).await
            })
            .await?
            .into_inner();
            let endpoint = created.endpoint.unwrap_or_default();
            if json {
                let mut value = endpoint_json(&endpoint);
                value["signing_secret"] = json!(created.signing_secret);
                return print_json(&value);
            }
            println!("{}", endpoint_line(&endpoint));
            if !created.signing_secret.is_empty() {
                println!("signing secret: {}", created.signing_secret);
                eprintln!("keep the secret: it is shown this once (rotate-secret makes a new one)");
            }
            Ok(())
        }
        NotifyCommand::List => {
            let listed = patiently(
                client,
                ListEndpointsRequest {},
                |mut client, request| async move { client.list_endpoints(request).await },
            )
            .await?
            .into_inner();
            if json {
                return print_json(&Value::Array(
                    listed.endpoints.iter().map(endpoint_json).collect(),
                ));
            }
            for endpoint in &listed.endpoints {
                println!("{}", endpoint_line(endpoint));
            }
            Ok(())
        }
        NotifyCommand::RotateSecret {
            id,
            request_id: given,
        } => {
            let rotated = patiently(
                client,
                RotateEndpointSecretRequest {
                    endpoint_id: id,
                    request_id: request_id(given.as_deref()),
                },
                |mut client, request| async move { client.rotate_endpoint_secret(request).await },
            )
            .await?
            .into_inner();
            if json {
                return print_json(&json!({
                    "endpoint": endpoint_json(&rotated.endpoint.unwrap_or_default()),
                    "signing_secret": rotated.signing_secret,
                }));
            }
            println!("signing secret: {}", rotated.signing_secret);
            eprintln!("the previous secret keeps signing beside it for 24 hours");
            Ok(())
        }
        NotifyCommand::Remove { id } => {
            patiently(
                client,
                DeleteEndpointRequest { endpoint_id: id },
                |mut client, request| async move { client.delete_endpoint(request).await },
            )
            .await?;
            Ok(())
        }
        NotifyCommand::DeadLetters => {
            let listed = patiently(
                client,
                ListDeadLettersRequest {},
                |mut client, request| async move { client.list_dead_letters(request).await },
            )
            .await?
            .into_inner();
            if json {
                return print_json(&Value::Array(
                    listed.dead_letters.iter().map(dead_letter_json).collect(),
                ));
            }
            for dead in &listed.dead_letters {
                println!(
                    "{}  {}  {}  {} attempts  {}{}",
                    dead.dead_letter_id,
                    type_name(dead.r#type),
                    dead.certificate_id,
                    dead.attempts,
                    dead.last_error,
                    if dead.replayed_at.is_some() {
                        "  (replayed)"
                    } else {
                        ""
                    }
                );
            }
            Ok(())
        }
        NotifyCommand::Replay { id } => {
            let replayed = patiently(
                client,
                ReplayDeadLetterRequest { dead_letter_id: id },
                |mut client, request| async move { client.replay_dead_letter(request).await },
            )
            .await?
            .into_inner();
            let dead = replayed.dead_letter.unwrap_or_default();
            if json {
                return print_json(&dead_letter_json(&dead));
            }
            println!("queued again: {}", dead.notification_id);
            Ok(())
        }
    }
}

fn kind_to_proto(kind: NotificationKind) -> NotificationType {
    match kind {
        NotificationKind::ChallengesIssued => NotificationType::ChallengesIssued,
        NotificationKind::DeadlineApproaching => NotificationType::DeadlineApproaching,
        NotificationKind::RevocationCompleted => NotificationType::RevocationCompleted,
        NotificationKind::RevocationFailed => NotificationType::RevocationFailed,
        NotificationKind::ReviewRejected => NotificationType::ReviewRejected,
        NotificationKind::ReissueCompleted => NotificationType::ReissueCompleted,
        NotificationKind::KeyBlocked => NotificationType::KeyBlocked,
    }
}

/// `revocation-completed` for the API's `NOTIFICATION_TYPE_REVOCATION_COMPLETED`.
fn type_name(value: i32) -> String {
    NotificationType::try_from(value)
        .map(|kind| {
            kind.as_str_name()
                .trim_start_matches("NOTIFICATION_TYPE_")
                .to_ascii_lowercase()
                .replace('_', "-")
        })
        .unwrap_or_else(|_| value.to_string())
}

fn target(endpoint: &Endpoint) -> (&'static str, String) {
    match &endpoint.target {
        Some(endpoint::Target::WebhookUrl(url)) => ("webhook", url.clone()),
        Some(endpoint::Target::Email(address)) => ("email", address.clone()),
        None => ("", String::new()),
    }
}

fn endpoint_line(endpoint: &Endpoint) -> String {
    let (kind, target) = target(endpoint);
    let types = if endpoint.types.is_empty() {
        "all".to_string()
    } else {
        endpoint
            .types
            .iter()
            .map(|&t| type_name(t))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!("{}  {kind}  {target}  {types}", endpoint.endpoint_id)
}

fn endpoint_json(endpoint: &Endpoint) -> Value {
    let (kind, target) = target(endpoint);
    json!({
        "endpoint_id": endpoint.endpoint_id,
        "kind": kind,
        "target": target,
        "types": endpoint.types.iter().map(|&t| type_name(t)).collect::<Vec<_>>(),
    })
}

fn dead_letter_json(dead: &DeadLetter) -> Value {
    json!({
        "dead_letter_id": dead.dead_letter_id,
        "notification_id": dead.notification_id,
        "endpoint_id": dead.endpoint_id,
        "type": type_name(dead.r#type),
        "certificate_id": dead.certificate_id,
        "attempts": dead.attempts,
        "last_error": dead.last_error,
        "replayed": dead.replayed_at.is_some(),
    })
}
