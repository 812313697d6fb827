//! The certificate's lifecycle, one module per feature of `docs/rules.md`. Each feature module
//! decides its commands and evolves the state by its events; this module routes a command
//! to its decision ([`decide`]) and an event to its feature ([`evolve`]).
//!
//! Feature modules depend on the state, the context and the policy, not on each other.

mod deletion;
mod issue;
pub mod reissue;
mod renewal;
pub mod review;
pub(crate) mod revocation;
mod validation;

use crate::command::{Command, CommandId};
use crate::context::Context;
use crate::error::DomainError;
use crate::event::Event;
use crate::state::{Certificate, State};

/// What `command` means on `state`: the events to append, or the refusal.
///
/// A command whose id the state has already applied yields no events (GEN-1): the caller
/// answers with the current state and appends nothing.
pub fn decide(
    state: &State,
    command: &Command,
    ctx: &Context<'_>,
) -> Result<Vec<Event>, DomainError> {
    if let Some(cert) = state
        && cert.applied_commands.contains(ctx.command_id)
    {
        return Ok(Vec::new());
    }
    // GEN-3, DEL-2: a command on a certificate finds it only if the caller may see it.
    let visible = |id| crate::context::visible(state, id, ctx.actor);
    match command {
        Command::Issue(cmd) => issue::decide_issue(state, cmd, ctx),
        Command::RecordLegacy(cmd) => issue::decide_record_legacy(state, cmd, ctx),
        Command::Upload(cmd) => issue::decide_upload(state, cmd, ctx),
        Command::RequestRevocation(cmd) => {
            revocation::decide_revocation(visible(&cmd.id)?, cmd, ctx)
        }
        // The proof of the key stands in for the account (REV-16).
        Command::RevokeByKeyProof(cmd) => revocation::decide_key_proof(state, cmd, ctx),
        Command::Delete(cmd) => deletion::decide_delete(visible(&cmd.id)?, ctx),
        Command::OrderRenewal(cmd) => renewal::decide_renewal(visible(&cmd.id)?, ctx),
        Command::UploadRevocationDocument(cmd) => {
            review::decide_upload_document(visible(&cmd.id)?, cmd, ctx)
        }
        Command::DecideReview(cmd) => review::decide_review(state, cmd, ctx),
        Command::RequestReissue(cmd) => reissue::decide_reissue(visible(&cmd.id)?, cmd, ctx),
    }
}

/// The state after `event`.
pub fn evolve(state: State, event: &Event) -> State {
    let feature: fn(&mut Certificate, &Event) = match event {
        Event::Issued(_) | Event::Uploaded(_) => return issue::evolve_issue(state, event),
        Event::RevocationRequested(_) | Event::Revoked(_) | Event::RevocationFailed(_) => {
            revocation::evolve_revocation
        }
        Event::ValidationChallengesIssued(_)
        | Event::DomainValidated(_)
        | Event::ValidationPassed(_)
        | Event::ValidationExpired(_) => validation::evolve_validation,
        Event::RevocationDocumentUploaded(_)
        | Event::ReviewQueued(_)
        | Event::ReviewApproved(_)
        | Event::ReviewPassed(_)
        | Event::ReviewRejected(_) => review::evolve_review,
        Event::ReissueRequested(_) | Event::ReissueCompleted(_) | Event::ReissueFailed(_) => {
            reissue::evolve_reissue
        }
        Event::RenewalOrdered(_) => renewal::evolve_renewal,
        Event::Deleted(_) => deletion::evolve_deletion,
    };
    // Every other event changes a certificate that exists, and one that does not fit the
    // state changes nothing: the log is the authority, and decide never emits such a pair.
    let mut cert = state?;
    feature(&mut cert, event);
    Some(cert)
}

/// The state after one appended batch: its events, and its command marked as applied.
pub fn replay(state: State, command_id: &CommandId, events: &[Event]) -> State {
    let mut state = events.iter().fold(state, evolve);
    if let Some(cert) = &mut state {
        cert.applied_commands.insert(command_id.clone());
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use crate::testing::{admin, issue, now, revoke, state_after};

    #[test]
    fn gen1_a_retried_command_appends_nothing() {
        let command_id = CommandId("rev-1".into());
        let ctx = Context {
            now: now(),
            command_id: &command_id,
            actor: &admin(),
            policy: &Policy::default(),
        };
        let state = state_after(&[Command::Issue(issue())]);
        let first = decide(&state, &revoke(1), &ctx).expect("accepted");
        let state = replay(state, &command_id, &first);
        let retry = decide(&state, &revoke(1), &ctx).expect("a retry is not refused");
        assert!(retry.is_empty(), "a retry appends nothing");
    }
}
