//! Answers to the gateway's queries, from sled.

use certflow_bus::{
    Request, actor_from_headers, decode_request, refused, response, subjects, unavailable,
};
use certflow_domain::{Actor, CertificateId, DomainError, Reason, Role, Status, owner_account};
use certflow_proto::bus::v1::Reply;
use certflow_proto::convert::{certificate_to_proto, status_from_proto};
use certflow_proto::v1::{
    GetCertificateHistoryRequest, GetCertificateHistoryResponse, GetCertificateRequest,
    GetCertificateResponse, ListCertificatesRequest, ListCertificatesResponse,
};
use prost::Message;
use tracing::warn;

use certflow_store::EventStore;

use crate::Progress;
use crate::view::{ProjectionDb, Record, ViewError};

/// Page size when the request gives none.
const DEFAULT_PAGE: usize = 50;
/// Largest page served; larger requests are served this many.
const MAX_PAGE: usize = 500;
/// Most bytes of certificates in one page: well under NATS's default 1 MiB message limit,
/// with room for the reply around them.
const PAGE_BYTES: usize = 768 * 1024;

/// How long a query waits for the projection to apply what the log held when it came in.
const READ_YOUR_WRITES: std::time::Duration = std::time::Duration::from_secs(2);

/// What the queries read: the database, and the log and the projection's position they
/// wait on.
pub(crate) struct Queries<'a> {
    pub(crate) db: &'a ProjectionDb,
    pub(crate) store: &'a EventStore,
    pub(crate) progress: &'a Progress,
}

impl Queries<'_> {
    /// Waits, a moment at most, until the projection has applied certificate `id`'s last
    /// message in the log, so a query about it sees every command acknowledged before it
    /// was asked (a certificate just issued, a revocation just accepted); the projection
    /// otherwise follows the log a moment behind.
    async fn caught_up_with(&self, id: &CertificateId) {
        self.wait_for(self.store.last_sequence_of(id).await).await;
    }

    /// Waits, a moment at most, until the projection has applied the whole log as it stands
    /// now, so a list shows every certificate acknowledged before it was asked. Only a
    /// list's first page waits: later pages continue a list already begun, and a paging
    /// client under load would otherwise wait on every page for writes not its own.
    async fn caught_up_with_log(&self) {
        self.wait_for(self.store.last_sequence().await).await;
    }

    async fn wait_for(&self, last: Result<u64, certflow_store::StoreError>) {
        match last {
            Ok(last) if last > self.progress.applied_sequence() => {
                if !self.progress.wait_applied(last, READ_YOUR_WRITES).await {
                    warn!(
                        last,
                        "the projection is behind the log; answering with what it has"
                    );
                }
            }
            Ok(_) => {}
            Err(err) => {
                warn!(error = %err, "could not read the log's last sequence");
            }
        }
    }

    /// The record if `actor` may see it, once the projection has caught up with it: absent,
    /// deleted and foreign ones are all `NOT_FOUND` (GEN-3, DEL-2).
    async fn visible(&self, actor: &Actor, id: &str) -> Result<Record, QueryError> {
        let id = CertificateId::parse(id)?;
        self.caught_up_with(&id).await;
        match self.db.get(&id)? {
            Some(record)
                if !record.certificate.deleted && actor.may_access(&record.certificate.account) =>
            {
                Ok(record)
            }
            _ => Err(DomainError::not_found(&id).into()),
        }
    }
}

/// Answers one query.
pub(crate) async fn answer(queries: Queries<'_>, request: Request) -> Reply {
    let actor = actor_from_headers(request.headers.as_ref());
    let result = match request.subject.as_str() {
        subjects::PROJECTION_STATUS => Ok(response(&queries.progress.status())),
        subjects::GET_CERTIFICATE => match decode(&request) {
            Ok(req) => get(&queries, &actor, req).await,
            Err(err) => Err(err),
        },
        subjects::LIST_CERTIFICATES => match decode::<ListCertificatesRequest>(&request) {
            Ok(req) => {
                if req.page_token.is_empty() {
                    queries.caught_up_with_log().await;
                }
                list(queries.db, &actor, req)
            }
            Err(err) => Err(err),
        },
        subjects::CERTIFICATE_HISTORY => match decode(&request) {
            Ok(req) => history(&queries, &actor, req).await,
            Err(err) => Err(err),
        },
        other => return unavailable(format!("the projection has no query {other}")),
    };
    match result {
        Ok(reply) => reply,
        Err(QueryError::Refused(err)) => refused(&err),
        Err(QueryError::View(err)) => {
            warn!(error = %err, "projection read failed");
            unavailable("the projection could not be read; try again")
        }
    }
}

enum QueryError {
    Refused(DomainError),
    View(ViewError),
}

impl From<DomainError> for QueryError {
    fn from(err: DomainError) -> Self {
        QueryError::Refused(err)
    }
}

impl From<ViewError> for QueryError {
    fn from(err: ViewError) -> Self {
        QueryError::View(err)
    }
}

fn decode<M: prost::Message + Default>(request: &Request) -> Result<M, QueryError> {
    Ok(decode_request(request)?)
}

async fn get(
    queries: &Queries<'_>,
    actor: &Actor,
    req: GetCertificateRequest,
) -> Result<Reply, QueryError> {
    let record = queries.visible(actor, &req.id).await?;
    Ok(response(&GetCertificateResponse {
        certificate: Some(certificate_to_proto(
            &record.certificate,
            certflow_runtime::now(),
        )),
    }))
}

fn list(
    db: &ProjectionDb,
    actor: &Actor,
    req: ListCertificatesRequest,
) -> Result<Reply, QueryError> {
    let status = status_from_proto(req.status)?;
    let page_size = match req.page_size as usize {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    };
    let after = if req.page_token.is_empty() {
        None
    } else {
        Some(CertificateId::parse(&req.page_token).map_err(|_| {
            DomainError::invalid(
                Reason::InvalidArgument,
                "page_token is not one this service gave out; start again without it",
            )
        })?)
    };
    let account = if actor.roles.contains(&Role::Admin) {
        (!req.account.is_empty()).then(|| req.account.clone())
    } else {
        Some(owner_account(actor, &req.account)?)
    };
    let now = certflow_runtime::now();
    let mut certificates = Vec::with_capacity(page_size);
    let mut next_page_token = String::new();
    let mut bytes = 0;
    // One account's list reads that account's certificates only (the account index).
    let records: Box<dyn Iterator<Item = Result<Record, ViewError>>> = match &account {
        Some(account) => Box::new(db.scan_account_after(account, after.as_ref())),
        None => Box::new(db.scan_after(after.as_ref())),
    };
    for record in records {
        let cert = record?.certificate;
        let cert_status = cert.status(now);
        if cert_status == Status::Deleted || status.is_some_and(|s| s != cert_status) {
            continue;
        }
        let proto = certificate_to_proto(&cert, now);
        let size = proto.encoded_len();
        // A page is at most `page_size` certificates and at most PAGE_BYTES, so its reply
        // always fits in one NATS message; the token says where the next page starts.
        if certificates.len() == page_size
            || (bytes + size > PAGE_BYTES && !certificates.is_empty())
        {
            next_page_token = certificates
                .last()
                .map(|c: &certflow_proto::v1::Certificate| c.id.clone())
                .unwrap_or_default();
            break;
        }
        bytes += size;
        certificates.push(proto);
    }
    Ok(response(&ListCertificatesResponse {
        certificates,
        next_page_token,
    }))
}

async fn history(
    queries: &Queries<'_>,
    actor: &Actor,
    req: GetCertificateHistoryRequest,
) -> Result<Reply, QueryError> {
    let record = queries.visible(actor, &req.id).await?;
    let events = queries.db.history(&record.certificate.id)?;
    Ok(response(&GetCertificateHistoryResponse { events }))
}
