//! CRLs over plain HTTP at the distribution point URL written into every certificate:
//! `GET /crl/<brand>.crl` answers the CA's latest CRL in DER (`application/pkix-crl`).
//! Relying parties fetch it without credentials, as RFC 5280 expects.

use std::net::SocketAddr;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use certflow_bus::{BusClient, CancellationToken, Outcome, subjects};
use certflow_domain::Brand;
use certflow_proto::v1::{GetCrlRequest, GetCrlResponse};
use prost::Message;
use tokio::net::TcpListener;
use tracing::info;

/// The issuer a CRL file is named after: `<brand>.crl`, or `<brand>-sm2.crl` for a brand's
/// SM2 CA.
fn issuer_of(file: &str) -> Option<(Brand, bool)> {
    let slug = file.strip_suffix(".crl")?;
    match slug.strip_suffix("-sm2") {
        Some(brand) => Some((Brand::from_slug(brand)?, true)),
        None => Some((Brand::from_slug(slug)?, false)),
    }
}

/// The latest CRL of `brand`'s CA (its SM2 CA with `sm2`), from the issuance service.
pub(crate) async fn fetch(
    bus: &BusClient,
    brand: Brand,
    sm2: bool,
) -> Result<GetCrlResponse, (StatusCode, String)> {
    let request = GetCrlRequest {
        brand: certflow_proto::convert::brand_to_proto(brand) as i32,
        sm2,
    };
    let reply = bus
        .request(
            subjects::GET_CRL,
            &certflow_bus::Envelope::service("gateway"),
            request.encode_to_vec().into(),
        )
        .await
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    match reply.outcome {
        Some(Outcome::Response(bytes)) => GetCrlResponse::decode(bytes.as_slice())
            .map_err(|e| (StatusCode::BAD_GATEWAY, e.to_string())),
        Some(Outcome::Refusal(refusal)) => Err((StatusCode::SERVICE_UNAVAILABLE, refusal.message)),
        None => Err((StatusCode::BAD_GATEWAY, "empty reply".into())),
    }
}

async fn crl(State(bus): State<BusClient>, Path(file): Path<String>) -> Response {
    let Some((brand, sm2)) = issuer_of(&file) else {
        return (StatusCode::NOT_FOUND, "no such CRL").into_response();
    };
    match fetch(&bus, brand, sm2).await {
        Ok(crl) => ([(header::CONTENT_TYPE, "application/pkix-crl")], crl.der).into_response(),
        Err((status, message)) => (status, message).into_response(),
    }
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
        .route("/crl/{file}", get(crl))
        .with_state(bus);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
