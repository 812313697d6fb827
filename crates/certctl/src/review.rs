//! `certctl document …` and `certctl review …`: stamped documents and the review queue.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use certflow_proto::v1::{
    ApproveReviewRequest, DocumentFormat, GetDocumentTemplateRequest, GetRevocationDocumentRequest,
    NextReviewTaskRequest, RejectReviewRequest, ReviewTask, UploadRevocationDocumentRequest,
    WatchReviewQueueRequest,
};
use serde_json::{Value, json};

use crate::cli::{DecisionArgs, DocumentCommand, ReviewCommand};
use crate::commands::{ReviewClient, print_certificate, print_json, request_id};
use crate::names::display;
use crate::retry::patiently;

/// Runs a `document` subcommand.
pub async fn document(client: ReviewClient, command: DocumentCommand, json: bool) -> Result<()> {
    match command {
        DocumentCommand::Template { id, out } => {
            let template = patiently(
                client.clone(),
                GetDocumentTemplateRequest { certificate_id: id },
                |mut client, request| async move { client.get_document_template(request).await },
            )
            .await?
            .into_inner();
            let path = out.unwrap_or_else(|| PathBuf::from(safe_name(&template.file_name)));
            write(&path, &template.pdf)
        }
        DocumentCommand::Upload {
            id,
            file,
            request_id: given,
        } => {
            let content = std::fs::read(&file)
                .with_context(|| format!("could not read {}", file.display()))?;
            let response =
                patiently(
                    client.clone(),
                    UploadRevocationDocumentRequest {
                        request_id: request_id(given.as_deref()),
                        certificate_id: id,
                        file_name: file
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        content,
                    },
                    |mut client, request| async move {
                        client.upload_revocation_document(request).await
                    },
                )
                .await?;
            print_certificate(response.into_inner().certificate, json)
        }
        DocumentCommand::Get { id, out } => {
            let document = patiently(
                client.clone(),
                GetRevocationDocumentRequest { certificate_id: id },
                |mut client, request| async move { client.get_revocation_document(request).await },
            )
            .await?
            .into_inner();
            write(&out, &document.content)
        }
    }
}

/// Runs a `review` subcommand.
pub async fn review(mut client: ReviewClient, command: ReviewCommand, json: bool) -> Result<()> {
    match command {
        ReviewCommand::Next { out } => {
            let next = client
                .next_review_task(NextReviewTaskRequest {})
                .await?
                .into_inner();
            let Some(task) = next.task else {
                eprintln!("no task is waiting for you");
                return Ok(());
            };
            let mut saved = Vec::new();
            if let Some(certificate) = &task.certificate
                && !task.documents.is_empty()
            {
                let document =
                    patiently(
                        client.clone(),
                        GetRevocationDocumentRequest {
                            certificate_id: certificate.id.clone(),
                        },
                        |mut client, request| async move {
                            client.get_revocation_document(request).await
                        },
                    )
                    .await?
                    .into_inner();
                let extension = document
                    .document
                    .as_ref()
                    .map_or("bin", |d| extension(d.format));
                let path = out.join(format!("{}.{extension}", safe_name(&certificate.id)));
                std::fs::create_dir_all(&out)
                    .with_context(|| format!("could not create {}", out.display()))?;
                std::fs::write(&path, &document.content)
                    .with_context(|| format!("could not write {}", path.display()))?;
                saved.push(path);
            }
            if json {
                let mut value = task_json(&task);
                value["lease"] = json!(next.lease);
                value["saved"] = json!(
                    saved
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                );
                print_json(&value)
            } else {
                print!("{}", task_text(&task));
                for path in &saved {
                    println!("document     {}", path.display());
                }
                println!("lease        {}", next.lease);
                Ok(())
            }
        }
        ReviewCommand::Approve(args) => {
            let DecisionArgs {
                task,
                comment,
                lease,
                request_id: given,
            } = args;
            let response = patiently(
                client.clone(),
                ApproveReviewRequest {
                    request_id: request_id(given.as_deref()),
                    task_id: task,
                    comment,
                    lease,
                },
                |mut client, request| async move { client.approve_review(request).await },
            )
            .await?;
            print_certificate(response.into_inner().certificate, json)
        }
        ReviewCommand::Reject(args) => {
            let DecisionArgs {
                task,
                comment,
                lease,
                request_id: given,
            } = args;
            let response = patiently(
                client.clone(),
                RejectReviewRequest {
                    request_id: request_id(given.as_deref()),
                    task_id: task,
                    comment,
                    lease,
                },
                |mut client, request| async move { client.reject_review(request).await },
            )
            .await?;
            print_certificate(response.into_inner().certificate, json)
        }
        ReviewCommand::Watch => {
            let mut tasks = client
                .watch_review_queue(WatchReviewQueueRequest {})
                .await?
                .into_inner();
            while let Some(item) = tasks.message().await? {
                let Some(task) = item.task else { continue };
                if json {
                    println!("{}", task_json(&task));
                } else {
                    println!("{}", task_line(&task));
                }
            }
            Ok(())
        }
    }
}

fn write(path: &Path, content: &[u8]) -> Result<()> {
    if content.is_empty() {
        bail!("the server sent no content");
    }
    std::fs::write(path, content).with_context(|| format!("could not write {}", path.display()))?;
    println!("{}", path.display());
    Ok(())
}

/// A server-given name as a plain file name in the current directory.
fn safe_name(name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with('.') {
        format!("document{name}")
    } else {
        name
    }
}

fn extension(format: i32) -> &'static str {
    match DocumentFormat::try_from(format) {
        Ok(DocumentFormat::Jpeg) => "jpg",
        Ok(DocumentFormat::Gif) => "gif",
        Ok(DocumentFormat::Png) => "png",
        Ok(DocumentFormat::Pdf) => "pdf",
        _ => "bin",
    }
}

fn timestamp(ts: Option<&prost_types::Timestamp>) -> String {
    ts.map_or_else(|| "-".to_string(), ToString::to_string)
}

/// One task, aligned for reading.
pub fn task_text(task: &ReviewTask) -> String {
    let certificate = task.certificate.clone().unwrap_or_default();
    let rows = [
        ("task", task.task_id.clone()),
        ("certificate", certificate.id.clone()),
        ("account", certificate.account.clone()),
        (
            "brand/level",
            format!(
                "{} {}",
                display::<certflow_proto::v1::Brand>(certificate.brand),
                display::<certflow_proto::v1::Level>(certificate.level)
            ),
        ),
        ("domains", certificate.domains.join(", ")),
        ("requested by", task.requester_account.clone()),
        (
            "reason",
            display::<certflow_proto::v1::RevocationReason>(task.reason),
        ),
        ("description", task.description.clone()),
        (
            "approvals",
            format!("{} of {}", task.approvals.len(), task.approvals_needed),
        ),
        ("due by", timestamp(task.due_by.as_ref())),
    ];
    rows.iter()
        .map(|(label, value)| format!("{label:<12} {value}\n"))
        .collect()
}

/// One task on one line, for `review watch`.
pub fn task_line(task: &ReviewTask) -> String {
    let certificate = task.certificate.clone().unwrap_or_default();
    format!(
        "{}  {} {}  {}  by {}  {}/{} approvals  {}",
        task.task_id,
        display::<certflow_proto::v1::Brand>(certificate.brand),
        display::<certflow_proto::v1::Level>(certificate.level),
        certificate.domains.join(","),
        task.requester_account,
        task.approvals.len(),
        task.approvals_needed,
        display::<certflow_proto::v1::RevocationReason>(task.reason),
    )
}

/// One task as JSON.
pub fn task_json(task: &ReviewTask) -> Value {
    let certificate = task.certificate.clone().unwrap_or_default();
    json!({
        "task_id": task.task_id,
        "request_id": task.request_id,
        "certificate_id": certificate.id,
        "account": certificate.account,
        "domains": certificate.domains,
        "requester_account": task.requester_account,
        "reason": display::<certflow_proto::v1::RevocationReason>(task.reason),
        "description": task.description,
        "documents": task.documents.len(),
        "approvals": task.approvals.len(),
        "approvals_needed": task.approvals_needed,
        "due_by": timestamp(task.due_by.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use certflow_proto::v1::{CertificateSummary, ReviewVote};

    fn task() -> ReviewTask {
        ReviewTask {
            task_id: "c-1/1700000000000".into(),
            certificate: Some(CertificateSummary {
                id: "c-1".into(),
                account: "acme".into(),
                brand: certflow_proto::v1::Brand::Wotrus as i32,
                level: certflow_proto::v1::Level::Ev as i32,
                domains: vec!["www.example.com".into()],
                ..Default::default()
            }),
            requester_account: "acme".into(),
            reason: certflow_proto::v1::RevocationReason::Superseded as i32,
            approvals: vec![ReviewVote::default()],
            approvals_needed: 2,
            ..Default::default()
        }
    }

    #[test]
    fn a_task_reads_as_who_asked_what_and_how_far_it_is() {
        let text = task_text(&task());
        assert!(text.contains("task         c-1/1700000000000\n"), "{text}");
        assert!(text.contains("brand/level  wotrus ev\n"), "{text}");
        assert!(text.contains("approvals    1 of 2\n"), "{text}");
        assert_eq!(
            task_line(&task()),
            "c-1/1700000000000  wotrus ev  www.example.com  by acme  1/2 approvals  superseded"
        );
        assert_eq!(task_json(&task())["approvals_needed"], 2);
    }

    #[test]
    fn server_file_names_stay_in_the_directory() {
        let escaped = safe_name("../../etc/passwd");
        assert!(
            !escaped.contains('/') && !escaped.starts_with('.'),
            "{escaped}"
        );
        assert_eq!(safe_name("revocation-c-1.pdf"), "revocation-c-1.pdf");
        assert_eq!(safe_name(""), "document");
    }
}
