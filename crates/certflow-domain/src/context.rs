//! Who asks, when, and under which policy: the [`Context`] every decision is made in, and
//! what its [`Actor`] may see and act on (GEN-3). Absent, deleted and other accounts'
//! certificates all look the same to a caller: not found.

use serde::{Deserialize, Serialize};

use crate::command::CommandId;
use crate::error::{DomainError, Reason, Rule};
use crate::policy::Policy;
use crate::state::{Certificate, State};
use crate::time::Timestamp;
use crate::values::CertificateId;

/// What a decision may depend on besides state and command.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The time the command is decided at; the domain never reads a clock.
    pub now: Timestamp,
    /// The command's id, so a retry is recognised (GEN-1).
    pub command_id: &'a CommandId,
    /// Who asks (GEN-3).
    pub actor: &'a Actor,
    /// The durations and dates the rules use.
    pub policy: &'a Policy,
}

/// The roles a caller can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Customer,
    Reviewer,
    Admin,
}

/// Who issues a command: recorded on every event (GEN-4) and checked for access (GEN-3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The token's subject: the person or service acting.
    pub subject: String,
    /// The account they act for.
    pub account: String,
    /// What they may do.
    pub roles: Vec<Role>,
}

impl Actor {
    /// GEN-3: admins see every account; everyone else sees their own account only.
    pub fn may_access(&self, account: &str) -> bool {
        self.roles.contains(&Role::Admin) || crate::same_account(&self.account, account)
    }
}

/// The certificate as `actor` may see it: absent, deleted and foreign ones are all
/// `NOT_FOUND`, so nobody learns that another account's certificate exists (GEN-3, DEL-2).
pub(crate) fn visible<'s>(
    state: &'s State,
    id: &CertificateId,
    actor: &Actor,
) -> Result<&'s Certificate, DomainError> {
    match state {
        Some(cert) if !cert.deleted && actor.may_access(&cert.account) => Ok(cert),
        _ => Err(DomainError::not_found(id)),
    }
}

/// GEN-3: the account a new certificate belongs to. Customers act for the account their
/// token names (the request may repeat it, nothing else); admins name the account.
pub fn owner_account(actor: &Actor, requested: &str) -> Result<String, DomainError> {
    crate::text::key_text("account", requested)?;
    if actor.roles.contains(&Role::Admin) {
        return checked_account(requested);
    }
    let requested = requested.trim();
    if requested.is_empty() || crate::same_account(requested, &actor.account) {
        checked_account(&actor.account)
    } else {
        Err(DomainError::permission_denied(
            Rule::Gen3,
            Reason::AccountMismatch,
            format!(
                "you act for account {} only; leave account empty or set it to yours",
                actor.account
            ),
        ))
    }
}

/// An account a command names, as certflow records it ([`crate::account_key`]).
fn checked_account(account: &str) -> Result<String, DomainError> {
    let account = crate::account_key(account);
    if account.is_empty() || account.len() > 128 {
        return Err(DomainError::invalid(
            Reason::InvalidArgument,
            "account is required and at most 128 characters",
        ));
    }
    crate::text::key_text("account", &account)?;
    Ok(account)
}
