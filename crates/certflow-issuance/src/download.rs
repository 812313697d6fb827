//! DL-1: the files a server needs, built from the certificate's current state and, where
//! the product generated the key, the key store. Nothing is appended.

use certflow_bus::{Request, actor_from_headers, decode_request, refused, response};
use certflow_ca::CaError;
use certflow_ca::bundle::{self, BundleFile};
use certflow_domain::{CertificateId, DomainError, Reason, Rule, downloadable};
use certflow_proto::bus::v1::Reply;
use certflow_proto::v1::{
    DownloadCertificateRequest, DownloadCertificateResponse, DownloadFormat, DownloadedFile,
};
use tracing::warn;

use crate::Signing;
use crate::signing::open_record;

fn invalid(reason: Reason, message: &str) -> Reply {
    refused(&DomainError::invalid_by(Rule::Dl1, reason, message))
}

pub(crate) async fn answer(
    store: &certflow_store::EventStore,
    signing: &Signing,
    request: Request,
) -> Reply {
    let actor = actor_from_headers(request.headers.as_ref());
    let parsed = decode_request::<DownloadCertificateRequest>(&request)
        .and_then(|req| Ok((CertificateId::parse(&req.id)?, req)));
    let (id, req) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => return refused(&err),
    };
    let format = match DownloadFormat::try_from(req.format) {
        Ok(DownloadFormat::Pem) => DownloadFormat::Pem,
        Ok(DownloadFormat::Pkcs12) => DownloadFormat::Pkcs12,
        _ => {
            return invalid(
                Reason::InvalidArgument,
                "format is required: DOWNLOAD_FORMAT_PEM or DOWNLOAD_FORMAT_PKCS12",
            );
        }
    };
    let loaded = match store.load(&id).await {
        Ok(loaded) => loaded,
        Err(err) => {
            warn!(error = %err, "download could not read the log");
            return certflow_bus::unavailable("the event log is unavailable; try again");
        }
    };
    // Nothing is handed out once a revocation is requested (REV-8).
    let cert = match downloadable(&loaded.state, &id, &actor, certflow_runtime::now()) {
        Ok(cert) => cert,
        Err(err) => return refused(&err),
    };
    let Some(certificate_pem) = cert.pem.as_deref() else {
        return invalid(
            Reason::InvalidArgument,
            "this certificate was recorded without its X.509 certificate; nothing to download",
        );
    };
    let chain_pem = cert.chain_pem.as_deref().unwrap_or_default();
    let stored_key = match &cert.private_key_id {
        Some(key_id) => match open_record(&signing.keys, &signing.kek, key_id).await {
            Ok(Some(bytes)) => Some(String::from_utf8_lossy(&bytes).to_string()),
            Ok(None) => None,
            Err(err) => {
                warn!(error = %err, "download could not open a stored key");
                return certflow_bus::unavailable("the key store is unavailable; try again");
            }
        },
        None => None,
    };
    let name = cert
        .domains
        .first()
        .map(|d| d.as_str().replace('*', "wildcard"))
        .unwrap_or_else(|| id.to_string());
    let files: Vec<BundleFile> = match format {
        DownloadFormat::Pem => {
            bundle::pem_files(&name, certificate_pem, chain_pem, stored_key.as_deref())
        }
        _ => {
            if req.password.is_empty() {
                return invalid(
                    Reason::InvalidArgument,
                    "a PKCS#12 archive needs a password to protect it",
                );
            }
            let Some(stored_key) = stored_key else {
                return invalid(
                    Reason::InvalidArgument,
                    "the product does not hold this certificate's private key; download PEM and \\
                     build the archive with your key",
                );
            };
            let built = bundle::plain_private_key(&stored_key, &req.password).and_then(|key| {
                bundle::pkcs12(&name, certificate_pem, chain_pem, &key, &req.password)
            });
            match built {
                Ok(file) => vec![file],
                Err(CaError::WrongPassword) => {
                    return invalid(
                        Reason::WrongKeyPassword,
                        "the password does not open the private key issued with a password; \\
                         give that password",
                    );
                }
                Err(err) => {
                    warn!(error = %err, "PKCS#12 could not be built");
                    return certflow_bus::unavailable("the archive could not be built");
                }
            }
        }
    };
    response(&DownloadCertificateResponse {
        files: files
            .into_iter()
            .map(|f| DownloadedFile {
                name: f.name,
                content_type: f.content_type.to_string(),
                content: f.content,
            })
            .collect(),
    })
}
