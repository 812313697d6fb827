//! The requests the gateway forwards: an account's endpoints and dead letters. The account
//! is always the caller's own, from the token the gateway checked.

use bytes::Bytes;
use certflow_bus::{Request, actor_from_headers, decode_request, refused, response, unavailable};
use certflow_domain::{DomainError, Reason};
use certflow_proto::bus::v1::Reply;
use certflow_proto::convert::api::timestamp_to_proto;
use certflow_proto::v1::{
    CreateEndpointRequest, CreateEndpointResponse, DeadLetter, DeleteEndpointRequest,
    DeleteEndpointResponse, Endpoint, ListDeadLettersRequest, ListDeadLettersResponse,
    ListEndpointsRequest, ListEndpointsResponse, ReplayDeadLetterRequest, ReplayDeadLetterResponse,
    RotateEndpointSecretRequest, RotateEndpointSecretResponse, create_endpoint_request, endpoint,
};
use prost::Message;

use crate::NotifierService;
use crate::deliver::{self, DeadRecord, Delivery, Task, at};
use crate::endpoints::{
    self, Change, ChangeError, MAX_ENDPOINTS, ROTATION_OVERLAP_MILLIS, StoredEndpoint, Target,
};
use crate::signature::Secret;

/// Most dead letters one listing shows.
const MAX_LISTED: usize = 1000;

/// The caller's account and the decoded request, or the reply that refuses it.
fn admit<M: Message + Default>(request: &Request) -> Result<(String, M), Reply> {
    let account =
        certflow_domain::account_key(&actor_from_headers(request.headers.as_ref()).account);
    if account.is_empty() {
        return Err(refused(&DomainError::invalid(
            Reason::InvalidArgument,
            "the caller acts for no account: call with a token that names the account to notify",
        )));
    }
    let message = decode_request(request).map_err(|err| refused(&err))?;
    Ok((account, message))
}

fn answer<T: Message>(outcome: Result<T, ChangeError>) -> Reply {
    match outcome {
        Ok(message) => response(&message),
        Err(ChangeError::Refused(err)) => refused(&err),
        Err(ChangeError::Store(err)) => unavailable(err.to_string()),
    }
}

pub(crate) async fn create_endpoint(service: &NotifierService, request: Request) -> Reply {
    let (account, create) = match admit::<CreateEndpointRequest>(&request) {
        Ok(admitted) => admitted,
        Err(reply) => return reply,
    };
    let secret = match Secret::generate() {
        Ok(secret) => secret,
        Err(err) => return unavailable(format!("no random source for a secret: {err}")),
    };
    let prepared = prepare_endpoint(service, &account, &create, &secret);
    let endpoint = match prepared {
        Ok(endpoint) => endpoint,
        Err(err) => return refused(&err),
    };
    let outcome = endpoints::change(&service.notify, &account, |list| {
        if let Some(existing) = list.find(&endpoint.id) {
            if existing.target != endpoint.target || existing.types != endpoint.types {
                return Err(DomainError::invalid(
                    Reason::RequestIdReused,
                    "request_id was used for another endpoint; use a new one",
                ));
            }
            return Ok(Change::Unchanged(created(existing)));
        }
        if list.endpoints.len() >= MAX_ENDPOINTS {
            return Err(DomainError::invalid(
                Reason::InvalidArgument,
                format!("an account registers at most {MAX_ENDPOINTS} endpoints; delete one first"),
            ));
        }
        list.endpoints.push(endpoint.clone());
        Ok(Change::Write(created(&endpoint)))
    })
    .await;
    answer(outcome)
}

/// The endpoint a create request asks for, checked.
fn prepare_endpoint(
    service: &NotifierService,
    account: &str,
    create: &CreateEndpointRequest,
    secret: &Secret,
) -> Result<StoredEndpoint, DomainError> {
    let request_id = create.request_id.trim();
    if request_id.is_empty() || request_id.len() > 128 {
        return Err(DomainError::invalid(
            Reason::InvalidArgument,
            "request_id is required: 1 to 128 characters, e.g. a UUID",
        ));
    }
    let types = endpoints::kinds(&create.types)?;
    let (target, secret) = match &create.target {
        Some(create_endpoint_request::Target::WebhookUrl(url)) => {
            let url = endpoints::check_webhook_url(url, &service.config.allowed_networks)?;
            (Target::Webhook(url.to_string()), Some(secret.encode()))
        }
        Some(create_endpoint_request::Target::Email(address)) => {
            if service.config.smtp_url.is_none() {
                return Err(DomainError::invalid(
                    Reason::InvalidArgument,
                    "this deployment sends no email: register a webhook",
                ));
            }
            let address = endpoints::check_email(address)?;
            (Target::Email(address.to_string()), None)
        }
        None => {
            return Err(DomainError::invalid(
                Reason::InvalidArgument,
                "give webhook_url or email",
            ));
        }
    };
    Ok(StoredEndpoint {
        id: endpoints::endpoint_id(account, request_id),
        target,
        types,
        created_at: certflow_runtime::now().unix_millis(),
        secret,
        previous_secret: None,
        rotated_by: None,
    })
}

fn created(endpoint: &StoredEndpoint) -> CreateEndpointResponse {
    CreateEndpointResponse {
        endpoint: Some(to_proto(endpoint)),
        signing_secret: endpoint.secret.clone().unwrap_or_default(),
    }
}

fn to_proto(stored: &StoredEndpoint) -> Endpoint {
    Endpoint {
        endpoint_id: stored.id.clone(),
        target: Some(match &stored.target {
            Target::Webhook(url) => endpoint::Target::WebhookUrl(url.clone()),
            Target::Email(address) => endpoint::Target::Email(address.clone()),
        }),
        types: stored
            .types
            .iter()
            .map(|&kind| endpoints::kind_to_proto(kind) as i32)
            .collect(),
        created_at: Some(timestamp_to_proto(at(stored.created_at))),
        previous_secret_until: stored
            .previous_secret
            .as_ref()
            .map(|(_, until)| timestamp_to_proto(at(*until))),
    }
}

pub(crate) async fn list_endpoints(service: &NotifierService, request: Request) -> Reply {
    let (account, _) = match admit::<ListEndpointsRequest>(&request) {
        Ok(admitted) => admitted,
        Err(reply) => return reply,
    };
    match endpoints::read(&service.notify, &account).await {
        Ok((list, _)) => response(&ListEndpointsResponse {
            endpoints: list.endpoints.iter().map(to_proto).collect(),
        }),
        Err(err) => unavailable(err.to_string()),
    }
}

fn no_endpoint(id: &str) -> DomainError {
    DomainError::not_found_named(format!(
        "no endpoint {id} in this account: ListEndpoints (certctl notify list) shows its endpoints"
    ))
}

pub(crate) async fn rotate_secret(service: &NotifierService, request: Request) -> Reply {
    let (account, rotate) = match admit::<RotateEndpointSecretRequest>(&request) {
        Ok(admitted) => admitted,
        Err(reply) => return reply,
    };
    let secret = match Secret::generate() {
        Ok(secret) => secret.encode(),
        Err(err) => return unavailable(format!("no random source for a secret: {err}")),
    };
    let outcome = endpoints::change(&service.notify, &account, |list| {
        let now = certflow_runtime::now().unix_millis();
        let Some(endpoint) = list
            .endpoints
            .iter_mut()
            .find(|endpoint| endpoint.id == rotate.endpoint_id)
        else {
            return Err(no_endpoint(&rotate.endpoint_id));
        };
        let request_id = rotate.request_id.trim();
        if !request_id.is_empty() && endpoint.rotated_by.as_deref() == Some(request_id) {
            return Ok(Change::Unchanged(RotateEndpointSecretResponse {
                endpoint: Some(to_proto(endpoint)),
                signing_secret: endpoint.secret.clone().unwrap_or_default(),
            }));
        }
        let Some(current) = endpoint.secret.replace(secret.clone()) else {
            return Err(DomainError::invalid(
                Reason::InvalidArgument,
                "an email endpoint has no signing secret: only webhooks are rotated",
            ));
        };
        endpoint.previous_secret = Some((current, now + ROTATION_OVERLAP_MILLIS));
        endpoint.rotated_by = (!request_id.is_empty()).then(|| request_id.to_string());
        Ok(Change::Write(RotateEndpointSecretResponse {
            endpoint: Some(to_proto(endpoint)),
            signing_secret: secret.clone(),
        }))
    })
    .await;
    answer(outcome)
}

pub(crate) async fn delete_endpoint(service: &NotifierService, request: Request) -> Reply {
    let (account, delete) = match admit::<DeleteEndpointRequest>(&request) {
        Ok(admitted) => admitted,
        Err(reply) => return reply,
    };
    let outcome = endpoints::change(&service.notify, &account, |list| {
        let before = list.endpoints.len();
        list.endpoints
            .retain(|endpoint| endpoint.id != delete.endpoint_id);
        if list.endpoints.len() == before {
            // Deleting twice is done once: a retry after a lost reply succeeds.
            return Ok(Change::Unchanged(DeleteEndpointResponse {}));
        }
        Ok(Change::Write(DeleteEndpointResponse {}))
    })
    .await;
    answer(outcome)
}

pub(crate) async fn list_dead_letters(service: &NotifierService, request: Request) -> Reply {
    let (account, _) = match admit::<ListDeadLettersRequest>(&request) {
        Ok(admitted) => admitted,
        Err(reply) => return reply,
    };
    let records = match service.notify.dead_letters(&account, MAX_LISTED).await {
        Ok(records) => records,
        Err(err) => return unavailable(err.to_string()),
    };
    let dead_letters = records
        .iter()
        .filter_map(|bytes| serde_json::from_slice::<DeadRecord>(bytes).ok())
        .map(|record| dead_to_proto(&record))
        .collect();
    response(&ListDeadLettersResponse { dead_letters })
}

fn dead_to_proto(record: &DeadRecord) -> DeadLetter {
    let delivery = &record.delivery;
    DeadLetter {
        dead_letter_id: format!("{}/{}", delivery.notice.id, delivery.endpoint_id),
        notification_id: delivery.notice.id.clone(),
        endpoint_id: delivery.endpoint_id.clone(),
        r#type: endpoints::kind_to_proto(delivery.notice.kind) as i32,
        certificate_id: delivery.notice.certificate_id.clone(),
        first_attempt_at: Some(timestamp_to_proto(at(delivery.queued_at))),
        last_attempt_at: Some(timestamp_to_proto(at(record.last_attempt_at))),
        attempts: u32::try_from(record.attempts).unwrap_or(u32::MAX),
        last_error: record.last_error.clone(),
        replayed_at: record.replayed_at.map(|t| timestamp_to_proto(at(t))),
    }
}

/// Queues the dead letter's delivery again (same notification id, a fresh schedule) and
/// marks it replayed. Replaying a replayed letter answers it as it is.
pub(crate) async fn replay_dead_letter(service: &NotifierService, request: Request) -> Reply {
    let (account, replay) = match admit::<ReplayDeadLetterRequest>(&request) {
        Ok(admitted) => admitted,
        Err(reply) => return reply,
    };
    let not_found = || {
        refused(&DomainError::not_found_named(format!(
            "no dead letter {} in this account: ListDeadLetters (certctl notify dead-letters) shows its dead letters",
            replay.dead_letter_id
        )))
    };
    let token = |part: &str| {
        !part.is_empty()
            && part.len() <= 64
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let Some((notification, endpoint)) = replay
        .dead_letter_id
        .split_once('/')
        .filter(|(notification, endpoint)| token(notification) && token(endpoint))
    else {
        return refused(&DomainError::invalid(
            Reason::InvalidArgument,
            "dead_letter_id is <notification id>/<endpoint id>, as ListDeadLetters shows it",
        ));
    };
    let key = format!("{notification}.{endpoint}");
    match endpoints::read(&service.notify, &account).await {
        Ok((list, _)) if list.find(endpoint).is_none() => {
            return refused(&DomainError::not_found_named(format!(
                "the endpoint {endpoint} was removed: register it again (CreateEndpoint), and the next notifications reach it"
            )));
        }
        Ok(_) => {}
        Err(err) => return unavailable(err.to_string()),
    }
    let mut record = match service.notify.dead(&account, &key).await {
        Ok(Some(bytes)) => match serde_json::from_slice::<DeadRecord>(&bytes) {
            Ok(record) => record,
            Err(err) => return unavailable(format!("unreadable dead letter: {err}")),
        },
        Ok(None) => return not_found(),
        Err(err) => return unavailable(err.to_string()),
    };
    if record.replayed_at.is_none() {
        let now = certflow_runtime::now().unix_millis();
        let delivery = Delivery {
            queued_at: now,
            replays: record.delivery.replays + 1,
            ..record.delivery.clone()
        };
        if let Err(err) = deliver::enqueue(service, &account, &Task::Deliver(delivery)).await {
            return unavailable(err.to_string());
        }
        record.replayed_at = Some(now);
        let bytes = match serde_json::to_vec(&record) {
            Ok(bytes) => bytes,
            Err(err) => return unavailable(err.to_string()),
        };
        if let Err(err) = service
            .notify
            .write_dead(&account, &key, Bytes::from(bytes))
            .await
        {
            return unavailable(err.to_string());
        }
    }
    response(&ReplayDeadLetterResponse {
        dead_letter: Some(dead_to_proto(&record)),
    })
}
