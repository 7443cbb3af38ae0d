//! Ready-to-send drafts (RFC 5322 `.eml`, built with `mail-builder`): the request to sync the
//! app to the payer's demo environment, and the production-access request with every answer
//! of the onboarding manifest in its body and the artifacts attached. They open in any mail
//! client as drafts (`X-Unsent: 1`); onramp sends nothing. The addresses are the target's
//! (`[payer]`); a draft goes only to an address the target names, and a run that did not pass
//! drafts no production-access request (it says what is missing instead, [`not_drafted`]).

use std::path::Path;

use mail_builder::MessageBuilder;
use mail_builder::headers::raw::Raw;

use crate::checklist::{Checklist, ItemStatus};

/// Attachments larger than this are named in the body instead of attached.
const ATTACHMENT_LIMIT: u64 = 20 << 20;

/// A drafted message: its file name and bytes.
#[derive(Debug, Clone)]
pub struct Draft {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    /// Attachments named in the body because they were missing or too large.
    pub left_out: Vec<String>,
}

fn or_placeholder(text: &str, placeholder: &str) -> String {
    if text.trim().is_empty() {
        format!("[{placeholder}]")
    } else {
        text.trim().to_owned()
    }
}

fn from(checklist: &Checklist) -> String {
    let email = checklist.answers.support_email.trim();
    if email.contains('@') {
        email.to_owned()
    } else {
        "you@example.com".to_owned()
    }
}

fn draft(checklist: &Checklist, to: &str, subject: String) -> MessageBuilder<'static> {
    let app = or_placeholder(&checklist.answers.app_name, "app name");
    MessageBuilder::new()
        .from((app, from(checklist)))
        .to(to.to_owned())
        .subject(subject)
        .header("X-Unsent", Raw::new("1"))
        .header(
            "X-Mailer",
            Raw::new(concat!("onramp ", env!("CARGO_PKG_VERSION"))),
        )
}

/// The demo-environment sync request to `to`: company, description, client_id.
pub fn sandbox_sync(checklist: &Checklist, to: &str) -> Result<Draft, std::io::Error> {
    let a = &checklist.answers;
    let body = format!(
        "Hello,\n\nplease sync our application to the demo environment.\n\n\
         Company: {}\n\
         Application: {}\n\
         client_id: {}\n\n\
         About the application and its use case:\n{}\n\n\
         Thank you,\n{}\n",
        or_placeholder(&a.company, "company"),
        or_placeholder(&a.app_name, "app name"),
        or_placeholder(&a.client_id, "client_id from the developer portal"),
        or_placeholder(
            &a.description,
            "a short description of the application and its use case"
        ),
        or_placeholder(&a.company, "company"),
    );
    let subject = format!(
        "Demo environment sync: {} ({})",
        or_placeholder(&a.app_name, "app"),
        or_placeholder(&a.company, "company")
    );
    let bytes = draft(checklist, to, subject)
        .text_body(body)
        .write_to_vec()?;
    Ok(Draft {
        name: "sandbox-sync.eml",
        bytes,
        left_out: Vec::new(),
    })
}

fn media_type(path: &Path) -> &'static str {
    let head = std::fs::read(path)
        .map(|b| b.into_iter().take(64).collect::<Vec<u8>>())
        .unwrap_or_default();
    match crate::checklist::sniff(&head) {
        Some(crate::checklist::Kind::Pdf) => "application/pdf",
        Some(crate::checklist::Kind::Png) => "image/png",
        Some(crate::checklist::Kind::Jpeg) => "image/jpeg",
        Some(crate::checklist::Kind::Video) => match path.extension().and_then(|e| e.to_str()) {
            Some("webm") => "video/webm",
            Some("mov") => "video/quicktime",
            _ => "video/mp4",
        },
        Some(crate::checklist::Kind::Html) => "text/html",
        _ => "application/octet-stream",
    }
}

/// The production-access request to `to`: every answer in the body, the artifacts attached,
/// and the HTML report when there is one.
pub fn production_access(
    checklist: &Checklist,
    to: &str,
    report: Option<(&str, &[u8])>,
) -> Result<Draft, std::io::Error> {
    let mut body = String::from(
        "Hello,\n\nwe request production access for our application. Our answers and artifacts follow.\n\n",
    );
    for item in &checklist.items {
        let answer = match (&item.status, &item.value) {
            (ItemStatus::Complete, Some(value)) => value.clone(),
            (_, _) => format!(
                "[MISSING: {}]",
                item.todo.as_deref().unwrap_or("to be provided")
            ),
        };
        let attached = if item.attachment.is_some() && item.status == ItemStatus::Complete {
            " (attached)"
        } else {
            ""
        };
        body.push_str(&format!("* {}: {answer}{attached}\n", item.label));
    }
    let mut message = draft(
        checklist,
        to,
        format!(
            "Production access request: {} ({})",
            or_placeholder(&checklist.answers.app_name, "app"),
            or_placeholder(&checklist.answers.company, "company")
        ),
    );
    let mut left_out = Vec::new();
    for item in checklist
        .items
        .iter()
        .filter(|i| i.status == ItemStatus::Complete)
    {
        let Some(path) = &item.attachment else {
            continue;
        };
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let name = path
            .file_name()
            .map_or_else(|| item.key.clone(), |n| n.to_string_lossy().into_owned());
        if size > ATTACHMENT_LIMIT {
            left_out.push(format!(
                "{name} ({} MiB): too large to attach; send it by link",
                size >> 20
            ));
            continue;
        }
        match std::fs::read(path) {
            Ok(bytes) => message = message.attachment(media_type(path), name, bytes),
            Err(error) => left_out.push(format!("{name}: {error}")),
        }
    }
    if let Some((name, html)) = report {
        body.push_str("\nAttached too: onramp's conformance report of our connection to the demo environment.\n");
        message = message.attachment("text/html", name.to_owned(), html.to_vec());
    }
    if !left_out.is_empty() {
        body.push_str("\nNot attached:\n");
        for line in &left_out {
            body.push_str(&format!("* {line}\n"));
        }
    }
    body.push_str(&format!(
        "\nThank you,\n{}\n",
        or_placeholder(&checklist.answers.company, "company")
    ));
    let bytes = message.text_body(body).write_to_vec()?;
    Ok(Draft {
        name: "production-access.eml",
        bytes,
        left_out,
    })
}

/// The drafts of a run for `payer`: the sync request when the payer names its address; the
/// production-access request when it names its address and the run passed. What was not
/// drafted, and why, is the second part (for `emails/not-drafted.txt`).
pub fn drafts(
    checklist: &Checklist,
    payer: &crate::config::PayerContacts,
    passed: Result<(), String>,
    report: Option<(&str, &[u8])>,
) -> Result<(Vec<Draft>, Vec<String>), std::io::Error> {
    let mut drafts = Vec::new();
    let mut not_drafted = Vec::new();
    let whose = payer.name.as_deref().unwrap_or("the target's payer");
    match &payer.sandbox_sync_to {
        Some(to) => drafts.push(sandbox_sync(checklist, to)?),
        None => not_drafted.push(format!(
            "sandbox-sync.eml: the target names no address for {whose}'s demo-environment sync ([payer] sandbox_sync_to)"
        )),
    }
    match (&payer.production_access_to, passed) {
        (None, _) => not_drafted.push(format!(
            "production-access.eml: the target names no address for {whose}'s production-access requests ([payer] production_access_to)"
        )),
        (Some(_), Err(why)) => not_drafted.push(format!(
            "production-access.eml: not drafted, because a request for production access must rest on a run that passed, and this one {why}; fix that and run again"
        )),
        (Some(to), Ok(())) => drafts.push(production_access(checklist, to, report)?),
    }
    Ok((drafts, not_drafted))
}

/// The text of `emails/not-drafted.txt`: each draft not written, and why.
pub fn not_drafted(lines: &[String]) -> String {
    let mut text = String::from("onramp drafted no email for these:\n\n");
    for line in lines {
        text.push_str(&format!("* {line}\n"));
    }
    text
}
