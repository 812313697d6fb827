//! The printable template of a stamped document (REV-10): a one-page PDF naming the
//! certificate and account, for the customer to print, fill in, sign and stamp.

use certflow_domain::{Certificate, DocumentKind};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 56.0;

/// The template for `cert`'s revocation document of `kind`, as PDF bytes.
pub fn document_template(cert: &Certificate, kind: DocumentKind) -> Vec<u8> {
    let title = match kind {
        DocumentKind::Application => "Application for certificate revocation",
        DocumentKind::ConfirmationLetter => "Confirmation letter: certificate revocation",
    };
    let domains = cert
        .domains
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let facts = [
        ("Account", cert.account.clone()),
        ("Certificate id", cert.id.to_string()),
        ("Brand and level", format!("{} {}", cert.brand, cert.level)),
        ("Domains", domains),
        (
            "Serial number",
            cert.serial_number.clone().unwrap_or_else(|| "-".into()),
        ),
    ];
    let declaration = [
        "We, the organisation named below, own the domains above and ask for this",
        "certificate to be revoked. We understand that a revoked certificate cannot be",
        "used again and that the revocation cannot be cancelled once submitted.",
    ];
    let fields = [
        "Reason for revocation:",
        "Organisation name:",
        "Authorised signatory (name and title):",
        "Signature:",
        "Date:",
    ];

    let catalog = Ref::new(1);
    let pages = Ref::new(2);
    let page = Ref::new(3);
    let font = Ref::new(4);
    let bold = Ref::new(5);
    let contents = Ref::new(6);
    let (regular_name, bold_name) = (Name(b"F1"), Name(b"F2"));

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(pages);
    pdf.pages(pages).kids([page]).count(1);
    let mut page_writer = pdf.page(page);
    page_writer
        .media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
        .parent(pages)
        .contents(contents);
    let mut resources = page_writer.resources();
    let mut fonts = resources.fonts();
    fonts.pair(regular_name, font);
    fonts.pair(bold_name, bold);
    fonts.finish();
    resources.finish();
    page_writer.finish();
    pdf.type1_font(font).base_font(Name(b"Helvetica"));
    pdf.type1_font(bold).base_font(Name(b"Helvetica-Bold"));

    let mut content = Content::new();
    let mut y = PAGE_HEIGHT - MARGIN - 10.0;
    let text = |content: &mut Content, font: Name<'_>, size: f32, x: f32, y: f32, s: &str| {
        content.begin_text();
        content.set_font(font, size);
        content.next_line(x, y);
        content.show(Str(latin(s).as_bytes()));
        content.end_text();
    };
    text(&mut content, bold_name, 16.0, MARGIN, y, title);
    y -= 34.0;
    for (label, value) in &facts {
        text(&mut content, bold_name, 10.0, MARGIN, y, label);
        text(&mut content, regular_name, 10.0, MARGIN + 110.0, y, value);
        y -= 16.0;
    }
    y -= 14.0;
    for line in declaration {
        text(&mut content, regular_name, 10.0, MARGIN, y, line);
        y -= 14.0;
    }
    y -= 16.0;
    for field in fields {
        text(&mut content, regular_name, 10.0, MARGIN, y, field);
        content.move_to(MARGIN + 200.0, y - 2.0);
        content.line_to(PAGE_WIDTH - MARGIN, y - 2.0);
        content.stroke();
        y -= 30.0;
    }
    // The box for the company stamp.
    let stamp_height = 140.0;
    y -= stamp_height;
    content.rect(PAGE_WIDTH - MARGIN - 200.0, y, 200.0, stamp_height);
    content.stroke();
    text(
        &mut content,
        regular_name,
        9.0,
        PAGE_WIDTH - MARGIN - 190.0,
        y + stamp_height - 14.0,
        "Company stamp",
    );
    text(
        &mut content,
        regular_name,
        8.0,
        MARGIN,
        MARGIN,
        "Upload the stamped document (JPG, PNG, GIF or PDF as your brand requires, at most 1.4 MiB) \
         with UploadRevocationDocument.",
    );
    pdf.stream(contents, &content.finish());
    pdf.finish()
}

/// Text the standard PDF fonts can show: printable ASCII, anything else as `?`.
fn latin(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use certflow_domain::{
        Brand, CertificateId, DomainName, KeyAlgorithm, Level, Source, Timestamp,
    };

    #[test]
    fn the_template_is_one_pdf_page_naming_the_certificate() {
        let cert = Certificate {
            id: CertificateId::parse("c-42").expect("id"),
            account: "Acmé Ltd".into(),
            brand: Brand::DnsPod,
            level: Level::Ov,
            paid: true,
            algorithm: KeyAlgorithm::EccP256,
            domains: vec![DomainName::parse("www.example.com").expect("name")],
            term_years: 1,
            source: Source::Platform,
            issued_at: Timestamp::from_unix_seconds(0),
            not_before: Timestamp::from_unix_seconds(0),
            not_after: Timestamp::from_unix_seconds(1),
            original: None,
            validation_setup: Default::default(),
            renewal_ordered: false,
            public_key_sha256: None,
            serial_number: Some("4a2f".into()),
            pem: None,
            chain_pem: None,
            private_key_id: None,
            revocation: None,
            failed_revocation: None,
            reissues: Default::default(),
            pending_reissue: None,
            enterprise_info: Default::default(),
            deleted: false,
            applied_commands: Default::default(),
        };
        let pdf = document_template(&cert, DocumentKind::Application);
        if let Ok(path) = std::env::var("CERTFLOW_TEMPLATE_PREVIEW") {
            std::fs::write(path, &pdf).expect("preview written");
        }
        let text = String::from_utf8_lossy(&pdf);
        assert!(pdf.starts_with(b"%PDF-"));
        assert_eq!(
            text.matches("/Type /Page\n").count() + text.matches("/Type /Page ").count(),
            1
        );
        assert!(text.contains("(c-42)"));
        assert!(
            text.contains("(Acm? Ltd)"),
            "non-Latin text is replaced, not garbled"
        );
        assert!(text.contains("Application for certificate revocation"));
    }
}
