//! Problem documents (RFC 7807) with the ACME error types of RFC 8555 §6.7: every refusal an
//! ACME client sees, with certflow's reason code beside the ACME type so a customer can look
//! it up as they would a gRPC refusal.

use serde::Serialize;

/// The ACME error types certflow answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemType {
    /// The request is malformed: not JSON, not a flattened JWS, a header missing or doubled.
    Malformed,
    /// The nonce is unknown, used, expired or missing.
    BadNonce,
    /// The JWS algorithm is not one the server accepts (MAC algorithms and `none` never).
    BadSignatureAlgorithm,
    /// The JWK is not a public key the server accepts.
    BadPublicKey,
    /// The signer may not do this: a bad signature, a key that is not the certificate's,
    /// an account not bound to the certificate's owner.
    Unauthorized,
    /// `kid` names no account.
    AccountDoesNotExist,
    /// `newAccount` without External Account Binding, which certflow requires.
    ExternalAccountRequired,
    /// The certificate is revoked already (REV-17).
    AlreadyRevoked,
    /// The reason is not one the rules accept (REV-9).
    BadRevocationReason,
    /// The server does not offer this resource (orders, authorizations).
    UnsupportedOperation,
    /// Something failed on certflow's side; the request may be retried.
    ServerInternal,
}

impl ProblemType {
    /// The type's URN, `urn:ietf:params:acme:error:<name>`.
    pub fn urn(self) -> &'static str {
        match self {
            ProblemType::Malformed => "urn:ietf:params:acme:error:malformed",
            ProblemType::BadNonce => "urn:ietf:params:acme:error:badNonce",
            ProblemType::BadSignatureAlgorithm => {
                "urn:ietf:params:acme:error:badSignatureAlgorithm"
            }
            ProblemType::BadPublicKey => "urn:ietf:params:acme:error:badPublicKey",
            ProblemType::Unauthorized => "urn:ietf:params:acme:error:unauthorized",
            ProblemType::AccountDoesNotExist => "urn:ietf:params:acme:error:accountDoesNotExist",
            ProblemType::ExternalAccountRequired => {
                "urn:ietf:params:acme:error:externalAccountRequired"
            }
            ProblemType::AlreadyRevoked => "urn:ietf:params:acme:error:alreadyRevoked",
            ProblemType::BadRevocationReason => "urn:ietf:params:acme:error:badRevocationReason",
            ProblemType::UnsupportedOperation => "urn:ietf:params:acme:error:unsupportedOperation",
            ProblemType::ServerInternal => "urn:ietf:params:acme:error:serverInternal",
        }
    }

    /// The HTTP status the problem is sent with.
    pub fn status(self) -> u16 {
        match self {
            ProblemType::Malformed
            | ProblemType::BadNonce
            | ProblemType::BadSignatureAlgorithm
            | ProblemType::BadPublicKey
            | ProblemType::AccountDoesNotExist
            | ProblemType::ExternalAccountRequired
            | ProblemType::AlreadyRevoked
            | ProblemType::BadRevocationReason => 400,
            ProblemType::Unauthorized => 403,
            ProblemType::UnsupportedOperation => 405,
            ProblemType::ServerInternal => 500,
        }
    }
}

/// A problem document, as sent with `Content-Type: application/problem+json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub detail: String,
    pub status: u16,
    /// certflow's reason code (README's error tables), where a rule refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Accepted algorithms, on `badSignatureAlgorithm` (RFC 8555 §6.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithms: Option<Vec<&'static str>>,
}

impl Problem {
    /// A problem of type `kind` saying `detail`.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Problem {
            kind: kind.urn(),
            detail: detail.into(),
            status: kind.status(),
            reason: None,
            algorithms: None,
        }
    }

    /// The same, carrying certflow's reason code.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The document's JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings and numbers always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_document_names_its_acme_type_status_and_reason() {
        let problem = Problem::new(ProblemType::AlreadyRevoked, "revoked on 2026-12-01")
            .with_reason("ALREADY_REVOKED");
        let json: serde_json::Value = serde_json::from_slice(&problem.to_json()).expect("JSON");
        assert_eq!(json["type"], "urn:ietf:params:acme:error:alreadyRevoked");
        assert_eq!(json["status"], 400);
        assert_eq!(json["reason"], "ALREADY_REVOKED");
        assert_eq!(json["detail"], "revoked on 2026-12-01");
        assert!(json.get("algorithms").is_none());
        assert_eq!(ProblemType::Unauthorized.status(), 403);
    }
}
