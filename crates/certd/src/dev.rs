//! Development identity: a local Ed25519 token-signing key and tokens signed with it, so a
//! local run and the tests need no identity provider.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use certflow_gateway::auth::{Claims, sign_token};

/// Why a development key or token could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key generation: {0}")]
    Key(#[from] rcgen::Error),
    #[error("token signing: {0}")]
    Token(#[from] certflow_gateway::auth::TokenError),
}

/// The key-encryption key of a development key store in `dir` (`kek.hex`), made on first use.
pub fn ensure_kek(dir: &Path) -> Result<String, DevError> {
    let path = dir.join("kek.hex");
    let io = |source| DevError::Io {
        path: path.clone(),
        source,
    };
    if let Ok(hex) = std::fs::read_to_string(&path) {
        return Ok(hex.trim().to_string());
    }
    std::fs::create_dir_all(dir).map_err(io)?;
    let hex = certflow_ca::sealing::Kek::generate_hex();
    std::fs::write(&path, &hex).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(hex)
}

/// The private and public halves of the signing key in `dir`.
pub fn key_paths(dir: &Path) -> (PathBuf, PathBuf) {
    (
        dir.join("token-signing.key.pem"),
        dir.join("token-signing.pub.pem"),
    )
}

/// Creates an Ed25519 signing key in `dir` unless one is there; returns its two paths.
pub fn ensure_signing_key(dir: &Path) -> Result<(PathBuf, PathBuf), DevError> {
    let (private, public) = key_paths(dir);
    if private.exists() && public.exists() {
        return Ok((private, public));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DevError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    std::fs::write(&private, key.serialize_pem()).map_err(io(&private))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600))
            .map_err(io(&private))?;
    }
    std::fs::write(&public, key.public_key_pem()).map_err(io(&public))?;
    Ok((private, public))
}

/// A token for `subject` of `account` with `roles`, valid for `ttl`, signed with the
/// private key at `private_key`.
pub fn token(
    private_key: &Path,
    subject: &str,
    account: &str,
    roles: &[&str],
    ttl: Duration,
) -> Result<String, DevError> {
    sign(
        private_key,
        subject,
        account,
        roles,
        unix_now().saturating_add(ttl.as_secs()),
    )
}

/// A token that expired `ago` ago, for tests of expiry.
pub fn expired_token(
    private_key: &Path,
    subject: &str,
    account: &str,
    roles: &[&str],
    ago: Duration,
) -> Result<String, DevError> {
    sign(
        private_key,
        subject,
        account,
        roles,
        unix_now().saturating_sub(ago.as_secs()),
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn sign(
    private_key: &Path,
    subject: &str,
    account: &str,
    roles: &[&str],
    exp: u64,
) -> Result<String, DevError> {
    let pem = std::fs::read(private_key).map_err(|source| DevError::Io {
        path: private_key.to_path_buf(),
        source,
    })?;
    let claims = Claims {
        sub: subject.to_string(),
        account: account.to_string(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        exp,
        nbf: None,
    };
    Ok(sign_token(&pem, &claims)?)
}
