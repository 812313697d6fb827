//! A table of bad requests, each refused with its ACME problem type before anything acts on
//! it, and the good ones that pass: RFC 8555 §6 as certbot and lego send it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use certflow_acme::{ExternalBinding, ProblemType, PublicJwk, Request, Signer, thumbprint};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

const URL: &str = "https://acme.example/acme/revoke-cert";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A key that signs requests, and its public JWK.
struct Key {
    pair: rcgen::KeyPair,
    alg: Algorithm,
    jwk: Value,
}

impl Key {
    fn p256() -> Key {
        Key::ec(
            &rcgen::PKCS_ECDSA_P256_SHA256,
            Algorithm::ES256,
            "P-256",
            32,
        )
    }

    fn p384() -> Key {
        Key::ec(
            &rcgen::PKCS_ECDSA_P384_SHA384,
            Algorithm::ES384,
            "P-384",
            48,
        )
    }

    fn ec(
        algorithm: &'static rcgen::SignatureAlgorithm,
        alg: Algorithm,
        crv: &str,
        size: usize,
    ) -> Key {
        let pair = rcgen::KeyPair::generate_for(algorithm).expect("key");
        let point = pair.public_key_raw().to_vec();
        let jwk = json!({
            "kty": "EC",
            "crv": crv,
            "x": b64(&point[1..1 + size]),
            "y": b64(&point[1 + size..]),
        });
        Key { pair, alg, jwk }
    }

    fn public(&self) -> PublicJwk {
        PublicJwk::parse(&self.jwk, self.alg).expect("a public key")
    }

    /// A flattened JWS of `header` and `payload`, signed with this key as `alg`.
    fn sign(&self, header: &Value, payload: &[u8]) -> Value {
        let protected = b64(header.to_string().as_bytes());
        let payload = b64(payload);
        let encoding =
            EncodingKey::from_ec_pem(self.pair.serialize_pem().as_bytes()).expect("an EC key");
        let signature = jsonwebtoken::crypto::sign(
            format!("{protected}.{payload}").as_bytes(),
            &encoding,
            self.alg,
        )
        .expect("signed");
        json!({ "protected": protected, "payload": payload, "signature": signature })
    }

    fn header(&self) -> Value {
        json!({
            "alg": alg_name(self.alg),
            "nonce": b64(b"nonce-1"),
            "url": URL,
            "jwk": self.jwk,
        })
    }
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        _ => "other",
    }
}

fn parse(body: &Value) -> Result<Request, ProblemType> {
    Request::parse(body.to_string().as_bytes(), URL).map_err(kind)
}

fn kind(problem: certflow_acme::Problem) -> ProblemType {
    for kind in [
        ProblemType::Malformed,
        ProblemType::BadNonce,
        ProblemType::BadSignatureAlgorithm,
        ProblemType::BadPublicKey,
        ProblemType::Unauthorized,
    ] {
        if problem.kind == kind.urn() {
            return kind;
        }
    }
    panic!("unexpected problem {problem:?}")
}

fn with(mut header: Value, member: &str, value: Value) -> Value {
    header[member] = value;
    header
}

fn without(mut header: Value, member: &str) -> Value {
    header.as_object_mut().expect("object").remove(member);
    header
}

#[test]
fn a_request_signed_with_its_jwk_is_read_and_verifies() {
    for key in [Key::p256(), Key::p384()] {
        let body = key.sign(&key.header(), br#"{"certificate":"MIIB"}"#);
        let request = parse(&body).expect("accepted");
        assert_eq!(request.url, URL);
        assert_eq!(request.nonce, b64(b"nonce-1"));
        let Signer::Jwk(jwk) = &request.signer else {
            panic!("signed with a jwk");
        };
        request.verify(jwk).expect("verifies");
        let payload: Value = request.payload_json().expect("JSON payload");
        assert_eq!(payload["certificate"], "MIIB");
        assert_eq!(jwk.thumbprint(), key.public().thumbprint());
    }
}

#[test]
fn a_request_signed_by_an_account_verifies_with_that_accounts_key_only() {
    let account = Key::p256();
    let header = without(
        with(
            account.header(),
            "kid",
            json!("https://acme.example/acme/acct/1"),
        ),
        "jwk",
    );
    let request = parse(&account.sign(&header, b"")).expect("accepted");
    assert!(matches!(&request.signer, Signer::Kid(kid) if kid.ends_with("/acct/1")));
    assert!(request.payload.is_empty(), "POST-as-GET");
    request
        .verify(&account.public())
        .expect("the account's key");
    let other = Key::p256();
    assert_eq!(
        request.verify(&other.public()).map_err(kind),
        Err(ProblemType::Unauthorized)
    );
}

/// The bad JWS inputs: each refused with its problem type.
#[test]
fn bad_requests_are_refused_with_their_problem_type() {
    let key = Key::p256();
    let other = Key::p256();
    let good = key.header();
    let signed = |header: &Value| key.sign(header, b"{}");
    let mut unprotected = signed(&good);
    unprotected["header"] = json!({ "kid": "x" });
    let mut tampered = signed(&good);
    tampered["payload"] = json!(b64(br#"{"reason":1}"#));
    let cases: Vec<(&str, Value, ProblemType)> = vec![
        (
            "not JSON",
            json!("eyJhbGciOi.e30.c2ln"),
            ProblemType::Malformed,
        ),
        ("an unprotected header", unprotected, ProblemType::Malformed),
        (
            "the wrong url",
            signed(&with(
                good.clone(),
                "url",
                json!("https://acme.example/acme/new-acct"),
            )),
            ProblemType::Unauthorized,
        ),
        (
            "no url",
            signed(&without(good.clone(), "url")),
            ProblemType::Malformed,
        ),
        (
            "no nonce",
            signed(&without(good.clone(), "nonce")),
            ProblemType::BadNonce,
        ),
        (
            "a nonce that is not base64url",
            signed(&with(good.clone(), "nonce", json!("no+pad="))),
            ProblemType::BadNonce,
        ),
        (
            "HS256",
            signed(&with(good.clone(), "alg", json!("HS256"))),
            ProblemType::BadSignatureAlgorithm,
        ),
        (
            "none",
            signed(&with(good.clone(), "alg", json!("none"))),
            ProblemType::BadSignatureAlgorithm,
        ),
        (
            "neither jwk nor kid",
            signed(&without(good.clone(), "jwk")),
            ProblemType::Malformed,
        ),
        (
            "both jwk and kid",
            signed(&with(
                good.clone(),
                "kid",
                json!("https://acme.example/acme/acct/1"),
            )),
            ProblemType::Malformed,
        ),
        (
            "a private key in the jwk",
            signed(&with(
                good.clone(),
                "jwk",
                with(key.jwk.clone(), "d", json!(b64(b"secret"))),
            )),
            ProblemType::BadPublicKey,
        ),
        (
            "a secret key as the jwk",
            signed(&with(
                good.clone(),
                "jwk",
                json!({ "kty": "oct", "k": b64(b"secret") }),
            )),
            ProblemType::BadPublicKey,
        ),
        (
            "a P-256 key for ES384",
            signed(&with(good.clone(), "alg", json!("ES384"))),
            ProblemType::BadPublicKey,
        ),
        (
            "a coordinate one byte short",
            signed(&with(
                good.clone(),
                "jwk",
                with(
                    key.jwk.clone(),
                    "x",
                    json!(b64(&URL_SAFE_NO_PAD
                        .decode(key.jwk["x"].as_str().expect("x"))
                        .expect("base64url")[1..])),
                ),
            )),
            ProblemType::BadPublicKey,
        ),
        (
            "a critical extension",
            signed(&with(good.clone(), "crit", json!(["b64"]))),
            ProblemType::Malformed,
        ),
    ];
    for (what, body, expected) in cases {
        assert_eq!(parse(&body).map(|_| ()), Err(expected), "{what}");
    }

    // Read fine, but the signature is not the jwk's: a key that is not the signer's, or
    // a payload changed after signing.
    for (what, body) in [
        (
            "signed by another key than the jwk",
            other.sign(&good, b"{}"),
        ),
        ("a payload changed after signing", tampered),
    ] {
        let request = parse(&body).expect(what);
        let Signer::Jwk(jwk) = &request.signer else {
            panic!("{what}: a jwk");
        };
        assert_eq!(
            request.verify(jwk).map_err(kind),
            Err(ProblemType::Unauthorized),
            "{what}"
        );
    }
}

#[test]
fn hs256_is_refused_with_the_algorithms_accepted() {
    let key = Key::p256();
    let body = key.sign(&with(key.header(), "alg", json!("HS256")), b"{}");
    let problem = Request::parse(body.to_string().as_bytes(), URL).expect_err("refused");
    assert_eq!(problem.kind, ProblemType::BadSignatureAlgorithm.urn());
    let algorithms = problem.algorithms.expect("the accepted algorithms");
    assert!(algorithms.contains(&"ES256") && !algorithms.contains(&"HS256"));
}

/// RFC 7638 §3.1's example key and its thumbprint.
#[test]
fn the_thumbprint_is_rfc_7638s() {
    let jwk = json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    });
    assert_eq!(
        thumbprint(&jwk).as_deref(),
        Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
    );
    assert_eq!(thumbprint(&json!({ "kty": "EC", "crv": "P-256" })), None);
}

/// External Account Binding (RFC 8555 §7.3.4) as certbot and lego send it.
fn binding(account: &Key, kid: &str, mac_key: &[u8], header: Option<Value>) -> Value {
    let header = header.unwrap_or_else(|| json!({ "alg": "HS256", "kid": kid, "url": URL }));
    let protected = b64(header.to_string().as_bytes());
    let payload = b64(account.jwk.to_string().as_bytes());
    let signature = jsonwebtoken::crypto::sign(
        format!("{protected}.{payload}").as_bytes(),
        &EncodingKey::from_secret(mac_key),
        Algorithm::HS256,
    )
    .expect("MAC");
    json!({ "protected": protected, "payload": payload, "signature": signature })
}

#[test]
fn an_external_account_binding_ties_the_account_key_to_a_certflow_key_id() {
    let account = Key::p256();
    let outer = parse(&account.sign(&account.header(), b"{}")).expect("newAccount");
    let mac_key = b"a 32-byte key from the customer!";
    let eab =
        ExternalBinding::parse(&binding(&account, "kid-1", mac_key, None), &outer).expect("read");
    assert_eq!(eab.kid, "kid-1");
    eab.verify(mac_key).expect("the MAC verifies");
    assert_eq!(
        eab.verify(b"another key").map_err(kind),
        Err(ProblemType::Unauthorized)
    );

    let other = Key::p256();
    let refusals = [
        (
            "another account's key bound",
            binding(&other, "kid-1", mac_key, None),
            ProblemType::Unauthorized,
        ),
        (
            "another url",
            binding(
                &account,
                "kid-1",
                mac_key,
                Some(json!({ "alg": "HS256", "kid": "kid-1", "url": "https://x/" })),
            ),
            ProblemType::Unauthorized,
        ),
        (
            "a nonce",
            binding(
                &account,
                "kid-1",
                mac_key,
                Some(json!({ "alg": "HS256", "kid": "kid-1", "url": URL, "nonce": "bm9uY2U" })),
            ),
            ProblemType::Malformed,
        ),
        (
            "no kid",
            binding(
                &account,
                "",
                mac_key,
                Some(json!({ "alg": "HS256", "url": URL })),
            ),
            ProblemType::Malformed,
        ),
        (
            "not a MAC",
            binding(
                &account,
                "kid-1",
                mac_key,
                Some(json!({ "alg": "ES256", "kid": "kid-1", "url": URL })),
            ),
            ProblemType::BadSignatureAlgorithm,
        ),
    ];
    for (what, value, expected) in refusals {
        assert_eq!(
            ExternalBinding::parse(&value, &outer)
                .map(|_| ())
                .map_err(kind),
            Err(expected),
            "{what}"
        );
    }
}
