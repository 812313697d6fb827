//! CRLs over plain HTTP at the distribution point URLs written into certificates, as
//! relying parties, CDNs and CRL aggregators fetch them (RFC 5280, BR 7.2, CA-4):
//!
//! - `GET /crl/<issuer>/<shard>.crl`: one shard of an issuer's partitioned CRL, in DER;
//! - `GET /crl/<issuer>.crl`: the issuer's original CRL, named by certificates signed before
//!   partitioning;
//! - `GET /crl/<issuer>.json`: the URLs of all of the issuer's CRLs, the JSON array CCADB
//!   asks of a CA with partitioned CRLs.
//!
//! A CRL answers with `Content-Type: application/pkix-crl`, an `ETag` and `Last-Modified`
//! (its `thisUpdate`), and a `Cache-Control` lifetime that never runs past its `nextUpdate`;
//! a conditional request for the CRL the client holds is answered `304`, and `HEAD` as
//! `GET` without the body. No credentials are asked for. Any gateway answers: the CRLs come
//! from the CRL store through the issuance service.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use certflow_bus::{BusClient, CancellationToken, Outcome, Refusal, ServiceReason, subjects};
use certflow_ca::{CrlPartition, IssuerId, Shard};
use certflow_proto::v1::{GetCrlRequest, GetCrlResponse, ListCrlsRequest, ListCrlsResponse};
use headers::{CacheControl, ETag, HeaderMapExt, IfModifiedSince, IfNoneMatch, LastModified};
use prost::Message;
use tokio::net::TcpListener;
use tonic::Code;
use tracing::info;

/// The longest a cache may keep a CRL: a new revocation reaches clients that honour it
/// within this time, on top of the publisher's debounce. Never past `nextUpdate`.
pub const MAX_AGE: Duration = Duration::from_secs(300);

/// Sends `request` to the issuance service on `subject` and decodes its answer. A failure
/// to get one is `CRL_UNAVAILABLE`.
async fn ask<Q: Message, A: Message + Default>(
    bus: &BusClient,
    subject: &str,
    request: &Q,
) -> Result<A, Refusal> {
    let unavailable = |message: String| Refusal::service(ServiceReason::CrlUnavailable, message);
    let reply = bus
        .request(
            subject,
            &certflow_bus::Envelope::service("gateway"),
            request.encode_to_vec().into(),
        )
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    match reply.outcome {
        Some(Outcome::Response(bytes)) => {
            A::decode(bytes.as_slice()).map_err(|e| unavailable(e.to_string()))
        }
        Some(Outcome::Refusal(refusal)) => Err(refusal),
        None => Err(unavailable(
            "the issuance service sent an empty reply".into(),
        )),
    }
}

/// The latest CRL of `partition`, from the issuance service.
pub(crate) async fn fetch(
    bus: &BusClient,
    partition: CrlPartition,
) -> Result<GetCrlResponse, Refusal> {
    let request = GetCrlRequest {
        brand: certflow_proto::convert::brand_to_proto(partition.issuer.brand) as i32,
        sm2: partition.issuer.sm2,
        shard: match partition.shard {
            Shard::Original => None,
            Shard::Numbered(n) => Some(n),
        },
    };
    ask(bus, subjects::GET_CRL, &request).await
}

/// The distribution points of every CRL of `issuer`, from the issuance service.
pub(crate) async fn list(bus: &BusClient, issuer: IssuerId) -> Result<ListCrlsResponse, Refusal> {
    let request = ListCrlsRequest {
        brand: certflow_proto::convert::brand_to_proto(issuer.brand) as i32,
        sm2: issuer.sm2,
    };
    ask(bus, subjects::LIST_CRLS, &request).await
}

/// A refusal as an HTTP answer: what names nothing is `404`, anything else `503`, to be
/// tried again.
fn refusal_response(refusal: Refusal) -> Response {
    let status = match refusal.status_code() {
        Code::NotFound | Code::InvalidArgument => StatusCode::NOT_FOUND,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut response = (status, refusal.message).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    }
    response
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such CRL").into_response()
}

/// `GET /crl/...`: a CRL, or an issuer's list of them.
async fn distribution_point(
    State(bus): State<BusClient>,
    Path(rest): Path<String>,
    request_headers: HeaderMap,
) -> Response {
    if let Some(slug) = rest.strip_suffix(".json") {
        let Some(issuer) = IssuerId::from_slug(slug) else {
            return not_found();
        };
        return match list(&bus, issuer).await {
            Ok(list) => match serde_json::to_vec(&list.urls) {
                Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
                Err(err) => {
                    refusal_response(Refusal::service(ServiceReason::Internal, err.to_string()))
                }
            },
            Err(refusal) => refusal_response(refusal),
        };
    }
    let Some(partition) = CrlPartition::from_path(&format!("crl/{rest}")) else {
        return not_found();
    };
    match fetch(&bus, partition).await {
        Ok(crl) => crl_response(crl, &request_headers, SystemTime::now()),
        Err(refusal) => refusal_response(refusal),
    }
}

/// The answer to a request for `crl` with `request_headers`, at `now`: the CRL with its
/// validators and lifetime, or `304` when the client's copy is this CRL.
fn crl_response(crl: GetCrlResponse, request_headers: &HeaderMap, now: SystemTime) -> Response {
    let this_update = crl.this_update.map_or(0, |t| t.seconds);
    let next_update = crl.next_update.map_or(0, |t| t.seconds);
    let at = |seconds: i64| {
        SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
    };
    // The CRL number grows with every signing of this CRL; `thisUpdate` tells a CRL
    // signed after the store was rebuilt from one of the same number signed before.
    let etag: Option<ETag> = format!("\"{}-{}\"", crl.number, this_update).parse().ok();
    let until_next = at(next_update)
        .duration_since(now)
        .unwrap_or(Duration::ZERO);
    let mut headers = HeaderMap::new();
    if let Some(etag) = &etag {
        headers.typed_insert(etag.clone());
    }
    headers.typed_insert(LastModified::from(at(this_update)));
    headers.typed_insert(
        CacheControl::new()
            .with_public()
            .with_max_age(MAX_AGE.min(until_next)),
    );
    // RFC 9110 13.1.3: If-Modified-Since counts only without If-None-Match.
    let unchanged = match request_headers.typed_get::<IfNoneMatch>() {
        Some(if_none_match) => etag
            .as_ref()
            .is_some_and(|etag| !if_none_match.precondition_passes(etag)),
        None => request_headers
            .typed_get::<IfModifiedSince>()
            .is_some_and(|since| !since.is_modified(at(this_update))),
    };
    if unchanged {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/pkix-crl"),
    );
    (headers, crl.der).into_response()
}

/// Serves CRLs on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    bus: BusClient,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let address: Option<SocketAddr> = listener.local_addr().ok();
    info!(?address, "CRL distribution point listening");
    let app = axum::Router::new()
        .route("/crl/{*rest}", get(distribution_point))
        .with_state(bus);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crl(number: u64, this_update: i64, next_update: i64) -> GetCrlResponse {
        GetCrlResponse {
            der: vec![0x30, 0x00],
            number,
            entries: 0,
            this_update: Some(prost_types::Timestamp {
                seconds: this_update,
                nanos: 0,
            }),
            next_update: Some(prost_types::Timestamp {
                seconds: next_update,
                nanos: 0,
            }),
            url: String::new(),
        }
    }

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn cache_seconds(response: &Response) -> u64 {
        response
            .headers()
            .typed_get::<CacheControl>()
            .and_then(|c| c.max_age())
            .map_or(u64::MAX, |d| d.as_secs())
    }

    #[test]
    fn ca4_a_crl_is_cached_no_longer_than_its_next_update() {
        let fresh = crl_response(crl(1, 1_000, 1_000_000), &HeaderMap::new(), at(2_000));
        assert_eq!(fresh.status(), StatusCode::OK);
        assert_eq!(cache_seconds(&fresh), MAX_AGE.as_secs());
        assert_eq!(
            fresh.headers()[header::CONTENT_TYPE],
            "application/pkix-crl"
        );
        let closing = crl_response(crl(1, 1_000, 2_060), &HeaderMap::new(), at(2_000));
        assert_eq!(cache_seconds(&closing), 60, "a minute before nextUpdate");
        let late = crl_response(crl(1, 1_000, 1_500), &HeaderMap::new(), at(2_000));
        assert_eq!(
            cache_seconds(&late),
            0,
            "past nextUpdate: not cached at all"
        );
    }

    #[test]
    fn ca4_the_crl_a_client_holds_is_answered_not_modified() {
        let first = crl_response(crl(7, 1_000, 1_000_000), &HeaderMap::new(), at(2_000));
        let etag = first.headers()[header::ETAG].clone();
        let last_modified = first.headers()[header::LAST_MODIFIED].clone();

        let mut same = HeaderMap::new();
        same.insert(header::IF_NONE_MATCH, etag.clone());
        let again = crl_response(crl(7, 1_000, 1_000_000), &same, at(2_100));
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::ETAG], etag);

        let newer = crl_response(crl(8, 1_050, 1_000_000), &same, at(2_100));
        assert_eq!(newer.status(), StatusCode::OK, "a new CRL is sent whole");

        let mut since = HeaderMap::new();
        since.insert(header::IF_MODIFIED_SINCE, last_modified.clone());
        let unchanged = crl_response(crl(7, 1_000, 1_000_000), &since, at(2_100));
        assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);
        let changed = crl_response(crl(8, 1_050, 1_000_000), &since, at(2_100));
        assert_eq!(changed.status(), StatusCode::OK);

        // If-None-Match decides when both are sent (RFC 9110 13.1.3).
        let mut both = since.clone();
        both.insert(
            header::IF_NONE_MATCH,
            header::HeaderValue::from_static("\"other\""),
        );
        let stale_tag = crl_response(crl(7, 1_000, 1_000_000), &both, at(2_100));
        assert_eq!(stale_tag.status(), StatusCode::OK);
    }
}
