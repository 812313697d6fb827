//! Token verification with every kind of configured key. The RSA key under `fixtures/` is a
//! test key made for these tests only.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use certflow_domain::Role;
use certflow_gateway::auth::{Authenticator, Claims, KeySource, sign_token};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use tonic::Code;
use tonic::metadata::MetadataMap;
use tonic_types::StatusExt;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn claims(roles: &[&str], exp_offset: i64) -> Claims {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    Claims {
        sub: "alice".into(),
        account: "acme".into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        exp: (now + exp_offset) as u64,
        nbf: None,
    }
}

fn bearer(token: &str) -> MetadataMap {
    let mut metadata = MetadataMap::new();
    metadata.insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    metadata
}

fn reason(status: &tonic::Status) -> String {
    status.get_details_error_info().expect("ErrorInfo").reason
}

#[test]
fn rs256_tokens_verify_against_an_rsa_public_key() {
    let auth = Authenticator::load(&[KeySource::RsaPem(fixture("rsa-test-key.pub.pem"))])
        .expect("key loads");
    let private = std::fs::read(fixture("rsa-test-key.pem")).expect("fixture");
    let token = encode(
        &Header::new(Algorithm::RS256),
        &claims(&["customer", "unknown-role"], 600),
        &EncodingKey::from_rsa_pem(&private).expect("rsa key"),
    )
    .expect("signed");
    let actor = auth.authenticate(&bearer(&token)).expect("valid");
    assert_eq!(actor.subject, "alice");
    assert_eq!(actor.account, "acme");
    assert_eq!(
        actor.roles,
        vec![Role::Customer],
        "unknown roles are dropped"
    );
}

#[test]
fn hs256_dev_secret_and_a_wrong_secret() {
    let auth = Authenticator::load(&[KeySource::DevSecret("dev-secret".into())]).expect("load");
    let sign = |secret: &str| {
        encode(
            &Header::new(Algorithm::HS256),
            &claims(&["admin"], 600),
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("signed")
    };
    let actor = auth
        .authenticate(&bearer(&sign("dev-secret")))
        .expect("valid");
    assert_eq!(actor.roles, vec![Role::Admin]);
    let err = auth
        .authenticate(&bearer(&sign("guessed")))
        .expect_err("forged");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(reason(&err), "TOKEN_INVALID");
}

#[test]
fn jwks_keys_are_picked_by_kid() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key");
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.public_key_raw());
    let jwks = serde_json::json!({
        "keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1", "alg": "EdDSA", "use": "sig"}]
    });
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks.to_string()).expect("write");
    let auth = Authenticator::load(&[KeySource::Jwks(path)]).expect("jwks loads");

    let private = key.serialize_pem();
    let with_kid = |kid: &str| {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.into());
        encode(
            &header,
            &claims(&["reviewer"], 600),
            &EncodingKey::from_ed_pem(private.as_bytes()).expect("ed key"),
        )
        .expect("signed")
    };
    let actor = auth.authenticate(&bearer(&with_kid("k1"))).expect("valid");
    assert_eq!(actor.roles, vec![Role::Reviewer]);
    assert!(auth.authenticate(&bearer(&with_kid("k2"))).is_err());
}

#[test]
fn missing_malformed_and_expired_tokens_are_unauthenticated() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key");
    let dir = tempfile::tempdir().expect("dir");
    let public = dir.path().join("pub.pem");
    std::fs::write(&public, key.public_key_pem()).expect("write");
    let auth = Authenticator::load(&[KeySource::Ed25519Pem(public)]).expect("load");

    let err = auth.authenticate(&MetadataMap::new()).expect_err("missing");
    assert_eq!(reason(&err), "TOKEN_MISSING");
    let err = auth
        .authenticate(&bearer("not.a.jwt"))
        .expect_err("malformed");
    assert_eq!(reason(&err), "TOKEN_INVALID");
    let expired = sign_token(
        key.serialize_pem().as_bytes(),
        &claims(&["customer"], -3_600),
    )
    .expect("signed");
    let err = auth.authenticate(&bearer(&expired)).expect_err("expired");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(reason(&err), "TOKEN_EXPIRED");
    let fresh =
        sign_token(key.serialize_pem().as_bytes(), &claims(&["customer"], 600)).expect("signed");
    assert!(auth.authenticate(&bearer(&fresh)).is_ok());
}

#[test]
fn no_keys_is_a_configuration_error() {
    assert!(Authenticator::load(&[]).is_err());
    assert!(Authenticator::load(&[KeySource::Ed25519Pem("/nonexistent.pem".into())]).is_err());
}

/// An HS256 token over `claims` (any JSON), for the dev-secret authenticator.
fn dev_token(claims: &serde_json::Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(b"dev-secret"),
    )
    .expect("signed")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[test]
fn a_token_not_valid_yet_is_refused_until_its_nbf_every_time() {
    let auth = Authenticator::load(&[KeySource::DevSecret("dev-secret".into())]).expect("key");
    let early = dev_token(&serde_json::json!({
        "sub": "alice", "account": "acme", "roles": ["customer"],
        "exp": now() + 3_600, "nbf": now() + 600,
    }));
    for _ in 0..2 {
        // Refused every time: a remembered signature is no pass.
        let err = auth
            .authenticate(&bearer(&early))
            .expect_err("not yet valid");
        assert_eq!(err.code(), Code::Unauthenticated);
        assert_eq!(reason(&err), "TOKEN_NOT_YET_VALID");
    }
    let valid = dev_token(&serde_json::json!({
        "sub": "alice", "account": "acme", "roles": ["customer"],
        "exp": now() + 3_600, "nbf": now() - 10,
    }));
    assert!(auth.authenticate(&bearer(&valid)).is_ok());
}

#[test]
fn a_signed_token_missing_a_claim_says_which() {
    let auth = Authenticator::load(&[KeySource::DevSecret("dev-secret".into())]).expect("key");
    let full = serde_json::json!({
        "sub": "alice", "account": "acme", "roles": ["customer"], "exp": now() + 600,
    });
    for claim in ["sub", "account", "exp"] {
        let mut claims = full.clone();
        claims.as_object_mut().expect("object").remove(claim);
        let err = auth
            .authenticate(&bearer(&dev_token(&claims)))
            .expect_err("incomplete");
        assert_eq!(reason(&err), "TOKEN_INVALID");
        assert!(
            err.message().contains(&format!("no {claim} claim")),
            "{claim}: {}",
            err.message()
        );
    }
}

#[test]
fn gen3_the_account_of_a_token_is_compared_in_one_form() {
    let auth = Authenticator::load(&[KeySource::DevSecret("dev-secret".into())]).expect("key");
    let token = dev_token(&serde_json::json!({
        "sub": "alice", "account": " Acme ", "roles": ["customer"], "exp": now() + 600,
    }));
    assert_eq!(
        auth.authenticate(&bearer(&token)).expect("valid").account,
        "acme"
    );
    let control = dev_token(&serde_json::json!({
        "sub": "alice", "account": "ac\u{0}me", "roles": ["customer"], "exp": now() + 600,
    }));
    assert_eq!(
        reason(&auth.authenticate(&bearer(&control)).expect_err("NUL")),
        "TOKEN_INVALID"
    );
}
