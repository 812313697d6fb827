//! The command line: global options, subcommands and their flags.

use std::path::PathBuf;

use certflow_proto::v1::{Brand, CertificateStatus, KeyAlgorithm, Level};
use clap::{Args, Parser, Subcommand};
use prost_types::Timestamp;

use crate::auth::Token;
use crate::names::{parse_algorithm, parse_brand, parse_level, parse_reason, parse_status};

/// Command-line client for the certflow gateway (certificate revocation service).
#[derive(Debug, Parser)]
#[command(name = "certctl", version, about)]
pub struct Cli {
    /// gRPC address of the certflow gateway; without a scheme, `http://` is assumed
    /// [default: $CERTFLOW_ENDPOINT, else http://127.0.0.1:50051].
    #[arg(long, global = true, env = "CERTFLOW_ADDR", value_name = "URL")]
    pub endpoint: Option<String>,

    /// Bearer token (JWT) sent with every call [default: read from --token-file].
    #[arg(
        long,
        global = true,
        env = "CERTFLOW_TOKEN",
        hide_env_values = true,
        value_name = "JWT"
    )]
    pub token: Option<Token>,

    /// File holding the bearer token, used without --token
    /// [default: $XDG_CONFIG_HOME/certflow/token or ~/.config/certflow/token, if present].
    #[arg(long, global = true, env = "CERTFLOW_TOKEN_FILE", value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// PEM of a CA to trust for an https:// endpoint (required for https://).
    #[arg(long, global = true, env = "CERTFLOW_CA_CERT", value_name = "PATH")]
    pub ca_cert: Option<PathBuf>,

    /// PEM of a client certificate to present over TLS (with --client-key).
    #[arg(
        long,
        global = true,
        env = "CERTFLOW_CLIENT_CERT",
        value_name = "PATH",
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,

    /// PEM of the client certificate's private key (with --client-cert).
    #[arg(
        long,
        global = true,
        env = "CERTFLOW_CLIENT_KEY",
        value_name = "PATH",
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,

    /// Name the gateway's TLS certificate must match [default: the endpoint's host].
    #[arg(long, global = true, env = "CERTFLOW_TLS_DOMAIN", value_name = "NAME")]
    pub tls_domain: Option<String>,

    /// Print responses as JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record a certificate issued through the platform.
    Issue(IssueArgs),
    /// Store a third-party certificate from its PEM.
    Upload(UploadArgs),
    /// Show one certificate.
    Get {
        /// Certificate id.
        id: String,
    },
    /// List certificates, a page at a time.
    List(ListArgs),
    /// Show everything that happened to a certificate, in order.
    History {
        /// Certificate id.
        id: String,
    },
    /// Ask for a certificate to be revoked.
    Revoke(RevokeArgs),
    /// Check a revocation's domain-validation challenges now and show what was seen.
    Check {
        /// Certificate id.
        id: String,
    },
    /// Revoke many certificates (admins): the ids given, or every certificate of --account.
    BulkRevoke(BulkRevokeArgs),
    /// Reissue a certificate: the same expiry, the original's key, a new one or your CSR.
    Reissue(ReissueArgs),
    /// Stamped documents of revocations that a reviewer decides.
    #[command(subcommand)]
    Document(DocumentCommand),
    /// Reviewers: take, decide and follow review tasks.
    #[command(subcommand)]
    Review(ReviewCommand),
    /// Where your account is told what happens to its certificates: webhooks and email,
    /// and the notifications that could not be delivered.
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Write the files a server needs: PEM (Nginx, Apache) or PKCS#12 (IIS, Tomcat).
    Download(DownloadArgs),
    /// Record that a renewal was ordered (within 30 days of expiry).
    Renew {
        /// Certificate id.
        id: String,
        /// Request id, to retry a request safely (default: a fresh UUID).
        #[arg(long, value_name = "ID")]
        request_id: Option<String>,
    },
    /// Make an External Account Binding key to register an ACME client (certbot, lego)
    /// for your account; the MAC key is shown this once.
    AcmeEab,
    /// Delete a certificate (revoked, expired or uploaded ones); its key is erased.
    Delete {
        /// Certificate id.
        id: String,
        /// Request id, to retry a request safely (default: a fresh UUID).
        #[arg(long, value_name = "ID")]
        request_id: Option<String>,
    },
}

/// Flags of `certctl download`.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// Certificate id.
    pub id: String,

    /// `pem` or `pkcs12`.
    #[arg(long, default_value = "pem", value_parser = ["pem", "pkcs12"])]
    pub format: String,

    /// Protects a PKCS#12 archive, and opens a key issued with a password.
    #[arg(long, env = "CERTFLOW_DOWNLOAD_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,

    /// Directory the files are written to.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,

    /// Replace files that already exist (otherwise nothing is written).
    #[arg(long)]
    pub force: bool,
}

/// Flags of `certctl issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// Account the certificate belongs to: admins name it; customers act for the account
    /// in their token and may leave it out.
    #[arg(long, default_value = "")]
    pub account: String,

    /// Brand: trustasia, wotrus, dnspod, geotrust, digicert, globalsign or sectigo.
    #[arg(long, value_parser = parse_brand)]
    pub brand: Brand,

    /// Validation level: dv, ov or ev.
    #[arg(long, value_parser = parse_level)]
    pub level: Level,

    /// Domain; the first is the primary common name. Repeat, or separate with commas.
    #[arg(long = "domain", required = true, value_delimiter = ',')]
    pub domains: Vec<String>,

    /// Key algorithm: rsa-2048, rsa-3072, rsa-4096, ecc-p256, ecc-p384 or sm2.
    #[arg(long, value_parser = parse_algorithm, default_value = "rsa-2048")]
    pub algorithm: KeyAlgorithm,

    /// Term in years.
    #[arg(long, default_value_t = 1)]
    pub term: u32,

    /// A paid certificate (the default).
    #[arg(long, overrides_with = "free")]
    pub paid: bool,

    /// A free certificate.
    #[arg(long, overrides_with = "paid")]
    pub free: bool,

    /// Domain whose DNS validation record the product manages (DNS_AUTO). Repeatable.
    #[arg(long = "dns-auto", value_name = "DOMAIN", value_delimiter = ',')]
    pub dns_auto: Vec<String>,

    /// Domain whose validation file the product manages (FILE_AUTO). Repeatable.
    #[arg(long = "file-auto", value_name = "DOMAIN", value_delimiter = ',')]
    pub file_auto: Vec<String>,

    /// Start of validity, RFC 3339 (default: now).
    #[arg(long, value_name = "RFC3339", value_parser = parse_timestamp)]
    pub not_before: Option<Timestamp>,

    /// End of validity, RFC 3339 (default: not-before plus 365 days).
    #[arg(long, value_name = "RFC3339", value_parser = parse_timestamp)]
    pub not_after: Option<Timestamp>,

    /// A renewal has been ordered for this certificate.
    #[arg(long)]
    pub renewal_ordered: bool,

    /// Certify the key of this PKCS#10 request (PEM file, `-` for stdin) instead of
    /// having a key generated.
    #[arg(long, value_name = "FILE")]
    pub csr: Option<PathBuf>,

    /// Encrypt the generated private key with this password (not stored anywhere; you need
    /// it to use the key). Prefer the environment variable to the flag.
    #[arg(long, env = "CERTFLOW_KEY_PASSWORD", hide_env_values = true)]
    pub key_password: Option<String>,

    /// An organisation detail for OV/EV, as `name=value` (e.g. `organization=Acme Ltd`);
    /// repeatable.
    #[arg(long = "enterprise", value_name = "NAME=VALUE", value_parser = parse_pair)]
    pub enterprise_info: Vec<(String, String)>,

    /// Request id, to retry a request safely (default: a fresh UUID).
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
}

/// Parses `name=value`.
pub fn parse_pair(input: &str) -> Result<(String, String), String> {
    let (name, value) = input
        .split_once('=')
        .ok_or_else(|| format!("{input:?} is not name=value"))?;
    Ok((name.trim().to_string(), value.trim().to_string()))
}

impl IssueArgs {
    /// Whether the certificate is paid: yes unless `--free` (the later of `--paid` and
    /// `--free` wins).
    pub fn is_paid(&self) -> bool {
        self.paid || !self.free
    }
}

/// Flags of `certctl upload`.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Account the certificate belongs to: admins name it; customers act for the account
    /// in their token and may leave it out.
    #[arg(long, default_value = "")]
    pub account: String,

    /// PEM file: the leaf certificate first, then its chain; `-` reads standard input.
    #[arg(long)]
    pub file: PathBuf,

    /// The certificate's private key (PKCS#8 PEM file), to keep it for downloads.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,

    /// Request id, to retry a request safely (default: a fresh UUID).
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
}

/// Flags of `certctl list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only certificates in this status: issued, revocation-pending, revoked,
    /// reissue-pending, expired or deleted (default: all but deleted).
    #[arg(long, value_parser = parse_status)]
    pub status: Option<CertificateStatus>,

    /// Only this account's certificates (admins).
    #[arg(long)]
    pub account: Option<String>,

    /// Certificates per page, 1 to 500 (default: the server's, 50).
    #[arg(long, value_name = "N")]
    pub page_size: Option<u32>,

    /// Start at this page, from a previous listing's next_page_token.
    #[arg(long, value_name = "TOKEN")]
    pub page_token: Option<String>,

    /// Fetch every page, not just the first.
    #[arg(long)]
    pub all: bool,
}

/// Flags of `certctl revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// Certificate id.
    pub id: String,

    #[command(flatten)]
    pub revocation: RevocationArgs,

    /// Request id, to retry a request safely (default: a fresh UUID).
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
}

/// What a revocation says: reason, description and validation method; shared by `revoke`
/// and `bulk-revoke`.
#[derive(Debug, Args)]
pub struct RevocationArgs {
    /// Reason: unspecified, key-compromise, affiliation-changed, superseded,
    /// cessation-of-operation, or a numeric RFC 5280 code (the server decides).
    #[arg(
        long,
        value_parser = parse_reason,
        default_value = "unspecified",
        allow_hyphen_values = true
    )]
    pub reason: i32,

    /// Why; required where a reviewer decides.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,

    /// How domains without automatic validation will be proven.
    #[arg(long, value_enum, default_value = "dns")]
    pub method: MethodArg,
}

/// How a customer proves a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    /// A TXT record at _dnsauth.<domain>.
    Dns,
    /// A file at http://<domain>/.well-known/pki-validation/fileauth.txt.
    File,
}

impl MethodArg {
    /// The API's value.
    pub fn to_proto(self) -> i32 {
        match self {
            MethodArg::Dns => certflow_proto::v1::ValidationMethod::Dns as i32,
            MethodArg::File => certflow_proto::v1::ValidationMethod::File as i32,
        }
    }
}

/// Flags of `certctl reissue`.
#[derive(Debug, Args)]
pub struct ReissueArgs {
    /// The original's id.
    pub id: String,
    /// Why (required).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// A domain to bind, from the original's; repeatable [default: all of them].
    #[arg(long = "domain", value_name = "NAME")]
    pub domains: Vec<String>,
    /// Have a new key pair generated: rsa-2048, rsa-3072, rsa-4096, ecc-p256, ecc-p384, sm2.
    #[arg(long, value_parser = parse_algorithm, conflicts_with = "csr")]
    pub generate: Option<KeyAlgorithm>,
    /// Encrypt the generated private key with this password (never stored).
    #[arg(
        long,
        env = "CERTFLOW_KEY_PASSWORD",
        hide_env_values = true,
        requires = "generate"
    )]
    pub key_password: Option<String>,
    /// Certify the key of this PKCS#10 request (PEM file, `-` for stdin).
    #[arg(long, value_name = "FILE")]
    pub csr: Option<PathBuf>,
    /// An organisation detail for OV/EV, as `name=value`; repeatable.
    #[arg(long = "enterprise", value_name = "NAME=VALUE", value_parser = parse_pair)]
    pub enterprise_info: Vec<(String, String)>,
    /// How domains without automatic validation are proven, where the reissue needs it.
    #[arg(long, value_enum, default_value = "dns")]
    pub method: MethodArg,
    /// Request id, to retry a request safely (default: a fresh UUID).
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
}

/// `certctl document …`
#[derive(Debug, Subcommand)]
pub enum DocumentCommand {
    /// Write the printable template of the document a certificate's revocation needs.
    Template {
        /// Certificate id.
        id: String,
        /// Where to write it [default: the server's file name, here].
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
    /// Upload the stamped document (JPG, PNG, GIF or PDF, at most 1.4 MiB).
    Upload {
        /// Certificate id.
        id: String,
        /// The scanned, stamped document.
        #[arg(long, value_name = "PATH")]
        file: PathBuf,
        /// Request id, to retry a request safely (default: a fresh UUID).
        #[arg(long, value_name = "ID")]
        request_id: Option<String>,
    },
    /// Download the document of a certificate's revocation.
    Get {
        /// Certificate id.
        id: String,
        /// Where to write it.
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
}

/// `certctl notify …`
#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Register an HTTPS webhook (signed as Standard Webhooks says; the signing secret is
    /// shown this once) or an email address.
    Add {
        /// The webhook's https URL.
        #[arg(
            long,
            value_name = "URL",
            conflicts_with = "email",
            required_unless_present = "email"
        )]
        webhook: Option<String>,
        /// The email address.
        #[arg(long, value_name = "ADDRESS")]
        email: Option<String>,
        /// Only these kinds (repeatable): challenges-issued, deadline-approaching,
        /// revocation-completed, revocation-failed, review-rejected, reissue-completed,
        /// key-blocked [default: all].
        #[arg(long = "type", value_name = "KIND", value_enum)]
        types: Vec<NotificationKind>,
        /// Request id, to retry a request safely (default: a fresh UUID).
        #[arg(long, value_name = "ID")]
        request_id: Option<String>,
    },
    /// List your endpoints.
    List,
    /// Give a webhook a new signing secret; the old one keeps signing beside it for 24 hours.
    RotateSecret {
        /// Endpoint id.
        id: String,
        /// Request id, to retry a request safely (default: a fresh UUID).
        #[arg(long, value_name = "ID")]
        request_id: Option<String>,
    },
    /// Stop notifying an endpoint.
    Remove {
        /// Endpoint id.
        id: String,
    },
    /// Notifications the retries gave up on (after 3 days).
    DeadLetters,
    /// Send a dead letter again, with its original id.
    Replay {
        /// Dead letter id (`<notification>/<endpoint>`).
        id: String,
    },
}

/// A kind of notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NotificationKind {
    ChallengesIssued,
    DeadlineApproaching,
    RevocationCompleted,
    RevocationFailed,
    ReviewRejected,
    ReissueCompleted,
    KeyBlocked,
}

/// `certctl review …`
#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Take the next task you may decide; it stays yours until you decide it (or the
    /// queue's ack wait passes). Documents are saved into --out.
    Next {
        /// Where to save the task's documents.
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
    },
    /// Approve a task.
    Approve(DecisionArgs),
    /// Reject a task.
    Reject(DecisionArgs),
    /// Follow the queue: the tasks waiting now, then each one as it is offered.
    Watch,
}

/// Flags of `certctl review approve|reject`.
#[derive(Debug, Args)]
pub struct DecisionArgs {
    /// The task id.
    pub task: String,
    /// Why: required.
    #[arg(long, value_name = "TEXT")]
    pub comment: String,
    /// The lease `review next` printed, so the task is acknowledged once decided.
    #[arg(long, value_name = "LEASE", default_value = "")]
    pub lease: String,
    /// Request id, to retry a request safely (default: a fresh UUID).
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
}

/// Flags of `certctl bulk-revoke`.
#[derive(Debug, Args)]
pub struct BulkRevokeArgs {
    /// Certificate ids (or none, with --ids-file or --account).
    pub ids: Vec<String>,

    /// A file of certificate ids, one a line (`-`: standard input); up to 1,000,000 in all.
    #[arg(long, value_name = "PATH")]
    pub ids_file: Option<PathBuf>,

    /// Revoke every certificate of this account that is not revoked, expired or deleted.
    #[arg(long, value_name = "ACCOUNT", conflicts_with_all = ["ids", "ids_file"])]
    pub account: Option<String>,

    #[command(flatten)]
    pub revocation: RevocationArgs,

    /// Request id, to retry the whole bulk revocation safely (default: a fresh UUID).
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
}

/// Parses an RFC 3339 timestamp such as `2025-01-31T00:00:00Z`.
pub fn parse_timestamp(input: &str) -> Result<Timestamp, String> {
    input
        .parse::<Timestamp>()
        .map_err(|err| format!("not an RFC 3339 timestamp ({err})"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("certctl").chain(args.iter().copied()))
    }

    fn issue(args: &[&str]) -> IssueArgs {
        let mut full = vec!["issue"];
        full.extend_from_slice(args);
        match parse(&full).map(|cli| cli.command) {
            Ok(Command::Issue(args)) => args,
            other => panic!("expected issue, got {other:?}"),
        }
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn notify_add_takes_a_webhook_or_an_email_and_kinds() {
        match parse(&[
            "notify",
            "add",
            "--webhook",
            "https://hooks.example.com/certflow",
            "--type",
            "challenges-issued",
            "--type",
            "key-blocked",
        ])
        .map(|cli| cli.command)
        {
            Ok(Command::Notify(NotifyCommand::Add {
                webhook,
                email,
                types,
                ..
            })) => {
                assert_eq!(
                    webhook.as_deref(),
                    Some("https://hooks.example.com/certflow")
                );
                assert!(email.is_none());
                assert_eq!(
                    types,
                    [
                        NotificationKind::ChallengesIssued,
                        NotificationKind::KeyBlocked
                    ]
                );
            }
            other => panic!("expected notify add, got {other:?}"),
        }
        assert!(parse(&["notify", "add"]).is_err(), "a target is required");
        assert!(
            parse(&[
                "notify",
                "add",
                "--webhook",
                "https://a.example",
                "--email",
                "a@example.com"
            ])
            .is_err(),
            "one target at a time"
        );
        assert!(
            parse(&[
                "notify",
                "add",
                "--email",
                "a@example.com",
                "--type",
                "nope"
            ])
            .is_err()
        );
    }

    #[test]
    fn issue_defaults() {
        let args = issue(&[
            "--account",
            "ACME",
            "--brand",
            "GeoTrust",
            "--level",
            "DV",
            "--domain",
            "www.example.com",
        ]);
        assert_eq!(args.brand, Brand::Geotrust);
        assert_eq!(args.level, Level::Dv);
        assert_eq!(args.algorithm, KeyAlgorithm::Rsa2048);
        assert_eq!(args.term, 1);
        assert!(args.is_paid());
        assert!(!args.renewal_ordered);
        assert_eq!(args.domains, ["www.example.com"]);
        assert!(args.request_id.is_none());
        assert!(args.not_before.is_none());
    }

    #[test]
    fn issue_flags() {
        let base = [
            "--account",
            "ACME",
            "--brand",
            "sectigo",
            "--level",
            "ov",
            "--domain",
            "a.example.com,b.example.com",
            "--domain",
            "c.example.com",
            "--algorithm",
            "ECC-P384",
            "--term",
            "2",
            "--dns-auto",
            "a.example.com",
            "--file-auto",
            "b.example.com",
            "--not-before",
            "2025-01-01T00:00:00Z",
            "--renewal-ordered",
            "--request-id",
            "req-1",
        ];
        let args = issue(&base);
        assert_eq!(
            args.domains,
            ["a.example.com", "b.example.com", "c.example.com"]
        );
        assert_eq!(args.algorithm, KeyAlgorithm::EccP384);
        assert_eq!(args.term, 2);
        assert_eq!(args.dns_auto, ["a.example.com"]);
        assert_eq!(args.file_auto, ["b.example.com"]);
        assert_eq!(
            args.not_before,
            Some(Timestamp {
                seconds: 1_735_689_600,
                nanos: 0
            })
        );
        assert!(args.renewal_ordered);
        assert_eq!(args.request_id.as_deref(), Some("req-1"));

        let mut free = base.to_vec();
        free.push("--free");
        assert!(!issue(&free).is_paid());
        free.push("--paid");
        assert!(issue(&free).is_paid());
    }

    #[test]
    fn issue_refuses_bad_values() {
        let ok = [
            "issue",
            "--account",
            "A",
            "--brand",
            "geotrust",
            "--level",
            "dv",
            "--domain",
            "x.example.com",
        ];
        assert!(parse(&ok).is_ok());
        for (flag, bad) in [
            ("--brand", "other"),
            ("--level", "xv"),
            ("--algorithm", "rsa-1024"),
            ("--not-after", "tomorrow"),
        ] {
            let mut args = ok.to_vec();
            args.extend([flag, bad]);
            assert!(parse(&args).is_err(), "{flag} {bad} was accepted");
        }
        assert!(parse(&ok[..7]).is_err(), "issue without --domain");
    }

    #[test]
    fn revoke_reasons() {
        let reason = |args: &[&str]| match parse(args).map(|cli| cli.command) {
            Ok(Command::Revoke(args)) => Some(args.revocation.reason),
            _ => None,
        };
        assert_eq!(reason(&["revoke", "c-1"]), Some(0));
        assert_eq!(
            reason(&["revoke", "c-1", "--reason", "superseded"]),
            Some(4)
        );
        assert_eq!(reason(&["revoke", "c-1", "--reason", "6"]), Some(6));
        assert_eq!(reason(&["revoke", "c-1", "--reason", "-3"]), Some(-3));
        assert_eq!(reason(&["revoke", "c-1", "--reason", "hold"]), None);
    }

    #[test]
    fn globals_and_list() {
        let cli = parse(&[
            "list",
            "--status",
            "Revocation-Pending",
            "--all",
            "--json",
            "--endpoint",
            "http://gw:1",
        ])
        .expect("valid command line");
        assert!(cli.json);
        assert_eq!(cli.endpoint.as_deref(), Some("http://gw:1"));
        match cli.command {
            Command::List(args) => {
                assert_eq!(args.status, Some(CertificateStatus::RevocationPending));
                assert!(args.all);
                assert!(args.page_size.is_none());
            }
            other => panic!("expected list, got {other:?}"),
        }
    }

    #[test]
    fn connection_flags() {
        let cli = parse(&[
            "get",
            "c-1",
            "--endpoint",
            "gw:1",
            "--token",
            "jwt-value",
            "--token-file",
            "/t",
            "--ca-cert",
            "/ca.pem",
            "--client-cert",
            "/c.pem",
            "--client-key",
            "/k.pem",
            "--tls-domain",
            "gw.example.com",
        ])
        .expect("valid command line");
        assert_eq!(cli.endpoint.as_deref(), Some("gw:1"));
        assert_eq!(cli.token.as_ref().map(Token::expose), Some("jwt-value"));
        assert_eq!(cli.token_file, Some(PathBuf::from("/t")));
        assert_eq!(cli.ca_cert, Some(PathBuf::from("/ca.pem")));
        assert_eq!(cli.client_cert, Some(PathBuf::from("/c.pem")));
        assert_eq!(cli.client_key, Some(PathBuf::from("/k.pem")));
        assert_eq!(cli.tls_domain.as_deref(), Some("gw.example.com"));
        // The token never appears in the parsed command line's Debug output.
        assert!(!format!("{cli:?}").contains("jwt-value"));

        assert!(
            parse(&["get", "c-1", "--client-cert", "/c.pem"]).is_err(),
            "--client-cert without --client-key"
        );
    }

    #[test]
    fn connection_flags_read_their_environment_variables() {
        let cmd = Cli::command();
        let arg = |id: &str| {
            cmd.get_arguments()
                .find(|arg| arg.get_id() == id)
                .unwrap_or_else(|| panic!("no argument {id}"))
        };
        for (id, env) in [
            ("endpoint", "CERTFLOW_ADDR"),
            ("token", "CERTFLOW_TOKEN"),
            ("token_file", "CERTFLOW_TOKEN_FILE"),
            ("ca_cert", "CERTFLOW_CA_CERT"),
            ("client_cert", "CERTFLOW_CLIENT_CERT"),
            ("client_key", "CERTFLOW_CLIENT_KEY"),
            ("tls_domain", "CERTFLOW_TLS_DOMAIN"),
        ] {
            assert_eq!(arg(id).get_env(), Some(std::ffi::OsStr::new(env)), "{id}");
            assert!(arg(id).is_global_set(), "{id} is global");
        }
        assert!(arg("token").is_hide_env_values_set());
    }
}
