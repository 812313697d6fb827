//! Stamped documents: a staged upload judged by its content and recorded (REV-12), where a
//! recorded one is, and the printable template a customer stamps.

use certflow_bus::{
    Request, actor_from_headers, bound_command_meta, decode_request, refused, response, unavailable,
};
use certflow_domain::review::MAX_DOCUMENT_BYTES;
use certflow_domain::{
    Actor, Certificate, CertificateId, Command, DocumentFormat, DomainError, Reason, Role,
    UploadRevocationDocument, decide,
};
use certflow_proto::bus::v1::{DocumentLocation, Reply, StagedDocumentUpload};
use certflow_proto::convert::{certificate_to_proto, document_to_api};
use certflow_proto::v1::UploadRevocationDocumentResponse;

use crate::ReviewService;

/// REV-12: judges a staged upload by its content and records it. A recorded document is
/// copied into the documents bucket before its event is appended, so a recorded document is
/// always there to read. The upload expires with its bucket's age limit; a copy that was not
/// recorded after all (the rules refused between the preview and the append) is left
/// unreferenced, as deleting takes a purge right no service has.
pub(crate) async fn upload_document(service: &ReviewService, request: Request) -> Reply {
    let parsed = decode_request::<StagedDocumentUpload>(&request).and_then(|req| {
        // The staging name is new on every upload: a retry is the same request without it.
        let canonical = StagedDocumentUpload {
            object: String::new(),
            ..req.clone()
        };
        let meta = bound_command_meta(&request, &req.request_id, &canonical)?;
        let id = CertificateId::parse(&req.certificate_id)?;
        tracing::debug!(file = %req.file_name, size = req.size, "document uploaded");
        Ok((meta, id, req.object, req.size))
    });
    let (meta, id, object, declared_size) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => return refused(&err),
    };
    if let Some(first) = service.runtime.first_outcome(&meta).await {
        return first;
    }
    let stored = match service.uploads.get(&object, MAX_DOCUMENT_BYTES).await {
        Ok(Some(stored)) => stored,
        Ok(None) => {
            return refused(&DomainError::invalid(
                Reason::InvalidArgument,
                "the uploaded document was not found; upload it again",
            ));
        }
        Err(err) => return unavailable(err.to_string()),
    };
    let size = declared_size.max(stored.content.len() as u64);
    let fits = size <= MAX_DOCUMENT_BYTES;
    let command = Command::UploadRevocationDocument(UploadRevocationDocument {
        id: id.clone(),
        format: sniff(&stored.content),
        size,
        sha256: stored.sha256.clone(),
        object: object.clone(),
    });
    // A document the rules refuse as things stand is never copied.
    if let Err(refusal) = service.runtime.preview(&meta, &id, &command).await {
        return refusal;
    }
    // Only a document that can be recorded is copied.
    if fits && let Err(err) = service.documents.put(&object, &stored.content).await {
        return unavailable(err.to_string());
    }
    service
        .runtime
        .run(
            &meta,
            &id,
            |state, ctx| Ok(decide(state, &command, ctx)?),
            |cert, now| UploadRevocationDocumentResponse {
                certificate: Some(certificate_to_proto(cert, now)),
            },
        )
        .await
}

/// The format of `content`, judged by its bytes, if it is one a document may have. A file
/// that is two formats at once is none: a PDF or an image that is also a ZIP archive (a
/// reader of one sees a document, an unzipper something else), or an image that a PDF
/// reader opens as a PDF.
pub fn sniff(content: &[u8]) -> Option<DocumentFormat> {
    let format = match infer::get(content)?.mime_type() {
        "image/jpeg" => DocumentFormat::Jpeg,
        "image/gif" => DocumentFormat::Gif,
        "image/png" => DocumentFormat::Png,
        "application/pdf" => DocumentFormat::Pdf,
        _ => return None,
    };
    if ends_as_zip(content) || (format != DocumentFormat::Pdf && opens_as_pdf(content)) {
        return None;
    }
    Some(format)
}

/// Whether `content` ends with a ZIP archive's end-of-central-directory record, as ZIP
/// readers look for it: its signature within the last 64 KiB and 22 bytes, followed by
/// exactly the comment it announces.
fn ends_as_zip(content: &[u8]) -> bool {
    const SIGNATURE: &[u8] = b"PK\x05\x06";
    const RECORD: usize = 22;
    let start = content.len().saturating_sub(RECORD + usize::from(u16::MAX));
    content[start..]
        .windows(SIGNATURE.len())
        .enumerate()
        .filter(|(_, window)| *window == SIGNATURE)
        .any(|(offset, _)| {
            let at = start + offset;
            let comment = content
                .get(at + 20..at + 22)
                .map(|len| usize::from(u16::from_le_bytes([len[0], len[1]])));
            comment.is_some_and(|comment| at + RECORD + comment == content.len())
        })
}

/// Whether a PDF reader opens `content` as a PDF: they look for `%PDF-` anywhere in the
/// first kilobyte.
fn opens_as_pdf(content: &[u8]) -> bool {
    content[..content.len().min(1024)]
        .windows(5)
        .any(|window| window == b"%PDF-")
}

/// The certificate a query names (by `certificate_id` of its request `Req`), who asks, and
/// the certificate as the log has it now; or the reply refusing the query.
async fn load_named<Req: prost::Message + Default>(
    service: &ReviewService,
    request: &Request,
    certificate_id: fn(&Req) -> &str,
) -> Result<(CertificateId, Actor, certflow_store::Loaded), Reply> {
    let id = decode_request::<Req>(request)
        .and_then(|req| CertificateId::parse(certificate_id(&req)))
        .map_err(|err| refused(&err))?;
    let actor = actor_from_headers(request.headers.as_ref());
    let loaded = service
        .runtime
        .store
        .load(&id)
        .await
        .map_err(|err| unavailable(err.to_string()))?;
    Ok((id, actor, loaded))
}

/// Where the document of a certificate's revocation is: for its owner and for reviewers.
pub(crate) async fn locate_document(service: &ReviewService, request: Request) -> Reply {
    let (id, actor, loaded) = match load_named(
        service,
        &request,
        |req: &certflow_proto::v1::GetRevocationDocumentRequest| &req.certificate_id,
    )
    .await
    {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    // Reviewers see a document while its review is open; the owner always.
    let under_review = |cert: &Certificate| {
        cert.pending_revocation()
            .and_then(|r| r.review.as_ref())
            .is_some_and(|r| r.outcome.is_none())
    };
    let may_see = |cert: &Certificate| {
        !cert.deleted
            && (actor.may_access(&cert.account) || (is_reviewer(&actor) && under_review(cert)))
    };
    let Some(cert) = loaded.state.as_ref().filter(|cert| may_see(cert)) else {
        return refused(&DomainError::not_found(&id));
    };
    match cert.revocation.as_ref().and_then(|r| r.document.as_ref()) {
        Some(document) => response(&DocumentLocation {
            document: Some(document_to_api(document)),
            object: document.object.clone(),
        }),
        None => refused(&DomainError::not_found_named(format!(
            "certificate {id} has no revocation document"
        ))),
    }
}

/// The printable template of the document `cert`'s revocation needs, for its owner.
pub(crate) async fn document_template(service: &ReviewService, request: Request) -> Reply {
    let (id, actor, loaded) = match load_named(
        service,
        &request,
        |req: &certflow_proto::v1::GetDocumentTemplateRequest| &req.certificate_id,
    )
    .await
    {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let Some(cert) = loaded
        .state
        .as_ref()
        .filter(|cert| !cert.deleted && actor.may_access(&cert.account))
    else {
        return refused(&DomainError::not_found(&id));
    };
    let kind = certflow_domain::review::document_kind(cert);
    let file_name = match kind {
        certflow_domain::DocumentKind::Application => format!("revocation-application-{id}.pdf"),
        certflow_domain::DocumentKind::ConfirmationLetter => {
            format!("revocation-confirmation-letter-{id}.pdf")
        }
    };
    response(&certflow_proto::v1::GetDocumentTemplateResponse {
        kind: certflow_proto::convert::document_kind_to_proto(kind) as i32,
        file_name,
        pdf: crate::template::document_template(cert, kind),
    })
}

pub(crate) fn is_reviewer(actor: &Actor) -> bool {
    actor
        .roles
        .iter()
        .any(|role| matches!(role, Role::Reviewer | Role::Admin))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PDF: &[u8] =
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
    /// A JPEG: start of image, a comment segment, end of image.
    fn jpeg(comment: &[u8]) -> Vec<u8> {
        let mut jpeg = vec![0xff, 0xd8, 0xff, 0xfe];
        let length = u16::try_from(comment.len() + 2).expect("short comment");
        jpeg.extend_from_slice(&length.to_be_bytes());
        jpeg.extend_from_slice(comment);
        jpeg.extend_from_slice(&[0xff, 0xd9]);
        jpeg
    }
    /// The smallest ZIP archive: an end-of-central-directory record and no entries, with a
    /// comment of `comment` bytes.
    fn zip_trailer(comment: &[u8]) -> Vec<u8> {
        let mut record = b"PK\x05\x06".to_vec();
        record.extend_from_slice(&[0; 16]);
        record.extend_from_slice(&u16::try_from(comment.len()).expect("short").to_le_bytes());
        record.extend_from_slice(comment);
        record
    }

    #[test]
    fn rev12_a_file_that_is_two_formats_at_once_is_no_document() {
        assert_eq!(sniff(PDF), Some(DocumentFormat::Pdf));
        assert_eq!(sniff(&jpeg(b"scan")), Some(DocumentFormat::Jpeg));
        for trailer in [zip_trailer(b""), zip_trailer(b"a comment")] {
            let pdf_zip = [PDF, &trailer].concat();
            assert_eq!(sniff(&pdf_zip), None, "a PDF that is a ZIP archive too");
            let jpeg_zip = [jpeg(b"scan").as_slice(), &trailer].concat();
            assert_eq!(sniff(&jpeg_zip), None, "a JPEG that is a ZIP archive too");
        }
        assert_eq!(
            sniff(&jpeg(b"%PDF-1.7 1 0 obj")),
            None,
            "a JPEG a PDF reader opens"
        );
        // The signature alone, not where a ZIP reader would find a record, is just bytes.
        let stray = [PDF, b"PK\x05\x06 in a stream\n"].concat();
        assert_eq!(sniff(&stray), Some(DocumentFormat::Pdf));
    }
}
