//! Requests as RFC 8555 §6 has them: a JWS in flattened JSON serialization, its protected
//! header carrying `alg`, `nonce`, `url` and exactly one of `jwk` or `kid`. A request is
//! read ([`Request::parse`]) and checked against the URL it was posted to before anything
//! else looks at it, then its signature is verified with the key it names or the account's
//! ([`Request::verify`]). Nothing here redeems nonces or finds accounts: the server does, with
//! what [`Request`] tells it.
//!
//! Signatures are checked by `jsonwebtoken` (ring); MAC algorithms and `none` are refused
//! outright, and a key whose type or curve does not match `alg` is refused before it is used.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::problem::{Problem, ProblemType};

/// The signature algorithms accepted for account and certificate keys.
pub const ALGORITHMS: [&str; 5] = ["RS256", "PS256", "ES256", "ES384", "EdDSA"];

/// The body of every ACME POST: RFC 8555 §6.2 allows the flattened JSON serialization only,
/// with no unprotected header.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    protected: String,
    payload: String,
    signature: String,
}

/// The protected header's members that ACME uses.
#[derive(Deserialize)]
struct Header {
    alg: String,
    nonce: Option<String>,
    url: Option<String>,
    jwk: Option<serde_json::Value>,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

/// A public key sent in a `jwk` header, with the JSON it came as (for its thumbprint).
#[derive(Debug, Clone)]
pub struct PublicJwk {
    key: Jwk,
    json: serde_json::Value,
}

impl PublicJwk {
    /// Reads `json` as a public key usable with `alg`; anything else is `badPublicKey`.
    pub fn parse(json: &serde_json::Value, alg: Algorithm) -> Result<Self, Problem> {
        let bad = |detail: &str| Problem::new(ProblemType::BadPublicKey, detail);
        let object = json
            .as_object()
            .ok_or_else(|| bad("jwk is not a JSON object"))?;
        if ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]
            .iter()
            .any(|member| object.contains_key(*member))
        {
            return Err(bad("jwk holds private or secret key material"));
        }
        let key: Jwk = serde_json::from_value(json.clone())
            .map_err(|e| bad(&format!("jwk is not a public key: {e}")))?;
        let matches = match (&key.algorithm, alg) {
            (AlgorithmParameters::RSA(_), Algorithm::RS256 | Algorithm::PS256) => true,
            (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
                ec.curve == EllipticCurve::P256
            }
            (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384) => {
                ec.curve == EllipticCurve::P384
            }
            (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA) => {
                okp.curve == EllipticCurve::Ed25519
            }
            _ => false,
        };
        if !matches {
            return Err(bad("the jwk's key type or curve does not match alg"));
        }
        // Coordinates of exactly the curve's size: a key has one encoding, so one
        // thumbprint, one account.
        let size = |member: &str| {
            object
                .get(member)
                .and_then(|v| v.as_str())
                .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
                .map(|bytes| bytes.len())
        };
        let sized = match alg {
            Algorithm::ES256 => size("x") == Some(32) && size("y") == Some(32),
            Algorithm::ES384 => size("x") == Some(48) && size("y") == Some(48),
            Algorithm::EdDSA => size("x") == Some(32),
            _ => true,
        };
        if !sized {
            return Err(bad("the jwk's coordinates are not the curve's size"));
        }
        Ok(PublicJwk {
            key,
            json: json.clone(),
        })
    }

    /// Its JWK thumbprint (RFC 7638): SHA-256 of the required members in lexicographic
    /// order, base64url. An account is known by it.
    pub fn thumbprint(&self) -> String {
        thumbprint(&self.json).unwrap_or_default()
    }

    /// The JSON the key came as.
    pub fn json(&self) -> &serde_json::Value {
        &self.json
    }
}

/// The JWK thumbprint (RFC 7638) of `jwk`; `None` when it lacks a required member.
pub fn thumbprint(jwk: &serde_json::Value) -> Option<String> {
    let required: &[&str] = match jwk.get("kty")?.as_str()? {
        "RSA" => &["e", "kty", "n"],
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    // serde_json's map keeps keys sorted, and the members are strings without escapes.
    let mut canonical = serde_json::Map::new();
    for member in required {
        canonical.insert((*member).to_string(), jwk.get(*member)?.clone());
    }
    let bytes = serde_json::to_vec(&canonical).ok()?;
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(bytes)))
}

/// Who signed: a key sent with the request (`newAccount`, revocation by the certificate's
/// key) or an account's URL.
#[derive(Debug, Clone)]
pub enum Signer {
    Jwk(Box<PublicJwk>),
    Kid(String),
}

/// A request read and checked as far as it can be without the nonce store or the accounts.
#[derive(Debug, Clone)]
pub struct Request {
    pub alg: Algorithm,
    pub nonce: String,
    pub url: String,
    pub signer: Signer,
    /// The decoded payload; empty for POST-as-GET.
    pub payload: Vec<u8>,
    signing_input: Vec<u8>,
    signature: String,
}

fn malformed(detail: impl Into<String>) -> Problem {
    Problem::new(ProblemType::Malformed, detail)
}

fn base64url(field: &str, text: &str) -> Result<Vec<u8>, Problem> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| malformed(format!("{field} is not base64url without padding")))
}

/// The algorithm `name` names, if it is one certflow accepts.
fn accepted_algorithm(name: &str) -> Result<Algorithm, Problem> {
    let alg = match name {
        "RS256" => Algorithm::RS256,
        "PS256" => Algorithm::PS256,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => {
            let mut problem = Problem::new(
                ProblemType::BadSignatureAlgorithm,
                format!("alg {name:?} is not accepted (MAC algorithms and none never are)"),
            );
            problem.algorithms = Some(ALGORITHMS.to_vec());
            return Err(problem);
        }
    };
    Ok(alg)
}

impl Request {
    /// Reads `body`, posted to `url`: a flattened JWS whose protected header has an
    /// accepted `alg`, a `nonce`, `url` equal to `url`, and exactly one of `jwk` and `kid`.
    pub fn parse(body: &[u8], url: &str) -> Result<Self, Problem> {
        let jws: Flattened = serde_json::from_slice(body).map_err(|e| {
            malformed(format!(
                "the body is not a JWS in flattened JSON serialization without an unprotected \
                 header: {e}"
            ))
        })?;
        let header: Header = serde_json::from_slice(&base64url("protected", &jws.protected)?)
            .map_err(|e| malformed(format!("the protected header: {e}")))?;
        let alg = accepted_algorithm(&header.alg)?;
        if header.crit.is_some() {
            return Err(malformed("no critical header parameter is understood here"));
        }
        let nonce = header
            .nonce
            .filter(|nonce| !nonce.is_empty())
            .ok_or_else(|| Problem::new(ProblemType::BadNonce, "the nonce header is missing"))?;
        if URL_SAFE_NO_PAD.decode(&nonce).is_err() {
            return Err(Problem::new(
                ProblemType::BadNonce,
                "the nonce is not base64url",
            ));
        }
        let signed_url = header
            .url
            .ok_or_else(|| malformed("the url header is missing"))?;
        if signed_url != url {
            return Err(Problem::new(
                ProblemType::Unauthorized,
                format!("the url header {signed_url:?} is not the URL posted to"),
            ));
        }
        let signer = match (header.jwk, header.kid) {
            (Some(jwk), None) => Signer::Jwk(Box::new(PublicJwk::parse(&jwk, alg)?)),
            (None, Some(kid)) => Signer::Kid(kid),
            (Some(_), Some(_)) => return Err(malformed("jwk and kid are both present")),
            (None, None) => return Err(malformed("neither jwk nor kid is present")),
        };
        let payload = base64url("payload", &jws.payload)?;
        base64url("signature", &jws.signature)?;
        Ok(Request {
            alg,
            nonce,
            url: signed_url,
            signer,
            payload,
            signing_input: format!("{}.{}", jws.protected, jws.payload).into_bytes(),
            signature: jws.signature,
        })
    }

    /// Checks the signature with `key` (the `jwk` sent, or the account's key for `kid`).
    pub fn verify(&self, key: &PublicJwk) -> Result<(), Problem> {
        let unauthorized = || {
            Problem::new(
                ProblemType::Unauthorized,
                "the signature does not verify with the signer's key",
            )
        };
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&key.key).map_err(|_| unauthorized())?;
        match jsonwebtoken::crypto::verify(
            &self.signature,
            &self.signing_input,
            &decoding,
            self.alg,
        ) {
            Ok(true) => Ok(()),
            _ => Err(unauthorized()),
        }
    }

    /// The payload as JSON of type `T`; `malformed` when it is not.
    pub fn payload_json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Problem> {
        serde_json::from_slice(&self.payload).map_err(|e| malformed(format!("the payload: {e}")))
    }
}

/// An External Account Binding (RFC 8555 §7.3.4): a JWS MAC'd with the key certflow gave the
/// customer, over the account key, naming the EAB key id.
#[derive(Debug, Clone)]
pub struct ExternalBinding {
    /// The EAB key id: which certflow account and MAC key.
    pub kid: String,
    alg: Algorithm,
    signing_input: Vec<u8>,
    signature: String,
}

impl ExternalBinding {
    /// Reads `binding` (the `externalAccountBinding` member of a `newAccount` payload) for
    /// `outer`, the request it came in: a MAC algorithm, `kid`, the same `url`, no nonce,
    /// and a payload that is the outer request's `jwk`.
    pub fn parse(binding: &serde_json::Value, outer: &Request) -> Result<Self, Problem> {
        let Signer::Jwk(account_key) = &outer.signer else {
            return Err(malformed("newAccount is signed with a jwk, not a kid"));
        };
        let jws: Flattened = serde_json::from_value(binding.clone()).map_err(|e| {
            malformed(format!(
                "externalAccountBinding is not a flattened JWS: {e}"
            ))
        })?;
        let header: serde_json::Value =
            serde_json::from_slice(&base64url("protected", &jws.protected)?)
                .map_err(|e| malformed(format!("externalAccountBinding's header: {e}")))?;
        let alg = match header.get("alg").and_then(|a| a.as_str()) {
            Some("HS256") => Algorithm::HS256,
            Some("HS384") => Algorithm::HS384,
            Some("HS512") => Algorithm::HS512,
            _ => {
                return Err(Problem::new(
                    ProblemType::BadSignatureAlgorithm,
                    "externalAccountBinding is MAC'd with HS256, HS384 or HS512",
                ));
            }
        };
        if header.get("nonce").is_some() {
            return Err(malformed("externalAccountBinding carries no nonce"));
        }
        if header.get("url").and_then(|u| u.as_str()) != Some(outer.url.as_str()) {
            return Err(Problem::new(
                ProblemType::Unauthorized,
                "externalAccountBinding's url is not the newAccount URL",
            ));
        }
        let kid = header
            .get("kid")
            .and_then(|k| k.as_str())
            .filter(|k| !k.is_empty())
            .ok_or_else(|| malformed("externalAccountBinding names no kid"))?
            .to_string();
        let bound: serde_json::Value = serde_json::from_slice(&base64url("payload", &jws.payload)?)
            .map_err(|e| malformed(format!("externalAccountBinding's payload: {e}")))?;
        if thumbprint(&bound) != Some(account_key.thumbprint()) {
            return Err(Problem::new(
                ProblemType::Unauthorized,
                "externalAccountBinding binds another key than the account's",
            ));
        }
        base64url("signature", &jws.signature)?;
        Ok(ExternalBinding {
            kid,
            alg,
            signing_input: format!("{}.{}", jws.protected, jws.payload).into_bytes(),
            signature: jws.signature,
        })
    }

    /// Checks the MAC with `key`, the EAB key [`kid`](Self::kid) names.
    pub fn verify(&self, key: &[u8]) -> Result<(), Problem> {
        let decoding = jsonwebtoken::DecodingKey::from_secret(key);
        match jsonwebtoken::crypto::verify(
            &self.signature,
            &self.signing_input,
            &decoding,
            self.alg,
        ) {
            Ok(true) => Ok(()),
            _ => Err(Problem::new(
                ProblemType::Unauthorized,
                "externalAccountBinding's MAC does not verify with that key",
            )),
        }
    }
}
