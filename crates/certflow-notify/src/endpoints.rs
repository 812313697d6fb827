//! The endpoints an account registers: a webhook (an https URL and its signing secrets) or
//! an email address, and the kinds of notification each wants.
//!
//! An account's endpoints are one document in `CERTFLOW_NOTIFY_ENDPOINTS`, changed by
//! reading it, changing it and writing it with the sequence it was read at (again on a
//! conflict). A webhook URL is judged by the address policy when it names an IP address,
//! and at every delivery on the addresses its host resolves to.

use std::net::IpAddr;

use bytes::Bytes;
use certflow_domain::{DomainError, Reason};
use certflow_store::{NotifyStore, StoreError};
use serde::{Deserialize, Serialize};
use url::{Host, Url};

use crate::notices::Kind;
use crate::signature::Secret;

/// Most endpoints one account registers.
pub const MAX_ENDPOINTS: usize = 10;

/// How long a rotated-out secret keeps signing beside the new one.
pub const ROTATION_OVERLAP_MILLIS: i64 = 24 * 3600 * 1000;

/// Where notifications go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    Webhook(String),
    Email(String),
}

/// One endpoint as stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEndpoint {
    pub id: String,
    pub target: Target,
    /// Kinds sent; empty: all.
    pub types: Vec<Kind>,
    pub created_at: i64,
    /// A webhook's current secret, `whsec_…`.
    pub secret: Option<String>,
    /// The secret before the last rotation, and until when it still signs.
    pub previous_secret: Option<(String, i64)>,
    /// The request of the last rotation: a retry of it answers with the secret it made.
    #[serde(default)]
    pub rotated_by: Option<String>,
}

/// Secrets stay out of logs and error messages.
impl std::fmt::Debug for StoredEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredEndpoint")
            .field("id", &self.id)
            .field("target", &self.target)
            .field("types", &self.types)
            .field("created_at", &self.created_at)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl StoredEndpoint {
    /// Whether it wants notifications of `kind`.
    pub fn wants(&self, kind: Kind) -> bool {
        self.types.is_empty() || self.types.contains(&kind)
    }

    /// The secrets that sign a delivery at `now`: the current one, and the previous one
    /// during the rotation overlap.
    pub fn signing_secrets(&self, now: i64) -> Vec<Secret> {
        let mut secrets: Vec<Secret> = self
            .secret
            .as_deref()
            .and_then(Secret::decode)
            .into_iter()
            .collect();
        if let Some((previous, until)) = &self.previous_secret
            && now < *until
            && let Some(previous) = Secret::decode(previous)
        {
            secrets.push(previous);
        }
        secrets
    }
}

/// An account's endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    pub endpoints: Vec<StoredEndpoint>,
}

impl Endpoints {
    pub fn find(&self, id: &str) -> Option<&StoredEndpoint> {
        self.endpoints.iter().find(|endpoint| endpoint.id == id)
    }
}

/// `account`'s endpoints and the sequence they were read at.
pub async fn read(store: &NotifyStore, account: &str) -> Result<(Endpoints, u64), StoreError> {
    let read = store.endpoints(account).await?;
    let endpoints = match read.document {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|err| {
            StoreError::Unavailable(format!("unreadable endpoints of {account}: {err}").into())
        })?,
        None => Endpoints::default(),
    };
    Ok((endpoints, read.sequence))
}

/// Why a change was not made.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Refused(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies `change` to `account`'s endpoints and writes them, reading and applying again
/// when another change came first. `change` returns what to answer, or a refusal.
pub async fn change<T>(
    store: &NotifyStore,
    account: &str,
    mut change: impl FnMut(&mut Endpoints) -> Result<Change<T>, DomainError>,
) -> Result<T, ChangeError> {
    for _ in 0..16 {
        let (mut endpoints, sequence) = read(store, account).await?;
        let (answer, write) = match change(&mut endpoints)? {
            Change::Write(answer) => (answer, true),
            Change::Unchanged(answer) => (answer, false),
        };
        if !write {
            return Ok(answer);
        }
        let document = serde_json::to_vec(&endpoints)
            .map_err(|err| StoreError::Unavailable(err.to_string().into()))?;
        if store
            .write_endpoints(account, Bytes::from(document), sequence)
            .await?
        {
            return Ok(answer);
        }
    }
    Err(StoreError::Unavailable(
        format!("the endpoints of {account} changed under 16 attempts in a row").into(),
    )
    .into())
}

/// What a change did.
#[derive(Debug)]
pub enum Change<T> {
    Write(T),
    Unchanged(T),
}

/// The endpoint id a request makes: the same for a retry of the same request.
pub fn endpoint_id(account: &str, request_id: &str) -> String {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6365_7274_666c_6f77_656e_6470_6f69_6e74);
    let name = format!("{account}\n{request_id}");
    format!(
        "ep_{}",
        uuid::Uuid::new_v5(&NAMESPACE, name.as_bytes()).simple()
    )
}

/// A webhook URL an account may register: `https`, a host, no user or password, no
/// fragment; an IP address only where the address policy (or an operator's allowed
/// network) lets deliveries connect to it. A host name is judged again at every delivery,
/// on the addresses it resolves to.
pub fn check_webhook_url(
    text: &str,
    allowed_networks: &[ipnet::IpNet],
) -> Result<Url, DomainError> {
    let invalid = |why: String| DomainError::invalid(Reason::InvalidArgument, why);
    if text.len() > 2048 {
        return Err(invalid("webhook_url is longer than 2048 characters".into()));
    }
    let url = Url::parse(text).map_err(|err| {
        invalid(format!(
            "webhook_url is not a URL ({err}): give https://<host>/<path>"
        ))
    })?;
    if url.scheme() != "https" {
        return Err(invalid(format!(
            "webhook_url must be https, not {}: notifications carry what to publish to prove \
             ownership",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "webhook_url must not carry a user name or password: the signature authenticates \
             certflow to the receiver"
                .into(),
        ));
    }
    if url.fragment().is_some() {
        return Err(invalid(
            "webhook_url must not have a fragment: leave out the part from #".into(),
        ));
    }
    let ip = match url.host() {
        None => {
            return Err(invalid(
                "webhook_url has no host: give https://<host>/<path>".into(),
            ));
        }
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(Host::Domain(_)) => None,
    };
    if let Some(ip) = ip
        && !allowed_networks.iter().any(|network| network.contains(&ip))
        && let Err(range) = certflow_runtime::address::check(ip)
    {
        return Err(invalid(format!(
            "webhook_url names {ip}, which certflow does not connect to ({range}): give a \
             host name or a public address"
        )));
    }
    Ok(url)
}

/// An email address an account may register: one mailbox, no display name.
pub fn check_email(text: &str) -> Result<lettre::Address, DomainError> {
    let invalid = |why: String| DomainError::invalid(Reason::InvalidArgument, why);
    if text.len() > 254 {
        return Err(invalid("email is longer than 254 characters".into()));
    }
    text.parse::<lettre::Address>().map_err(|err| {
        invalid(format!(
            "email is not an address ({err}): give one mailbox like pki@example.com, \
                 without a display name"
        ))
    })
}

/// The kinds a request names; an unknown value is refused.
pub fn kinds(types: &[i32]) -> Result<Vec<Kind>, DomainError> {
    let mut kinds = Vec::new();
    for &value in types {
        let Some(kind) = Kind::ALL
            .into_iter()
            .find(|&kind| kind_to_proto(kind) as i32 == value)
        else {
            return Err(DomainError::invalid(
                Reason::InvalidArgument,
                format!(
                    "types: {value} is not a notification type; leave types empty for every \
                     type, or name NOTIFICATION_TYPE_CHALLENGES_ISSUED … KEY_BLOCKED (1 to 7)"
                ),
            ));
        };
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

/// `kind` as the API's enum value.
pub fn kind_to_proto(kind: Kind) -> certflow_proto::v1::NotificationType {
    use certflow_proto::v1::NotificationType as T;
    match kind {
        Kind::ChallengesIssued => T::ChallengesIssued,
        Kind::DeadlineApproaching => T::DeadlineApproaching,
        Kind::RevocationCompleted => T::RevocationCompleted,
        Kind::RevocationFailed => T::RevocationFailed,
        Kind::ReviewRejected => T::ReviewRejected,
        Kind::ReissueCompleted => T::ReissueCompleted,
        Kind::KeyBlocked => T::KeyBlocked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> Vec<ipnet::IpNet> {
        vec![
            "127.0.0.0/8".parse().expect("net"),
            "::1/128".parse().expect("net"),
        ]
    }

    #[test]
    fn a_webhook_is_https_to_a_host_without_credentials() {
        assert!(check_webhook_url("https://hooks.example.com/certflow?x=1", &[]).is_ok());
        for (url, why) in [
            ("http://hooks.example.com/", "must be https"),
            ("ftp://hooks.example.com/", "must be https"),
            (
                "https://user:pw@hooks.example.com/",
                "user name or password",
            ),
            ("https://hooks.example.com/#frag", "fragment"),
            ("not a url", "not a URL"),
            ("https://", "not a URL"),
        ] {
            let refused = check_webhook_url(url, &[]).expect_err(url);
            assert_eq!(refused.reason(), Reason::InvalidArgument);
            assert!(refused.to_string().contains(why), "{url}: {refused}");
        }
    }

    #[test]
    fn a_webhook_naming_a_non_public_address_is_refused_unless_the_operator_allows_it() {
        for url in [
            "https://127.0.0.1/hook",
            "https://[::1]/hook",
            "https://10.0.0.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[fe80::1]/hook",
            "https://[::ffff:192.168.0.1]/hook",
            "https://0x7f.1/hook",
            "https://2130706433/hook",
        ] {
            let refused = check_webhook_url(url, &[]).expect_err(url);
            assert!(
                refused.to_string().contains("does not connect to"),
                "{url}: {refused}"
            );
        }
        // The operator's override, as tests and labs use it: loopback only.
        assert!(check_webhook_url("https://127.0.0.1:8443/hook", &loopback()).is_ok());
        assert!(check_webhook_url("https://[::1]:8443/hook", &loopback()).is_ok());
        assert!(check_webhook_url("https://10.0.0.1/hook", &loopback()).is_err());
        assert!(check_webhook_url("https://8.8.8.8/hook", &[]).is_ok());
    }

    #[test]
    fn email_addresses_and_types_are_checked() {
        assert!(check_email("ops@example.com").is_ok());
        assert!(check_email("Ops <ops@example.com>").is_err());
        assert!(check_email("not-an-address").is_err());
        assert_eq!(
            kinds(&[3, 3, 7]).expect("kinds"),
            vec![Kind::RevocationCompleted, Kind::KeyBlocked]
        );
        assert!(kinds(&[0]).is_err());
        assert!(kinds(&[99]).is_err());
        for kind in Kind::ALL {
            assert_eq!(
                kinds(&[kind_to_proto(kind) as i32]).expect("kind"),
                vec![kind]
            );
        }
    }

    #[test]
    fn a_retried_request_names_the_same_endpoint_and_a_rotated_secret_signs_for_a_day() {
        assert_eq!(endpoint_id("acme", "r1"), endpoint_id("acme", "r1"));
        assert_ne!(endpoint_id("acme", "r1"), endpoint_id("other", "r1"));
        let current = Secret::generate().expect("random");
        let previous = Secret::generate().expect("random");
        let endpoint = StoredEndpoint {
            id: "ep_1".into(),
            target: Target::Webhook("https://hooks.example.com/".into()),
            types: vec![Kind::KeyBlocked],
            created_at: 0,
            secret: Some(current.encode()),
            previous_secret: Some((previous.encode(), 1000)),
            rotated_by: None,
        };
        assert!(!format!("{endpoint:?}").contains("whsec_"));
        assert_eq!(
            endpoint.signing_secrets(999),
            vec![current.clone(), previous]
        );
        assert_eq!(endpoint.signing_secrets(1000), vec![current]);
        assert!(endpoint.wants(Kind::KeyBlocked));
        assert!(!endpoint.wants(Kind::RevocationCompleted));
    }
}
