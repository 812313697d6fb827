//! Revocations asked over ACME (RFC 8555 §7.6). The ACME endpoint has checked the request's
//! JWS and sends what the certificate says (serial, key) and how the request was signed;
//! here the certificate is found and the request decided as any other:
//!
//! - signed with the certificate's own key: [`RevokeByKeyProof`], key compromise proven,
//!   whoever asks (REV-16);
//! - signed by an ACME account: [`RequestRevocation`] by the certflow account the account is
//!   bound to, with every rule of a revocation asked through gRPC (GEN-3, REV-1 … REV-17).

use certflow_bus::{Request, decode_request, refused, unavailable};
use certflow_domain::{
    CertificateId, Command, DomainError, RequestRevocation, RevocationReason, RevokeByKeyProof,
    ValidationMethod,
};
use certflow_proto::bus::v1::{AcmeRevocation, Reply};
use certflow_proto::v1::RequestRevocationResponse;
use certflow_runtime::CommandRuntime;
use certflow_store::{KeyIndex, StoreError};

/// What a revocation asked over ACME says of itself: ACME has no free text, and a reviewer
/// reading it learns where it came from.
pub const DESCRIPTION: &str = "Requested over ACME (RFC 8555 revokeCert).";

/// Decides an ACME revocation.
pub(crate) async fn revoke(runtime: &CommandRuntime, keys: &KeyIndex, request: Request) -> Reply {
    let asked = match decode_request::<AcmeRevocation>(&request) {
        Ok(asked) => asked,
        Err(err) => return refused(&err),
    };
    let id = match certificate_named(runtime, keys, &asked).await {
        Ok(Some(id)) => id,
        Ok(None) => {
            return refused(&DomainError::not_found_named(
                "no certificate issued here has that serial number and key",
            ));
        }
        Err(err) => return unavailable(format!("{err}; retry")),
    };
    runtime
        .decide_request(
            &request,
            |req: &AcmeRevocation| &req.request_id,
            move |req| {
                // REV-9 holds for any reason a client names, though the key's holder revokes
                // for key compromise whatever they name.
                if let Some(code) = req.reason {
                    RevocationReason::from_rfc5280_code(code)?;
                }
                Ok(if req.signed_with_certificate_key {
                    Command::RevokeByKeyProof(RevokeByKeyProof {
                        id,
                        public_key_sha256: req.public_key_sha256,
                    })
                } else {
                    Command::RequestRevocation(RequestRevocation {
                        id,
                        reason_code: req.reason.unwrap_or(0),
                        description: DESCRIPTION.into(),
                        validation_method: ValidationMethod::Dns,
                    })
                })
            },
            |certificate| RequestRevocationResponse { certificate },
        )
        .await
}

/// The certificate with the serial and key `asked` names: among those the key index binds
/// to the key, the one with that serial.
async fn certificate_named(
    runtime: &CommandRuntime,
    keys: &KeyIndex,
    asked: &AcmeRevocation,
) -> Result<Option<CertificateId>, StoreError> {
    for id in keys.certificates(&asked.public_key_sha256).await? {
        let loaded = runtime.store.load(&id).await?;
        let same_serial = loaded.state.as_ref().is_some_and(|cert| {
            cert.serial_number
                .as_deref()
                .is_some_and(|serial| serial.eq_ignore_ascii_case(&asked.serial_number))
        });
        if same_serial {
            return Ok(Some(id));
        }
    }
    Ok(None)
}
