//! Webhook signatures as the Standard Webhooks specification says
//! (<https://www.standardwebhooks.com/>): `webhook-id`, `webhook-timestamp` and
//! `webhook-signature` headers, the signature an HMAC-SHA256 of `<id>.<timestamp>.<body>`
//! under the endpoint's secret, written `v1,<base64>`; several signatures (the current and
//! a rotated-out secret's) separated by spaces.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How a secret is written: this prefix, then the key in standard base64.
pub const SECRET_PREFIX: &str = "whsec_";

/// A signing secret: 32 random bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A fresh secret from the operating system's random source.
    pub fn generate() -> Result<Self, rand_core::OsError> {
        use rand_core::TryRngCore as _;
        let mut key = vec![0u8; 32];
        rand_core::OsRng.try_fill_bytes(&mut key)?;
        Ok(Secret(key))
    }

    /// The secret as written: `whsec_<base64>`.
    pub fn encode(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// Reads `whsec_<base64>` (or bare base64).
    pub fn decode(text: &str) -> Option<Self> {
        let key = STANDARD
            .decode(text.strip_prefix(SECRET_PREFIX).unwrap_or(text))
            .ok()?;
        (!key.is_empty()).then_some(Secret(key))
    }

    /// The `v1,<base64>` signature of a message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header: one signature per secret, current first.
pub fn signature_header(secrets: &[&Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `header` carries a valid `v1` signature by `secret` of the message: what a
/// receiver checks (it should also refuse a timestamp far from its clock).
#[cfg(test)]
fn verify(secret: &Secret, header: &str, id: &str, timestamp: i64, body: &[u8]) -> bool {
    let expected = secret.sign(id, timestamp, body);
    header.split(' ').any(|candidate| {
        candidate.len() == expected.len()
            && candidate
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks reference libraries.
    #[test]
    fn signs_the_specifications_example() {
        let secret = Secret::decode("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let timestamp = 1_614_265_330;
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign(id, timestamp, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert!(verify(
            &secret,
            "v1,bm9wZQ== v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            id,
            timestamp,
            body
        ));
        assert!(!verify(&secret, "v1,bm9wZQ==", id, timestamp, body));
        assert!(!verify(
            &secret,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            id,
            timestamp + 1,
            body
        ));
    }

    #[test]
    fn a_generated_secret_reads_back_and_both_rotated_secrets_sign() {
        let current = Secret::generate().expect("random");
        let previous = Secret::generate().expect("random");
        assert_ne!(current, previous);
        assert_eq!(Secret::decode(&current.encode()), Some(current.clone()));
        assert!(current.encode().starts_with("whsec_"));
        let header = signature_header(&[&current, &previous], "msg_1", 5, b"{}");
        assert!(verify(&current, &header, "msg_1", 5, b"{}"));
        assert!(verify(&previous, &header, "msg_1", 5, b"{}"));
        assert!(!verify(
            &Secret::generate().expect("random"),
            &header,
            "msg_1",
            5,
            b"{}"
        ));
        assert_eq!(Secret::decode("whsec_"), None);
        assert_eq!(Secret::decode("whsec_***"), None);
    }
}
