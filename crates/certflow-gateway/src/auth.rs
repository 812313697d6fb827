//! Who is calling: bearer JWTs checked against configured keys, and which roles may call
//! which RPC.
//!
//! A token names its subject (`sub`), account (`account`), roles (`roles`: customer,
//! reviewer, admin) and expiry (`exp`). EdDSA and RS256 keys come from PEM files or a JWKS
//! file; an HS256 secret is accepted for development only. The token itself is never
//! logged.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use certflow_bus::ServiceReason;
use certflow_domain::{Actor, DomainError, Reason, Role, Rule};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::{Deserialize, Serialize};
use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::status;

/// Where the keys that sign tokens come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// An Ed25519 public key in PEM (EdDSA tokens).
    Ed25519Pem(PathBuf),
    /// An RSA public key in PEM (RS256 tokens).
    RsaPem(PathBuf),
    /// A JWKS file of Ed25519 and RSA public keys, picked by the token's `kid`.
    Jwks(PathBuf),
    /// A shared secret (HS256): for local development only.
    DevSecret(String),
}

/// Why the configured keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} does not hold a usable key: {source}")]
    Key {
        path: PathBuf,
        #[source]
        source: jsonwebtoken::errors::Error,
    },
    #[error("{path} is not a JWKS document: {source}")]
    Jwks {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("no token signing keys are configured")]
    NoKeys,
}

/// The claims certflow reads from a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub account: String,
    #[serde(default)]
    pub roles: Vec<String>,
    pub exp: u64,
    /// Not valid before (seconds since the epoch), when the issuer says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// A token's claims as signed, each possibly missing: checked one by one so that a token
/// lacking one is told which.
#[derive(Debug, Deserialize)]
struct SignedClaims {
    sub: Option<String>,
    account: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    exp: Option<u64>,
    nbf: Option<u64>,
}

impl SignedClaims {
    fn complete(self) -> Result<Claims, Status> {
        let missing = |claim: &str, what: &str| {
            status::service(
                ServiceReason::TokenInvalid,
                format!("the token has no {claim} claim ({what}); ask its issuer for one that has"),
            )
        };
        let sub = self
            .sub
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| missing("sub", "who is calling"))?;
        let account = self
            .account
            .filter(|a| !a.trim().is_empty())
            .ok_or_else(|| missing("account", "the customer account acted for"))?;
        let exp = self.exp.ok_or_else(|| missing("exp", "when it expires"))?;
        Ok(Claims {
            sub,
            account,
            roles: self.roles,
            exp,
            nbf: self.nbf,
        })
    }
}

struct VerificationKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Checks bearer tokens.
pub struct Authenticator {
    keys: Vec<VerificationKey>,
    /// Tokens whose signature checked out, with their claims: a client sends the same
    /// token with every call, and verifying an Ed25519 or RSA signature each time cost
    /// about 5% of the gateway's CPU under load. Expiry is checked on every use.
    verified: Mutex<HashMap<String, Claims>>,
}

/// The token of an `Authorization: Bearer <token>` value; `None` for any other value.
pub fn bearer_token(value: &str) -> Option<&str> {
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Most verified tokens remembered; when full the memory starts again.
const VERIFIED_TOKENS: usize = 10_000;
/// Seconds a token is still accepted after its `exp`, as in verification.
const LEEWAY: u64 = 30;

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("keys", &self.keys.len())
            .finish()
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, AuthError> {
    std::fs::read(path).map_err(|source| AuthError::Read {
        path: path.clone(),
        source,
    })
}

impl Authenticator {
    /// Loads every configured key.
    pub fn load(sources: &[KeySource]) -> Result<Self, AuthError> {
        let mut keys = Vec::new();
        for source in sources {
            match source {
                KeySource::Ed25519Pem(path) => keys.push(VerificationKey {
                    kid: None,
                    algorithm: Algorithm::EdDSA,
                    key: DecodingKey::from_ed_pem(&read(path)?).map_err(|source| {
                        AuthError::Key {
                            path: path.clone(),
                            source,
                        }
                    })?,
                }),
                KeySource::RsaPem(path) => keys.push(VerificationKey {
                    kid: None,
                    algorithm: Algorithm::RS256,
                    key: DecodingKey::from_rsa_pem(&read(path)?).map_err(|source| {
                        AuthError::Key {
                            path: path.clone(),
                            source,
                        }
                    })?,
                }),
                KeySource::Jwks(path) => {
                    let set: JwkSet =
                        serde_json::from_slice(&read(path)?).map_err(|source| AuthError::Jwks {
                            path: path.clone(),
                            source,
                        })?;
                    for jwk in &set.keys {
                        let algorithm = match &jwk.algorithm {
                            AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
                            AlgorithmParameters::RSA(_) => Algorithm::RS256,
                            // Only the asymmetric algorithms above are accepted from JWKS.
                            _ => continue,
                        };
                        keys.push(VerificationKey {
                            kid: jwk.common.key_id.clone(),
                            algorithm,
                            key: DecodingKey::from_jwk(jwk).map_err(|source| AuthError::Key {
                                path: path.clone(),
                                source,
                            })?,
                        });
                    }
                }
                KeySource::DevSecret(secret) => keys.push(VerificationKey {
                    kid: None,
                    algorithm: Algorithm::HS256,
                    key: DecodingKey::from_secret(secret.as_bytes()),
                }),
            }
        }
        if keys.is_empty() {
            return Err(AuthError::NoKeys);
        }
        Ok(Authenticator {
            keys,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// The caller of a request, from its `authorization: Bearer …` metadata.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<Actor, Status> {
        let token = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .ok_or_else(|| {
                status::service(
                    ServiceReason::TokenMissing,
                    "a bearer token is required: authorization: Bearer <JWT>",
                )
            })?;
        self.actor(token)
    }

    /// The caller a token names, once its signature, dates and claims check out.
    pub fn actor(&self, token: &str) -> Result<Actor, Status> {
        let claims = self.verified(token)?;
        let roles = claims
            .roles
            .iter()
            .filter_map(|r| match r.as_str() {
                "customer" => Some(Role::Customer),
                "reviewer" => Some(Role::Reviewer),
                "admin" => Some(Role::Admin),
                _ => None,
            })
            .collect();
        let account = certflow_domain::account_key(&claims.account);
        if let Err(err) = certflow_domain::text::key_text("the account claim", &account)
            .and_then(|()| certflow_domain::text::key_text("the sub claim", &claims.sub))
        {
            return Err(status::service(
                ServiceReason::TokenInvalid,
                err.to_string(),
            ));
        }
        Ok(Actor {
            subject: claims.sub,
            account,
            roles,
        })
    }

    /// The claims of `token`: remembered from an earlier verification while unexpired,
    /// verified otherwise.
    fn verified(&self, token: &str) -> Result<Claims, Status> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(claims) = verified.get(token) {
            if claims.exp.saturating_add(LEEWAY) > now {
                let claims = claims.clone();
                drop(verified);
                not_yet_valid(&claims, now)?;
                return Ok(claims);
            }
            verified.remove(token);
        }
        drop(verified);
        let claims = self.verify(token)?;
        not_yet_valid(&claims, now)?;
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= VERIFIED_TOKENS {
            verified.clear();
        }
        verified.insert(token.to_string(), claims.clone());
        Ok(claims)
    }

    fn verify(&self, token: &str) -> Result<Claims, Status> {
        let header = decode_header(token).map_err(|_| {
            status::service(ServiceReason::TokenInvalid, "the bearer token is not a JWT")
        })?;
        let mut expired = false;
        for key in &self.keys {
            if key.algorithm != header.alg {
                continue;
            }
            if let (Some(want), Some(have)) = (&key.kid, &header.kid)
                && want != have
            {
                continue;
            }
            let mut validation = Validation::new(key.algorithm);
            validation.leeway = LEEWAY;
            // Claims are checked by certflow once the signature holds, so a token that
            // lacks one is told which; `nbf` is checked on every use (`not_yet_valid`).
            validation.set_required_spec_claims::<&str>(&[]);
            validation.validate_nbf = false;
            match decode::<SignedClaims>(token, &key.key, &validation) {
                Ok(data) => return data.claims.complete(),
                Err(err)
                    if matches!(
                        err.kind(),
                        jsonwebtoken::errors::ErrorKind::ExpiredSignature
                    ) =>
                {
                    expired = true;
                }
                Err(_) => {}
            }
        }
        Err(if expired {
            status::service(
                ServiceReason::TokenExpired,
                "the bearer token has expired; get a new one",
            )
        } else {
            status::service(
                ServiceReason::TokenInvalid,
                "the bearer token is not signed by a trusted key",
            )
        })
    }
}

/// `UNAUTHENTICATED` (`TOKEN_NOT_YET_VALID`) while `now` is before the token's `nbf`.
fn not_yet_valid(claims: &Claims, now: u64) -> Result<(), Status> {
    match claims.nbf {
        Some(nbf) if nbf > now.saturating_add(LEEWAY) => Err(status::service(
            ServiceReason::TokenNotYetValid,
            format!(
                "the bearer token is valid from {nbf} (seconds since 1970) on, {} s from now; \
                 check the clocks, or wait",
                nbf - now
            ),
        )),
        _ => Ok(()),
    }
}

/// Fails with `PERMISSION_DENIED` unless `actor` holds one of `allowed`.
pub fn require_role(actor: &Actor, allowed: &[Role], rpc: &str) -> Result<(), Status> {
    if actor.roles.iter().any(|r| allowed.contains(r)) {
        Ok(())
    } else {
        let names: Vec<&str> = allowed
            .iter()
            .map(|r| match r {
                Role::Customer => "customer",
                Role::Reviewer => "reviewer",
                Role::Admin => "admin",
            })
            .collect();
        Err(status::refused(&DomainError::permission_denied(
            Rule::Gen3,
            Reason::RoleRequired,
            format!("{rpc} needs one of the roles: {}", names.join(", ")),
        )))
    }
}

/// The error of token signing.
pub use jsonwebtoken::errors::Error as TokenError;

/// Signs a token for `claims` with an Ed25519 private key in PKCS#8 PEM: for development
/// and tests, where certflow is its own identity provider.
pub fn sign_token(
    private_key_pem: &[u8],
    claims: &Claims,
) -> Result<String, jsonwebtoken::errors::Error> {
    let key = jsonwebtoken::EncodingKey::from_ed_pem(private_key_pem)?;
    jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::EdDSA), claims, &key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};

    fn token(secret: &str, exp: u64) -> String {
        let claims = Claims {
            sub: "alice".into(),
            account: "acme".into(),
            roles: vec!["customer".into()],
            exp,
            nbf: None,
        };
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("encode")
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    }

    #[test]
    fn a_verified_token_is_remembered_and_only_that_token() {
        let auth =
            Authenticator::load(&[KeySource::DevSecret("right".into())]).expect("authenticator");
        let good = token("right", now() + 3600);
        assert_eq!(auth.verified(&good).expect("valid").account, "acme");
        assert_eq!(auth.verified(&good).expect("remembered").sub, "alice");
        assert_eq!(auth.verified.lock().expect("lock").len(), 1);
        let forged = token("wrong", now() + 3600);
        assert!(
            auth.verified(&forged).is_err(),
            "another signature is checked anew"
        );
        let expired = token("right", now() - LEEWAY - 5);
        let refused = auth.verified(&expired).expect_err("expired");
        assert!(refused.message().contains("expired"), "{refused:?}");
        assert_eq!(auth.verified.lock().expect("lock").len(), 1);
    }
}
