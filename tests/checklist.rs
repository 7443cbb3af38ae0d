//! The production-access checklist: every check with a good and a bad artifact, the
//! `onramp checklist` command, and the email drafts parsed back with a MIME parser.

mod common;

use std::path::Path;

use mail_parser::MimeHeaders as _;
use onramp::checklist::{self, ItemStatus};

/// The payer guide's list, as the built-in 1upHealth targets name it.
fn guide() -> checklist::ItemList {
    checklist::ItemList::shipped("1up-guide").expect("shipped")
}

#[test]
fn a_payers_list_chooses_the_items_and_words_them() {
    let list = checklist::ItemList::parse(
        "[[item]]\nkey = \"privacy_policy\"\nlabel = \"Your privacy notice\"\n\n[[item]]\nkey = \"company\"\nlabel = \"Legal entity\"\n",
    )
    .expect("parses");
    let absent = checklist::check(None, &list).expect("absent");
    let labels: Vec<(&str, &str)> = absent
        .items
        .iter()
        .map(|i| (i.key.as_str(), i.label.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("privacy_policy", "Your privacy notice"),
            ("company", "Legal entity")
        ]
    );
    let unknown =
        checklist::ItemList::parse("[[item]]\nkey = \"favourite_colour\"\nlabel = \"x\"\n")
            .expect_err("an unknown key")
            .to_string();
    assert!(
        unknown.contains("favourite_colour") && unknown.contains("support_email"),
        "{unknown}"
    );
    let twice = checklist::ItemList::parse(
        "[[item]]\nkey = \"logo\"\nlabel = \"a\"\n[[item]]\nkey = \"logo\"\nlabel = \"b\"\n",
    )
    .expect_err("a key twice")
    .to_string();
    assert!(twice.contains("twice"), "{twice}");
    assert_eq!(
        guide().items.len(),
        checklist::KEYS.len(),
        "the guide asks for every key"
    );
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("header");
        writer
            .write_image_data(&vec![200u8; (width * height * 3) as usize])
            .expect("pixels");
    }
    bytes
}

/// A JPEG header with an SOF0 of the given size (all the checklist reads).
fn jpeg(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
    ];
    bytes.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08]);
    bytes.extend_from_slice(&height.to_be_bytes());
    bytes.extend_from_slice(&width.to_be_bytes());
    bytes.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xD9]);
    bytes
}

const PDF: &[u8] =
    b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
const MP4: &[u8] = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom\x00\x00\x00\x08free";

/// A complete manifest with its artifacts, in `dir`.
fn complete(dir: &Path) -> std::path::PathBuf {
    common::write(dir, "docs/questionnaire.pdf", "");
    std::fs::write(dir.join("docs/questionnaire.pdf"), PDF).expect("pdf");
    std::fs::create_dir_all(dir.join("media")).expect("media");
    std::fs::write(dir.join("media/demo.mp4"), MP4).expect("mp4");
    std::fs::write(dir.join("media/logo.png"), png(256, 256)).expect("logo");
    std::fs::write(dir.join("docs/privacy.pdf"), PDF).expect("privacy");
    common::write(
        dir,
        "onboarding.toml",
        r#"
company = "Acme Health Apps, Inc."
app_name = "Acme Claims Viewer"
description = "Acme Claims Viewer shows members their claims and coverage in plain language, so they can check what they owe."
personas = ["members", "caregivers"]
customers = "consumers"
consumer_cost = "free"
terms_of_service = "https://acme.example/terms"
privacy_policy = "docs/privacy.pdf"
logo = "media/logo.png"
support_email = "support@acme.example"
security_contact = "security@acme.example"
test_instance = "https://demo.acme.example"
share_answers = true
share_contacts = true
shared_contact = "support@acme.example"
payers = "all"
questionnaire = "docs/questionnaire.pdf"
screen_recording = "media/demo.mp4"
client_id = "acme-sandbox-client"
"#,
    )
}

fn status_of(checklist: &checklist::Checklist, key: &str) -> (ItemStatus, String) {
    let item = checklist
        .items
        .iter()
        .find(|i| i.key == key)
        .unwrap_or_else(|| panic!("no item {key}"));
    (
        item.status,
        format!(
            "{} / {}",
            item.detail,
            item.todo.clone().unwrap_or_default()
        ),
    )
}

#[test]
fn a_complete_manifest_is_complete() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = complete(dir.path());
    let checklist = checklist::check(Some(&manifest), &guide()).expect("reads");
    let open: Vec<_> = checklist
        .items
        .iter()
        .filter(|i| i.status != ItemStatus::Complete)
        .collect();
    assert!(open.is_empty(), "{open:#?}");
    assert_eq!(checklist.items.len(), 16, "every item of the payer's guide");
}

/// Replace one line of the complete manifest and check one item.
fn with_line(key: &str, line: &str) -> (ItemStatus, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = complete(dir.path());
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    let replaced: String = text
        .lines()
        .map(|l| {
            if l.starts_with(&format!("{key} =")) {
                line.to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&manifest, replaced).expect("write");
    std::fs::write(dir.path().join("not-a-pdf.pdf"), png(10, 10)).expect("fake pdf");
    std::fs::write(dir.path().join("wide.png"), png(512, 256)).expect("wide");
    std::fs::write(dir.path().join("small.png"), png(64, 64)).expect("small");
    std::fs::write(dir.path().join("square.jpg"), jpeg(300, 300)).expect("jpeg");
    std::fs::write(dir.path().join("tall.jpg"), jpeg(300, 600)).expect("jpeg");
    // The EBML header a WebM file starts with (its DocType is "webm"), then a cluster's worth.
    let mut webm = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02".to_vec();
    webm.resize(512, 0);
    std::fs::write(dir.path().join("clip.webm"), webm).expect("webm");
    std::fs::write(dir.path().join("notes.txt"), "just notes").expect("txt");
    let checklist = checklist::check(Some(&manifest), &guide()).expect("reads");
    let field = if key == "consumer_cost" {
        "customers"
    } else if key == "shared_contact" {
        "share_contacts"
    } else if key == "personas" {
        "description"
    } else {
        key
    };
    status_of(&checklist, field)
}

#[test]
fn each_check_tells_good_from_bad() {
    let cases: &[(&str, &str, ItemStatus, &str)] = &[
        (
            "questionnaire",
            "questionnaire = \"not-a-pdf.pdf\"",
            ItemStatus::Invalid,
            "is a PNG image, not a PDF",
        ),
        (
            "questionnaire",
            "questionnaire = \"gone.pdf\"",
            ItemStatus::Missing,
            "cannot read",
        ),
        (
            "questionnaire",
            "questionnaire = \"https://acme.example/q.pdf\"",
            ItemStatus::Invalid,
            "wants this attached",
        ),
        (
            "screen_recording",
            "screen_recording = \"clip.webm\"",
            ItemStatus::Complete,
            "a video",
        ),
        (
            "screen_recording",
            "screen_recording = \"notes.txt\"",
            ItemStatus::Invalid,
            "a text file, not a video",
        ),
        (
            "logo",
            "logo = \"square.jpg\"",
            ItemStatus::Complete,
            "300 x 300",
        ),
        (
            "logo",
            "logo = \"wide.png\"",
            ItemStatus::Invalid,
            "512 x 256 px: not square",
        ),
        (
            "logo",
            "logo = \"tall.jpg\"",
            ItemStatus::Invalid,
            "not square",
        ),
        (
            "logo",
            "logo = \"small.png\"",
            ItemStatus::Invalid,
            "smaller than 256 px",
        ),
        (
            "logo",
            "logo = \"docs/privacy.pdf\"",
            ItemStatus::Invalid,
            "not a PNG image or a JPEG image",
        ),
        (
            "terms_of_service",
            "terms_of_service = \"http://acme.example/terms\"",
            ItemStatus::Invalid,
            "use an https URL",
        ),
        (
            "terms_of_service",
            "terms_of_service = \"https://\"",
            ItemStatus::Invalid,
            "not a well-formed URL",
        ),
        (
            "terms_of_service",
            "terms_of_service = \"notes.txt\"",
            ItemStatus::Complete,
            "a text file",
        ),
        (
            "support_email",
            "support_email = \"support at acme\"",
            ItemStatus::Invalid,
            "not a well-formed email",
        ),
        (
            "support_email",
            "support_email = \"\"",
            ItemStatus::Missing,
            "empty",
        ),
        (
            "security_contact",
            "security_contact = \"sec@localhost\"",
            ItemStatus::Invalid,
            "not a well-formed email",
        ),
        ("company", "company = \"   \"", ItemStatus::Missing, "empty"),
        (
            "description",
            "description = \"An app.\"",
            ItemStatus::Invalid,
            "only 7 characters",
        ),
        (
            "personas",
            "personas = []",
            ItemStatus::Missing,
            "no personas",
        ),
        (
            "customers",
            "customers = \"everyone\"",
            ItemStatus::Invalid,
            "not consumers or intermediaries",
        ),
        (
            "consumer_cost",
            "consumer_cost = \"\"",
            ItemStatus::Missing,
            "no cost given",
        ),
        (
            "test_instance",
            "test_instance = \"none\"",
            ItemStatus::Complete,
            "no test instance",
        ),
        (
            "test_instance",
            "test_instance = \"ftp://demo\"",
            ItemStatus::Invalid,
            "https",
        ),
        (
            "share_answers",
            "share_answers = false",
            ItemStatus::Complete,
            "answered",
        ),
        (
            "shared_contact",
            "shared_contact = \"\"",
            ItemStatus::Missing,
            "which contact",
        ),
        (
            "payers",
            "payers = \"Demo Health Plan\"",
            ItemStatus::Complete,
            "answered",
        ),
        ("payers", "payers = \"\"", ItemStatus::Missing, "empty"),
    ];
    for (key, line, status, says) in cases {
        let (found, text) = with_line(key, line);
        assert_eq!(found, *status, "{line}: {text}");
        assert!(text.contains(says), "{line}: {text}");
    }
}

#[test]
fn no_manifest_means_every_item_is_missing_with_a_hint() {
    let checklist = checklist::check(None, &guide()).expect("absent");
    assert!(
        checklist
            .items
            .iter()
            .all(|i| i.status == ItemStatus::Missing)
    );
    assert!(
        checklist.items[0]
            .todo
            .as_deref()
            .unwrap_or_default()
            .contains("onramp init")
    );
}

#[test]
fn a_manifest_with_an_unknown_key_names_the_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = common::write(
        dir.path(),
        "onboarding.toml",
        "company = \"x\"\ncolour = \"blue\"\n",
    );
    let error = checklist::check(Some(&manifest), &guide())
        .expect_err("unknown key")
        .to_string();
    assert!(
        error.contains("onboarding.toml:2") && error.contains("colour"),
        "{error}"
    );
}

#[test]
fn the_checklist_command_prints_the_table_and_writes_the_drafts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = complete(dir.path());
    let out = dir.path().join("out");
    let output = common::onramp()
        .args(["checklist", "--manifest"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("runs");
    let text = common::stdout(&output);
    assert_eq!(common::code(&output), 0, "{text}");
    assert!(text.contains("16 of 16 items complete"), "{text}");
    assert!(out.join("checklist.md").is_file());

    let sync = std::fs::read(out.join("emails/sandbox-sync.eml")).expect("sync draft");
    let sync = mail_parser::MessageParser::default()
        .parse(&sync)
        .expect("parses as MIME");
    assert_eq!(
        sync.to().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("payer-patient-access@1up.health")
    );
    let body = sync.body_text(0).expect("text body");
    for expected in [
        "Acme Health Apps, Inc.",
        "acme-sandbox-client",
        "plain language",
    ] {
        assert!(body.contains(expected), "{expected} in {body}");
    }

    let production =
        std::fs::read(out.join("emails/production-access.eml")).expect("production draft");
    let production = mail_parser::MessageParser::default()
        .parse(&production)
        .expect("parses as MIME");
    assert_eq!(
        production
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some("cms-prod-access@1up.health")
    );
    assert_eq!(production.header_raw("X-Unsent").map(str::trim), Some("1"));
    let body = production.body_text(0).expect("text body");
    for expected in [
        "free",
        "support@acme.example",
        "security@acme.example",
        "https://demo.acme.example",
        "all payer customers",
        "(attached)",
    ] {
        assert!(body.contains(expected), "{expected} in {body}");
    }
    let names: Vec<String> = production
        .attachments()
        .filter_map(|a| a.attachment_name().map(str::to_owned))
        .collect();
    for expected in ["questionnaire.pdf", "demo.mp4", "logo.png", "privacy.pdf"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    let pdf = production
        .attachments()
        .find(|a| a.attachment_name() == Some("questionnaire.pdf"))
        .expect("pdf");
    assert_eq!(pdf.contents(), PDF);

    let empty = common::write(dir.path(), "empty.toml", "company = \"Acme\"\n");
    let incomplete = common::onramp()
        .args(["checklist", "--manifest"])
        .arg(&empty)
        .output()
        .expect("runs");
    assert_eq!(common::code(&incomplete), 1);
    assert!(common::stdout(&incomplete).contains("MISSING"));
}
