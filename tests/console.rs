//! The web console in a real headless Chromium over WebDriver, each test a whole flow
//! through the service set (as `certd all` runs it) on a real nats-server: customers revoke
//! and reissue, a reviewer judges a stamped letter, refusals show in the forms, and every
//! page passes axe-core's serious and critical checks in both languages.

use std::time::Duration;

use base64::Engine as _;
use certflow_proto::v1::{
    Brand, DownloadCertificateRequest, DownloadFormat, IssueCertificateRequest, Level,
};
use certflow_testkit::Certflow;
use certflow_testkit::dns::AuthoritativeDns;
use fantoccini::key::Key;

use crate::support::browser::{Browser, screenshot_dir};
use crate::support::{self, certificate_of, dns_auto_dv, issue, legacy_record};

/// A service set with a console, the DNS server its validation asks, and the development
/// identities the sign-in page offers.
struct Stage {
    certflow: Certflow,
    dns: AuthoritativeDns,
    base: String,
    _identities: tempfile::TempDir,
}

impl Stage {
    async fn new() -> Self {
        let dns = AuthoritativeDns::start(&["example.com"])
            .await
            .expect("DNS server");
        let dns_address = dns.addr();
        let identities = tempfile::tempdir().expect("identities");
        let identities_dir = identities.path().to_path_buf();
        let certflow = Certflow::start_with(move |config| {
            config.gateway.commands_per_second = 100_000;
            config.gateway.queries_per_second = 100_000;
            config.validation.probe.dns_servers = vec![dns_address];
            config.validation.probe.timeout = Duration::from_secs(2);
            // A published record is found by "Validate now" (or, on its own, only after a
            // minute): the tests see what the button does, not a background recheck.
            config.validation.recheck_initial = Duration::from_secs(60);
            config.validation.recheck_max = Duration::from_secs(60);
            config.console = Some(certd::ConsoleSettings {
                listen: "127.0.0.1:0".parse().expect("address"),
                gateway: None,
                gateway_ca: None,
                dev_identities: Some(identities_dir),
            });
        })
        .await
        .expect("start certflow");
        for (name, account, role) in [
            ("alice", "acme", "customer"),
            ("bob", "globex", "customer"),
            ("rita", "reviewers", "reviewer"),
            ("ops", "platform", "admin"),
        ] {
            std::fs::write(
                identities.path().join(name),
                certflow.token(name, account, &[role]),
            )
            .expect("token file");
        }
        let address = certflow.console_address().expect("the console listens");
        Stage {
            certflow,
            dns,
            base: format!("http://{address}"),
            _identities: identities,
        }
    }

    async fn browser(&self, language: &str) -> Browser {
        Browser::start(&self.base, language).await
    }

    /// Issues `request` as an admin.
    async fn issued(&self, request: IssueCertificateRequest) -> String {
        let mut admin = self.certflow.certificates().await.expect("client");
        issue(&mut admin, request).await.id
    }
}

/// A DV certificate of acme's for `domain` with no automatic validation: revoking it takes
/// a DNS record or a file.
fn manual_dv(domain: &str) -> IssueCertificateRequest {
    certificate_of(Brand::Geotrust, Level::Dv, domain)
}

async fn sign_in(browser: &Browser, name: &str) {
    browser.open("/sign-in").await;
    browser.click(&format!("#sign-in-{name}")).await;
    for _ in 0..100 {
        if !browser.path().await.starts_with("/sign-in") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(browser.path().await, "/certificates", "signed in as {name}");
}

/// Waits up to 15 s for the browser to leave `path` (a form's answer arriving).
async fn left(browser: &Browser, path: &str) -> String {
    for _ in 0..150 {
        let now = browser.path().await;
        if now != path {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("still on {path}");
}

async fn sign_out(browser: &Browser) {
    browser.click("form[action='/sign-out'] button").await;
    browser.element("#sign-in-alice").await;
}

/// No serious or critical accessibility violation on the page.
async fn accessible(browser: &Browser, page: &str) {
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "{page}: {violations:#?}");
}

/// An image drawn by the browser itself: `image/jpeg` or `image/png` bytes of a stamped
/// letter.
async fn drawn_image(browser: &Browser, media_type: &str) -> Vec<u8> {
    let data_url = browser
        .client
        .execute(
            "const c = document.createElement('canvas'); c.width = 600; c.height = 400;
             const g = c.getContext('2d'); g.fillStyle = '#fff'; g.fillRect(0, 0, 600, 400);
             g.fillStyle = '#000'; g.font = '28px sans-serif';
             g.fillText('Application for revocation', 40, 80);
             g.strokeStyle = '#c00'; g.lineWidth = 8; g.beginPath();
             g.arc(450, 280, 80, 0, 2 * Math.PI); g.stroke();
             return c.toDataURL(arguments[0], 0.9);",
            vec![serde_json::json!(media_type)],
        )
        .await
        .expect("draw")
        .as_str()
        .expect("a data URL")
        .to_string();
    let encoded = data_url.split_once(',').expect("data URL").1;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64")
}

/// Chooses `content` as the file `name` in the upload form.
async fn choose_file(browser: &Browser, dir: &std::path::Path, name: &str, content: &[u8]) {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("file to upload");
    browser
        .element("#document")
        .await
        .send_keys(&path.display().to_string())
        .await
        .expect("choose the file");
}

async fn revoke_in_form(browser: &Browser, id: &str, reason: &str, method: &str) {
    browser.open(&format!("/certificates/{id}/revoke")).await;
    browser.click(&format!("#reason-{reason}")).await;
    browser
        .fill("#description", "the domain was sold to another company")
        .await;
    browser.click(&format!("#method-{method}")).await;
    browser.click("#submit-revocation").await;
    // Answered: the revocation's page, or the form again with the refusal.
    for _ in 0..150 {
        let answered = browser.path().await.ends_with("/revocation")
            || browser
                .client
                .find(fantoccini::Locator::Css("#refusal"))
                .await
                .is_ok();
        if answered {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the revocation of {id} was not answered");
}

#[tokio::test]
async fn rev10_a_customer_revokes_a_dv_certificate_with_automatic_dns_and_sees_it_revoked() {
    let stage = Stage::new().await;
    let id = stage.issued(dns_auto_dv("acme", "auto.example.com")).await;
    let browser = stage.browser("en-US").await;
    sign_in(&browser, "alice").await;

    let row = format!("tr[data-certificate='{id}']");
    assert!(browser.text(&row).await.contains("auto.example.com"));
    accessible(&browser, "my certificates").await;
    browser.click(&format!("{row} a.revoke")).await;
    assert_eq!(
        left(&browser, "/certificates").await,
        format!("/certificates/{id}/revoke")
    );
    accessible(&browser, "revocation request").await;
    browser.click("#reason-superseded").await;
    browser.click("#submit-revocation").await;
    left(&browser, &format!("/certificates/{id}/revoke")).await;

    let status = browser.wait_for_text("#status", "Revoked", 30, true).await;
    assert_eq!(status, "Revoked", "the revocation page ends revoked");
    assert!(browser.text("#revoked").await.contains("revoked"));
    accessible(&browser, "revocation done").await;

    // DEL-1: revoked, its row now offers deletion, and then it is gone from the list.
    browser.open("/certificates").await;
    browser
        .click(&format!("{row} form[action$='/delete'] button"))
        .await;
    let mut listed = true;
    for _ in 0..50 {
        browser.element("main h1").await;
        listed = browser
            .client
            .find(fantoccini::Locator::Css(&row))
            .await
            .is_ok();
        if !listed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        browser.client.refresh().await.ok();
    }
    assert!(!listed, "deleted, not listed");
    browser.quit().await;
}

#[tokio::test]
async fn rev11_a_dv_revocation_by_dns_shows_the_record_and_validate_now_revokes() {
    let stage = Stage::new().await;
    let id = stage.issued(manual_dv("manual.example.com")).await;
    let browser = stage.browser("en-US").await;
    sign_in(&browser, "alice").await;
    revoke_in_form(&browser, &id, "key-compromise", "dns").await;

    assert_eq!(
        browser.path().await,
        format!("/certificates/{id}/revocation")
    );
    let name = browser.text(".record-name").await;
    let value = browser.text(".record-value").await;
    assert_eq!(name, "_dnsauth.manual.example.com");
    assert!(!value.is_empty(), "the value to publish is shown");
    let deadline = browser
        .element("#deadline")
        .await
        .attr("data-deadline")
        .await
        .expect("attribute")
        .expect("a deadline");
    let left = deadline.parse::<i64>().expect("seconds") - support::unix_now();
    assert!(
        (3 * 86_400 - 120..=3 * 86_400).contains(&left),
        "3 days: {left}"
    );
    accessible(&browser, "domain validation").await;

    // Not published yet: the probe says what it saw.
    browser.click("#validate-now").await;
    assert!(browser.text("#probes").await.contains("not found yet"));

    stage.dns.set_txt(&name, &[value.as_str()]).await;
    browser.click("#validate-now").await;
    let probes = browser
        .wait_for_text("#probes", "manual.example.com: found", 15, false)
        .await;
    assert!(probes.contains("manual.example.com: found"), "{probes}");
    browser
        .open(&format!("/certificates/{id}/revocation"))
        .await;
    let status = browser.wait_for_text("#status", "Revoked", 30, true).await;
    assert_eq!(status, "Revoked");
    browser.quit().await;
}

#[tokio::test]
async fn rev10_rev13_a_dnspod_ov_revocation_goes_through_a_stamped_jpg_and_a_reviewer() {
    let stage = Stage::new().await;
    let id = stage
        .issued(certificate_of(Brand::Dnspod, Level::Ov, "doc.example.com"))
        .await;
    let browser = stage.browser("en-US").await;
    let files = tempfile::tempdir().expect("files");
    sign_in(&browser, "alice").await;
    revoke_in_form(&browser, &id, "cessation-of-operation", "dns").await;

    // The template, downloaded as a PDF.
    browser.click("#download-template").await;
    let template = std::fs::read(browser.downloaded(".pdf").await).expect("template");
    assert!(template.starts_with(b"%PDF"), "the template is a PDF");

    let jpg = drawn_image(&browser, "image/jpeg").await;
    choose_file(&browser, files.path(), "stamped.jpg", &jpg).await;
    browser.click("#upload").await;
    let approvals = browser.text("#approvals").await;
    assert!(approvals.contains("0 / 1"), "{approvals}");

    sign_out(&browser).await;
    sign_in(&browser, "rita").await;
    browser.open("/review").await;
    let queue = browser
        .wait_for_text("main", "doc.example.com", 15, true)
        .await;
    assert!(
        queue.contains("doc.example.com"),
        "the task is queued: {queue}"
    );
    accessible(&browser, "review queue").await;
    browser.click("#take-next").await;
    browser.element("#approve").await;
    // Loaded from the console like any image of the page, at the size it was drawn.
    let mut shown = serde_json::json!(false);
    for _ in 0..50 {
        shown = browser
            .client
            .execute(
                "const img = document.getElementById('document');
                 return img.complete && img.naturalWidth === 600 && img.naturalHeight === 400;",
                Vec::new(),
            )
            .await
            .expect("image state");
        if shown == serde_json::json!(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        shown,
        serde_json::json!(true),
        "the stamped JPG is shown inline"
    );
    accessible(&browser, "review task").await;
    browser.fill("#comment", "stamp and letter check out").await;
    browser.click("#approve").await;
    browser.element("#take-next").await;

    sign_out(&browser).await;
    sign_in(&browser, "alice").await;
    browser.open(&format!("/certificates/{id}")).await;
    let status = browser.wait_for_text("#status", "Revoked", 30, true).await;
    assert_eq!(status, "Revoked");
    assert!(
        browser
            .element("#downloads-refused")
            .await
            .is_displayed()
            .await
            .unwrap_or(false)
    );

    // The download by URL is refused as the gateway refuses it.
    let customer = stage.certflow.token("alice", "acme", &["customer"]);
    let refused = stage
        .certflow
        .certificates_as(Some(&customer))
        .await
        .expect("client")
        .download_certificate(DownloadCertificateRequest {
            id: id.clone(),
            format: DownloadFormat::Pem as i32,
            password: String::new(),
        })
        .await
        .expect_err("revoked: no download");
    browser
        .open(&format!("/certificates/{id}/files/certificate"))
        .await;
    assert_eq!(
        browser.text(".refusal .reason code").await,
        support::reason(&refused)
    );
    browser.quit().await;
}

#[tokio::test]
async fn rei7_a_reissue_with_a_generated_ecc_key_and_password_downloads_as_pkcs12() {
    let stage = Stage::new().await;
    let id = stage.issued(dns_auto_dv("acme", "shop.example.com")).await;
    let browser = stage.browser("en-US").await;
    sign_in(&browser, "alice").await;
    browser.open(&format!("/certificates/{id}/reissue")).await;
    accessible(&browser, "reissue request").await;
    browser.click("#key-generated").await;
    browser
        .element("#algorithm")
        .await
        .select_by_value("ecc-p256")
        .await
        .expect("algorithm");
    browser.fill("#key-password", "correct horse 42").await;
    browser.fill("#reissue-reason", "moving to ECC").await;
    browser.click("#submit-reissue").await;

    let new_path = left(&browser, &format!("/certificates/{id}/reissue")).await;
    assert!(
        new_path.starts_with("/certificates/") && new_path != format!("/certificates/{id}"),
        "the new certificate's page: {new_path}"
    );
    let status = browser.wait_for_text("#status", "Issued", 30, true).await;
    assert_eq!(status, "Issued");
    assert!(browser.text(".details").await.contains("ECC P-256"));
    browser.fill("#pkcs12-password", "correct horse 42").await;
    browser.click("#download-pkcs12").await;
    let archive = browser.downloaded(".p12").await;
    let archive = archive.display().to_string();
    let (opened, output) = support::openssl(&[
        "pkcs12",
        "-in",
        &archive,
        "-passin",
        "pass:correct horse 42",
        "-nodes",
        "-info",
    ]);
    assert!(opened, "openssl opens it with the password: {output}");
    assert!(output.contains("BEGIN PRIVATE KEY"), "the key is in it");
    let (opened, _) = support::openssl(&[
        "pkcs12",
        "-in",
        &archive,
        "-passin",
        "pass:wrong",
        "-nodes",
        "-info",
    ]);
    assert!(!opened, "and not with another password");
    browser.quit().await;
}

#[tokio::test]
async fn rev6_rev12_refusals_show_in_the_form_with_the_products_reason() {
    let stage = Stage::new().await;
    let mut admin = stage.certflow.certificates().await.expect("client");
    let legacy = legacy_record(
        &mut admin,
        &["cutoff.example.com"],
        (1_560_000_000, support::unix_now() + 30 * 86_400),
        |_| {},
    )
    .await;
    let dnspod = stage
        .issued(certificate_of(
            Brand::Dnspod,
            Level::Ov,
            "letter.example.com",
        ))
        .await;
    let browser = stage.browser("en-US").await;
    let files = tempfile::tempdir().expect("files");
    sign_in(&browser, "alice").await;

    // REV-6: a legacy certificate.
    revoke_in_form(&browser, &legacy.id, "superseded", "dns").await;
    assert_eq!(
        browser.text("#refusal .reason code").await,
        "LEGACY_CERT_CONTACT_SUPPORT"
    );
    assert!(browser.text("#refusal .message").await.contains("support"));
    assert!(
        browser
            .element("#description")
            .await
            .prop("value")
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
            .contains("sold"),
        "the form keeps what was typed"
    );
    accessible(&browser, "refused revocation").await;

    // REV-12: a document too large, refused in the page before it is sent…
    revoke_in_form(&browser, &dnspod, "cessation-of-operation", "dns").await;
    let mut large = drawn_image(&browser, "image/jpeg").await;
    large.resize(1_468_007, 0);
    choose_file(&browser, files.path(), "large.jpg", &large).await;
    assert!(browser.text("#document-check").await.contains("1.4 MiB"));
    assert!(
        !browser
            .element("#upload")
            .await
            .is_enabled()
            .await
            .expect("state")
    );
    // …and by the console when a page sends it anyway.
    browser
        .client
        .execute(
            "document.getElementById('upload').disabled = false;
             document.getElementById('upload-form').dataset.maxBytes = '999999999';",
            Vec::new(),
        )
        .await
        .expect("script");
    browser.click("#upload").await;
    assert_eq!(
        browser.text("#refusal .reason code").await,
        "DOCUMENT_TOO_LARGE"
    );

    // A PNG named .jpg is a PNG, which DNSPod's application may not be.
    let png = drawn_image(&browser, "image/png").await;
    choose_file(&browser, files.path(), "application.jpg", &png).await;
    browser.click("#upload").await;
    let reason = browser
        .wait_for_text(
            "#refusal .reason code",
            "DOCUMENT_FORMAT_NOT_ALLOWED",
            15,
            false,
        )
        .await;
    assert_eq!(reason, "DOCUMENT_FORMAT_NOT_ALLOWED");
    browser.quit().await;
}

#[tokio::test]
async fn gen3_bob_cannot_see_alices_certificate_by_url() {
    let stage = Stage::new().await;
    let id = stage
        .issued(dns_auto_dv("acme", "private.example.com"))
        .await;
    let browser = stage.browser("en-US").await;
    sign_in(&browser, "bob").await;
    assert!(
        browser
            .client
            .find(fantoccini::Locator::Css(&format!(
                "tr[data-certificate='{id}']"
            )))
            .await
            .is_err(),
        "not in bob's list"
    );
    for path in [
        format!("/certificates/{id}"),
        format!("/certificates/{id}/revoke"),
        format!("/certificates/{id}/revocation"),
        format!("/certificates/{id}/files/certificate"),
    ] {
        browser.open(&path).await;
        let page = browser.text("main").await;
        assert!(!page.contains("private.example.com"), "{path}: {page}");
        assert_eq!(
            browser.text("#refusal .reason code").await,
            "NOT_FOUND",
            "{path}"
        );
    }
    browser.quit().await;
}

#[tokio::test]
async fn the_revoke_form_is_completed_by_keyboard_alone() {
    let stage = Stage::new().await;
    let id = stage.issued(dns_auto_dv("acme", "keys.example.com")).await;
    let browser = stage.browser("en-US").await;
    sign_in(&browser, "alice").await;
    browser.open(&format!("/certificates/{id}/revoke")).await;

    async fn focused(browser: &Browser) -> String {
        browser
            .client
            .execute(
                "return document.activeElement && document.activeElement.id;",
                Vec::new(),
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
    async fn press(browser: &Browser, key: Key) {
        let active = browser.client.active_element().await.expect("focus");
        active
            .send_keys(&char::from(key).to_string())
            .await
            .expect("key");
    }
    // Tab to the first reason, arrow to "superseded", tab to the description and type.
    let mut tabs = 0;
    while focused(&browser).await != "reason-key-compromise" {
        press(&browser, Key::Tab).await;
        tabs += 1;
        assert!(tabs < 30, "the reasons are reachable by Tab");
    }
    press(&browser, Key::Down).await;
    press(&browser, Key::Down).await;
    assert_eq!(focused(&browser).await, "reason-superseded");
    press(&browser, Key::Tab).await;
    assert_eq!(focused(&browser).await, "description");
    browser
        .client
        .active_element()
        .await
        .expect("focus")
        .send_keys("typed without a mouse")
        .await
        .expect("type");
    while focused(&browser).await != "submit-revocation" {
        press(&browser, Key::Tab).await;
        tabs += 1;
        assert!(tabs < 60, "the submit button is reachable by Tab");
    }
    press(&browser, Key::Enter).await;
    left(&browser, &format!("/certificates/{id}/revoke")).await;
    let status = browser.wait_for_text("#status", "Revoked", 30, true).await;
    assert_eq!(status, "Revoked");
    assert!(browser.text("dl.details").await.contains("Superseded"));
    browser.quit().await;
}

#[tokio::test]
async fn every_page_in_both_languages_is_accessible_and_photographed() {
    let stage = Stage::new().await;
    let manual = stage.issued(manual_dv("pages.example.com")).await;
    let letter = stage
        .issued(certificate_of(
            Brand::Dnspod,
            Level::Ov,
            "letter.example.com",
        ))
        .await;
    // Wotrus revocations go straight to review: one task for each language's reviewer.
    let reviewed = [
        stage
            .issued(certificate_of(
                Brand::Wotrus,
                Level::Dv,
                "review.example.com",
            ))
            .await,
        stage
            .issued(certificate_of(
                Brand::Wotrus,
                Level::Dv,
                "review2.example.com",
            ))
            .await,
    ];
    let plain = stage.issued(dns_auto_dv("acme", "plain.example.com")).await;
    let mut written = Vec::new();
    for (language, lang_attr, label) in [("en-US", "en", "en"), ("zh-CN", "zh-Hans", "zh")] {
        let browser = stage.browser(language).await;
        browser.open("/sign-in").await;
        let html_lang = browser
            .element("html")
            .await
            .attr("lang")
            .await
            .expect("attr");
        assert_eq!(
            html_lang.as_deref(),
            Some(lang_attr),
            "Accept-Language {language}"
        );
        written.push(browser.screenshot(&format!("{label}-sign-in")).await);
        accessible(&browser, "sign-in").await;
        sign_in(&browser, "alice").await;
        if label == "en" {
            revoke_in_form(&browser, &manual, "superseded", "dns").await;
            revoke_in_form(&browser, &letter, "cessation-of-operation", "dns").await;
            for id in &reviewed {
                revoke_in_form(&browser, id, "cessation-of-operation", "dns").await;
            }
        }
        let customer_pages = [
            ("certificates", "/certificates".to_string()),
            ("certificate", format!("/certificates/{plain}")),
            ("revoke", format!("/certificates/{plain}/revoke")),
            ("reissue", format!("/certificates/{plain}/reissue")),
            (
                "revocation-dns",
                format!("/certificates/{manual}/revocation"),
            ),
            (
                "revocation-document",
                format!("/certificates/{letter}/revocation"),
            ),
            (
                "revocation-review",
                format!("/certificates/{}/revocation", reviewed[0]),
            ),
            ("not-found", "/certificates/no-such-certificate".to_string()),
        ];
        for (name, path) in customer_pages {
            browser.open(&path).await;
            let heading = browser.text("main h1").await;
            if name == "certificates" {
                let expected = if label == "zh" {
                    "我的证书"
                } else {
                    "My certificates"
                };
                assert_eq!(heading, expected, "{label}");
            }
            written.push(browser.screenshot(&format!("{label}-{name}")).await);
            accessible(&browser, &format!("{label} {name}")).await;
        }
        sign_out(&browser).await;
        sign_in(&browser, "rita").await;
        browser.open("/review").await;
        let queue = browser.wait_for_text("main", "example.com", 15, true).await;
        assert!(queue.contains("review"), "a task waits: {queue}");
        written.push(browser.screenshot(&format!("{label}-review-queue")).await);
        accessible(&browser, &format!("{label} review queue")).await;
        browser.click("#take-next").await;
        browser.element("#approve").await;
        written.push(browser.screenshot(&format!("{label}-review-task")).await);
        accessible(&browser, &format!("{label} review task")).await;
        sign_out(&browser).await;
        sign_in(&browser, "ops").await;
        browser.open("/bulk").await;
        browser.element("#submit-bulk").await;
        written.push(browser.screenshot(&format!("{label}-bulk")).await);
        accessible(&browser, &format!("{label} bulk")).await;

        // The switch turns the page into the other language and remembers it.
        browser.click(".who form[action='/language'] button").await;
        let mut switched = None;
        for _ in 0..150 {
            switched = browser
                .element("html")
                .await
                .attr("lang")
                .await
                .ok()
                .flatten();
            if switched.as_deref() != Some(lang_attr) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_ne!(
            switched.as_deref(),
            Some(lang_attr),
            "the switch changes language"
        );
        assert_eq!(browser.path().await, "/bulk", "and stays on the page");
        browser.quit().await;
    }
    for path in &written {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 10_000,
            "{} is a real screenshot ({size} bytes)",
            path.display()
        );
    }
    assert!(screenshot_dir().join("zh-revocation-dns.png").exists());
}

/// The session cookie a sign-in as `name` sets, with the whole `Set-Cookie` line.
async fn signed_in_cookie(http: &reqwest::Client, base: &str, name: &str) -> (String, String) {
    let page = http
        .get(format!("{base}/sign-in"))
        .send()
        .await
        .expect("sign-in page");
    let nonce_cookie = page
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("the sign-in form's cookie")
        .to_string();
    let nonce = nonce_cookie
        .split_once('=')
        .expect("name=value")
        .1
        .to_string();
    let signed_in = http
        .post(format!("{base}/sign-in"))
        .header("cookie", &nonce_cookie)
        .form(&[("identity", name), ("nonce", nonce.as_str())])
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed_in.status(), 303, "signed in and sent on");
    let line = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_string();
    let cookie = line.split(';').next().expect("name=value").to_string();
    (cookie, line)
}

#[tokio::test]
async fn sessions_are_strict_http_only_cookies_and_a_form_without_its_csrf_token_changes_nothing() {
    let stage = Stage::new().await;
    let id = stage.issued(dns_auto_dv("acme", "csrf.example.com")).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    let page = http
        .get(format!("{}/sign-in", stage.base))
        .send()
        .await
        .expect("page");
    let policy = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(
        !policy.contains("unsafe-inline"),
        "no inline script: {policy}"
    );
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");

    let (cookie, line) = signed_in_cookie(&http, &stage.base, "alice").await;
    let attributes = line.to_ascii_lowercase();
    assert!(attributes.contains("httponly"), "{line}");
    assert!(attributes.contains("samesite=strict"), "{line}");
    assert!(attributes.contains("path=/"), "{line}");
    let token = stage.certflow.token("alice", "acme", &["customer"]);

    // A page of another site posting as alice: no CSRF token, or another caller's.
    for csrf in ["", "0123456789abcdef"] {
        let forged = http
            .post(format!("{}/certificates/{id}/revoke", stage.base))
            .header("cookie", &cookie)
            .form(&[
                ("csrf", csrf),
                ("request_id", "forged-1"),
                ("reason", "key-compromise"),
                ("method", "dns"),
            ])
            .send()
            .await
            .expect("forged post");
        assert_eq!(forged.status(), 403, "refused");
    }
    let mut certs = stage.certflow.certificates().await.expect("client");
    let certificate = certs
        .get_certificate(certflow_proto::v1::GetCertificateRequest { id: id.clone() })
        .await
        .expect("get")
        .into_inner()
        .certificate
        .expect("certificate");
    assert_eq!(
        certificate.status,
        certflow_proto::v1::CertificateStatus::Issued as i32,
        "nothing changed"
    );
    assert!(certificate.revocation.is_none());

    // An upload larger than any document is cut off before it is read whole.
    let boundary = "certflow-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"document\"; filename=\"big.pdf\"\r\n\
         Content-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    body.resize(body.len() + 8 * 1024 * 1024, b'%');
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let upload = http
        .post(format!(
            "{}/certificates/{id}/revocation/document",
            stage.base
        ))
        .header("cookie", &cookie)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .expect("upload");
    assert_eq!(upload.status(), 422);
    let page = upload.text().await.unwrap_or_default();
    assert!(page.contains("DOCUMENT_TOO_LARGE"), "refused as too large");

    // Behind an identity-aware proxy the caller arrives in Authorization, no cookie.
    let list = http
        .get(format!("{}/certificates", stage.base))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .expect("list");
    assert_eq!(list.status(), 200);
    assert!(
        list.text()
            .await
            .unwrap_or_default()
            .contains("csrf.example.com")
    );
    // And a token that does not check out is nobody.
    let nobody = http
        .get(format!("{}/certificates", stage.base))
        .header("authorization", "Bearer not-a-token")
        .send()
        .await
        .expect("list");
    assert_eq!(nobody.status(), 303, "sent to sign in");
}

#[tokio::test]
async fn rei9_a_reissue_that_needs_validation_shows_its_record_and_validate_now_completes_it() {
    let stage = Stage::new().await;
    let mut admin = stage.certflow.certificates().await.expect("client");
    // Issued ten days ago: a new key must prove the domain again (REI-9).
    let original = legacy_record(
        &mut admin,
        &["older.example.com"],
        (
            support::unix_now() - 10 * 86_400,
            support::unix_now() + 200 * 86_400,
        ),
        |_| {},
    )
    .await;
    let browser = stage.browser("en-US").await;
    sign_in(&browser, "alice").await;
    browser
        .open(&format!("/certificates/{}/reissue", original.id))
        .await;
    browser.click("#key-generated").await;
    browser.fill("#reissue-reason", "new key").await;
    browser.click("#submit-reissue").await;

    let reissue_form = format!("/certificates/{}/reissue", original.id);
    assert_eq!(
        left(&browser, &reissue_form).await,
        format!("/certificates/{}", original.id)
    );
    let name = browser.text("#reissue-progress .record-name").await;
    let value = browser.text("#reissue-progress .record-value").await;
    assert_eq!(name, "_dnsauth.older.example.com");
    accessible(&browser, "reissue waiting for validation").await;
    stage.dns.set_txt(&name, &[value.as_str()]).await;
    browser.click("#validate-now").await;
    let probes = browser
        .wait_for_text("#probes", "older.example.com: found", 15, false)
        .await;
    assert!(probes.contains("older.example.com: found"), "{probes}");
    browser
        .open(&format!("/certificates/{}", original.id))
        .await;
    let reissued = browser
        .wait_for_text("dl.details", "Reissued as", 30, true)
        .await;
    assert!(
        reissued.contains("Reissued as"),
        "the new certificate is linked: {reissued}"
    );
    browser.quit().await;
}

#[tokio::test]
async fn gen6_an_admin_revokes_in_bulk_and_sees_each_result_as_it_comes() {
    let stage = Stage::new().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            stage
                .issued(dns_auto_dv("acme", &format!("bulk{n}.example.com")))
                .await,
        );
    }
    let browser = stage.browser("en-US").await;
    sign_in(&browser, "ops").await;
    browser.open("/bulk").await;
    let pasted = format!("{}\n{}\n{}\nno-such-certificate", ids[0], ids[1], ids[2]);
    browser.fill("#ids", &pasted).await;
    browser.click("#reason-superseded").await;
    browser.fill("#description", "the customer left").await;
    browser.click("#submit-bulk").await;

    let summary = browser.text("#bulk-summary").await;
    assert!(summary.contains("3 ✓ · 1 ✗"), "{summary}");
    let rows = browser
        .client
        .find_all(fantoccini::Locator::Css("table.list tbody tr"))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 5, "a row per certificate and the summary");
    let table = browser.text("table.list").await;
    assert!(
        table.contains("4 / 4"),
        "each row says how far along: {table}"
    );
    assert!(
        table.contains("NOT_FOUND"),
        "the unknown id is refused: {table}"
    );
    accessible(&browser, "bulk results").await;
    browser.screenshot("en-bulk-results").await;

    let mut admin = stage.certflow.certificates().await.expect("client");
    for id in &ids {
        let status = admin
            .get_certificate(certflow_proto::v1::GetCertificateRequest { id: id.clone() })
            .await
            .expect("get")
            .into_inner()
            .certificate
            .expect("certificate")
            .status;
        assert_ne!(
            status,
            certflow_proto::v1::CertificateStatus::Issued as i32,
            "{id} is revoked or on its way"
        );
    }
    browser.quit().await;
}

/// A TCP relay to the gateway that can be cut (every connection dropped, new ones refused)
/// and restored: the console's link to the gateway, lost and found again.
struct Link {
    address: std::net::SocketAddr,
    state: std::sync::Arc<std::sync::Mutex<(bool, certflow_bus::CancellationToken)>>,
}

impl Link {
    async fn to(target: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("relay");
        let address = listener.local_addr().expect("address");
        let state = std::sync::Arc::new(std::sync::Mutex::new((
            true,
            certflow_bus::CancellationToken::new(),
        )));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let (up, cut) = {
                    let guard = shared.lock().expect("state");
                    (guard.0, guard.1.clone())
                };
                if !up {
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = cut.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
        Link { address, state }
    }

    fn cut(&self) {
        let mut guard = self.state.lock().expect("state");
        guard.0 = false;
        guard.1.cancel();
    }

    fn restore(&self) {
        let mut guard = self.state.lock().expect("state");
        *guard = (true, certflow_bus::CancellationToken::new());
    }
}

#[tokio::test]
async fn gen1_a_lost_connection_says_so_and_the_page_retries_with_the_same_request_id() {
    let stage = Stage::new().await;
    let id = stage.issued(dns_auto_dv("acme", "flaky.example.com")).await;
    // A console of its own, reaching the gateway through a link that can be cut.
    let link = Link::to(stage.certflow.gateway_address()).await;
    let keys = stage.certflow.data.path().join("keys");
    let config = certflow_console::ConsoleConfig {
        gateway: format!("http://{}", link.address),
        gateway_ca: None,
        token_keys: vec![certflow_gateway::auth::KeySource::Ed25519Pem(
            certd::dev::key_paths(&keys).1,
        )],
        dev_identities: Some(stage._identities.path().to_path_buf()),
        secure_cookies: false,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let server = certflow_console::ConsoleServer::new(&config).expect("console");
    let stop = certflow_bus::CancellationToken::new();
    tokio::spawn(server.serve(listener, stop.clone()));

    let browser = Browser::start(&base, "en-US").await;
    sign_in(&browser, "alice").await;
    browser.open(&format!("/certificates/{id}/revoke")).await;
    let request_id = browser
        .element("input[name=request_id]")
        .await
        .prop("value")
        .await
        .expect("value")
        .expect("a request id");
    browser.click("#reason-superseded").await;

    link.cut();
    browser.click("#submit-revocation").await;
    assert!(
        browser
            .text("#refusal .retrying")
            .await
            .contains("same request")
    );
    let kept = browser
        .element("form[data-retry-form] input[name=request_id]")
        .await
        .prop("value")
        .await
        .expect("value");
    assert_eq!(
        kept.as_deref(),
        Some(request_id.as_str()),
        "the retry sends the same id"
    );

    link.restore();
    // The page sends the form again by itself, and the revocation goes through once.
    let status = browser.wait_for_text("#status", "Revoked", 30, false).await;
    assert_eq!(status, "Revoked");
    let mut admin = stage.certflow.certificates().await.expect("client");
    let requested: Vec<_> = admin
        .get_certificate_history(certflow_proto::v1::GetCertificateHistoryRequest {
            id: id.clone(),
        })
        .await
        .expect("history")
        .into_inner()
        .events
        .into_iter()
        .filter(|e| e.event_type == "RevocationRequested")
        .collect();
    assert_eq!(requested.len(), 1, "one revocation");
    assert_eq!(
        requested[0].request_id, request_id,
        "under the form's request id"
    );
    browser.quit().await;
    stop.cancel();
}
