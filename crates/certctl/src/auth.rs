//! The bearer token: where it comes from, and the interceptor that sends it.
//!
//! The token is taken from `--token` (or `CERTFLOW_TOKEN`); failing that, from the file
//! named by `--token-file` (or `CERTFLOW_TOKEN_FILE`); failing that, from
//! `$XDG_CONFIG_HOME/certflow/token` (or `$HOME/.config/certflow/token`), if that file
//! exists. Without a token the call still goes out, and the gateway answers
//! `UNAUTHENTICATED`. The token itself is never printed: [`Token`] and [`BearerAuth`] hide
//! it from `Debug`, and no error message quotes it.

use std::ffi::OsString;
use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow};
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// The metadata key the gateway reads the token from.
const AUTHORIZATION: &str = "authorization";

/// A bearer token. Its `Debug` output never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// The token, trimmed; `None` when nothing but whitespace is left.
    pub fn new(raw: &str) -> Option<Self> {
        let token = raw.trim();
        (!token.is_empty()).then(|| Self(token.to_owned()))
    }

    /// The token itself, for the `authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Token {
    /// Wraps the value as given; [`resolve_token`] trims it.
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The token file used when neither a token nor a token file is given:
/// `$XDG_CONFIG_HOME/certflow/token` when that variable holds an absolute path, otherwise
/// `$HOME/.config/certflow/token`; `None` when neither variable helps.
pub fn default_token_file(
    xdg_config_home: Option<OsString>,
    home: Option<OsString>,
) -> Option<PathBuf> {
    let config = xdg_config_home
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| {
            home.filter(|home| !home.is_empty())
                .map(|home| PathBuf::from(home).join(".config"))
        })?;
    Some(config.join("certflow").join("token"))
}

/// The token to send: `given` (from `--token` or `CERTFLOW_TOKEN`) when it is not blank;
/// otherwise the trimmed content of `file` (from `--token-file` or `CERTFLOW_TOKEN_FILE`),
/// which must be readable; otherwise the trimmed content of `default_file` if it exists.
/// `None` means the call goes out without a token.
pub fn resolve_token(
    given: Option<&Token>,
    file: Option<&Path>,
    default_file: Option<&Path>,
) -> Result<Option<Token>> {
    if let Some(token) = given.and_then(|token| Token::new(token.expose())) {
        return Ok(Some(token));
    }
    if let Some(file) = file.filter(|file| !file.as_os_str().is_empty()) {
        let content = std::fs::read_to_string(file).with_context(|| read_error(file))?;
        return Ok(Token::new(&content));
    }
    let Some(default_file) = default_file else {
        return Ok(None);
    };
    match std::fs::read_to_string(default_file) {
        Ok(content) => Ok(Token::new(&content)),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(anyhow::Error::new(err).context(read_error(default_file))),
    }
}

/// The message for a token file that cannot be read: it names the file, never its content.
fn read_error(path: &Path) -> String {
    format!("could not read the token file {}", path.display())
}

/// Adds `authorization: Bearer <token>` to every call; without a token, adds nothing.
#[derive(Clone)]
pub struct BearerAuth {
    header: Option<AsciiMetadataValue>,
}

impl BearerAuth {
    /// The interceptor for `token`. Fails, without quoting the token, when it holds
    /// characters a gRPC header cannot carry.
    pub fn new(token: Option<&Token>) -> Result<Self> {
        let header = token
            .map(|token| {
                let mut value = AsciiMetadataValue::try_from(format!("Bearer {}", token.expose()))
                    .map_err(|_| {
                        anyhow!(
                            "the bearer token holds characters a gRPC header cannot carry \
                             (only visible ASCII is allowed)"
                        )
                    })?;
                value.set_sensitive(true);
                Ok::<_, anyhow::Error>(value)
            })
            .transpose()?;
        Ok(Self { header })
    }
}

impl fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = if self.header.is_some() {
            "<redacted>"
        } else {
            "<none>"
        };
        f.debug_struct("BearerAuth").field("token", &token).finish()
    }
}

impl Interceptor for BearerAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(header) = &self.header {
            request.metadata_mut().insert(AUTHORIZATION, header.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A directory of its own under the system's temporary directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "certctl-auth-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).expect("create a temporary directory");
            Self(dir)
        }

        fn file(&self, name: &str, content: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, content).expect("write a temporary file");
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn token(value: &str) -> Token {
        Token::from(value.to_owned())
    }

    fn resolved(
        given: Option<&Token>,
        file: Option<&Path>,
        default_file: Option<&Path>,
    ) -> Option<String> {
        resolve_token(given, file, default_file)
            .expect("token resolution succeeds")
            .map(|token| token.expose().to_owned())
    }

    #[test]
    fn a_given_token_beats_both_files() {
        let dir = TempDir::new();
        let file = dir.file("token", "from-file\n");
        let default = dir.file("default", "from-default\n");
        assert_eq!(
            resolved(Some(&token("  from-flag \n")), Some(&file), Some(&default)),
            Some("from-flag".to_owned())
        );
        // A blank value counts as no value: the file is used.
        assert_eq!(
            resolved(Some(&token(" \t")), Some(&file), Some(&default)),
            Some("from-file".to_owned())
        );
    }

    #[test]
    fn the_token_file_is_read_and_trimmed() {
        let dir = TempDir::new();
        let file = dir.file("token", "\n  eyJhbGciOi.payload.sig \r\n\n");
        let default = dir.file("default", "from-default");
        assert_eq!(
            resolved(None, Some(&file), Some(&default)),
            Some("eyJhbGciOi.payload.sig".to_owned())
        );
        assert_eq!(
            resolved(None, None, Some(&default)),
            Some("from-default".to_owned())
        );
        let blank = dir.file("blank", " \n");
        assert_eq!(resolved(None, Some(&blank), Some(&default)), None);
    }

    #[test]
    fn a_missing_default_file_means_no_token() {
        let dir = TempDir::new();
        let missing = dir.0.join("certflow").join("token");
        assert_eq!(resolved(None, None, Some(&missing)), None);
        assert_eq!(resolved(None, None, None), None);
    }

    #[test]
    fn a_missing_explicit_token_file_is_an_error() {
        let dir = TempDir::new();
        let missing = dir.0.join("nope");
        let err = resolve_token(None, Some(&missing), None).expect_err("missing token file");
        assert!(
            format!("{err:#}").contains("could not read the token file"),
            "{err:#}"
        );
    }

    #[test]
    fn the_default_token_file_follows_xdg() {
        assert_eq!(
            default_token_file(Some("/xdg".into()), Some("/home/u".into())),
            Some(PathBuf::from("/xdg/certflow/token"))
        );
        assert_eq!(
            default_token_file(None, Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.config/certflow/token"))
        );
        // An empty or relative XDG_CONFIG_HOME is ignored, as the XDG spec says.
        assert_eq!(
            default_token_file(Some("".into()), Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.config/certflow/token"))
        );
        assert_eq!(
            default_token_file(Some("rel".into()), Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.config/certflow/token"))
        );
        assert_eq!(default_token_file(None, None), None);
        assert_eq!(default_token_file(None, Some("".into())), None);
    }

    #[test]
    fn the_interceptor_adds_the_bearer_header() {
        let mut auth = BearerAuth::new(Some(&token("abc.def.ghi"))).expect("valid token");
        let request = auth.call(Request::new(())).expect("interceptor passes");
        let header = request
            .metadata()
            .get(AUTHORIZATION)
            .expect("authorization header");
        assert_eq!(header.to_str().ok(), Some("Bearer abc.def.ghi"));
        assert!(header.is_sensitive());
        assert_eq!(request.metadata().get_all(AUTHORIZATION).iter().count(), 1);
    }

    #[test]
    fn without_a_token_the_interceptor_adds_nothing() {
        let mut auth = BearerAuth::new(None).expect("no token");
        let request = auth.call(Request::new(())).expect("interceptor passes");
        assert!(request.metadata().get(AUTHORIZATION).is_none());
    }

    #[test]
    fn the_token_never_shows() {
        let secret = "s3cr3t-jwt";
        let auth = BearerAuth::new(Some(&token(secret))).expect("valid token");
        for shown in [format!("{auth:?}"), format!("{:?}", token(secret))] {
            assert!(!shown.contains(secret), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
        }
        let bad = format!("{secret}\n\u{7f}bad");
        let err = BearerAuth::new(Some(&token(&bad))).expect_err("invalid header value");
        assert!(!format!("{err:#}").contains(secret), "{err:#}");
    }
}
