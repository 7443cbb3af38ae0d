//! The production-access checklist: every item the payer's guide asks for, read from the
//! onboarding manifest (`onboarding.toml`) and checked for real — files exist and are what
//! they claim (PDF, PNG/JPEG, video by their signatures), the logo is square and at least
//! 256 px, URLs are https, emails are well-formed, text is not empty. Pure checks over the
//! manifest and the files it names; it renders nothing and sends nothing.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The template `onramp init` writes.
pub const MANIFEST_TEMPLATE: &str = include_str!("../features/onboarding.toml");
/// The manifest's usual name.
pub const MANIFEST_NAME: &str = "onboarding.toml";
/// Smallest logo side the checklist accepts, in pixels.
pub const LOGO_MIN: u32 = 256;

/// Why the onboarding manifest cannot be used.
pub type ManifestError = crate::infra::file::FileError;

/// The manifest as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Manifest {
    pub company: String,
    pub app_name: String,
    pub description: String,
    pub personas: Vec<String>,
    pub customers: String,
    pub consumer_cost: String,
    pub terms_of_service: String,
    pub privacy_policy: String,
    pub logo: String,
    pub support_email: String,
    pub security_contact: String,
    pub test_instance: String,
    pub share_answers: Option<bool>,
    pub share_contacts: Option<bool>,
    pub shared_contact: String,
    pub payers: String,
    pub questionnaire: String,
    pub screen_recording: String,
    pub client_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemStatus {
    Complete,
    Missing,
    Invalid,
}

/// One item of the checklist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub key: String,
    /// The item as the payer's guide words it.
    pub label: String,
    pub status: ItemStatus,
    /// What the manifest says (a file, a URL, an answer), when it says something.
    pub value: Option<String>,
    /// What was found, or what is wrong.
    pub detail: String,
    /// What to do, when the item is not complete.
    pub todo: Option<String>,
    /// A file to attach to the production-access email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment: Option<PathBuf>,
}

/// The checklist for one manifest (or for none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checklist {
    /// The manifest it was read from; `None` when there is none yet.
    pub manifest: Option<PathBuf>,
    pub items: Vec<Item>,
    /// The answers, for the email drafts (empty without a manifest).
    pub answers: Manifest,
}

impl Checklist {
    pub fn complete(&self) -> bool {
        self.items.iter().all(|i| i.status == ItemStatus::Complete)
    }

    pub fn missing(&self) -> usize {
        self.items
            .iter()
            .filter(|i| i.status != ItemStatus::Complete)
            .count()
    }
}

/// What a payer asks for: the manifest keys of the items, in its order, with its labels.
/// Data of the target (`[payer] checklist`), never of onramp: the shipped lists are files
/// under `targets/checklists/`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ItemList {
    #[serde(rename = "item", default)]
    pub items: Vec<ListedItem>,
}

/// One item a payer asks for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListedItem {
    /// The manifest's key, which says how the item is checked.
    pub key: String,
    /// The item in the payer's words.
    pub label: String,
}

/// The shipped lists: `(name, TOML)`.
const SHIPPED_LISTS: [(&str, &str); 1] = [(
    "1up-guide",
    include_str!("../targets/checklists/1up-guide.toml"),
)];

/// The manifest keys onramp knows how to check.
pub const KEYS: [&str; 16] = [
    "company",
    "app_name",
    "client_id",
    "questionnaire",
    "screen_recording",
    "terms_of_service",
    "privacy_policy",
    "logo",
    "support_email",
    "security_contact",
    "description",
    "customers",
    "test_instance",
    "share_answers",
    "share_contacts",
    "payers",
];

/// Why a checklist file cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ItemListError {
    #[error("{0}")]
    Toml(String),
    #[error("item key \"{key}\" is not an answer of the onboarding manifest; the keys are: {keys}")]
    UnknownKey { key: String, keys: String },
    #[error("item key \"{0}\" is listed twice")]
    Twice(String),
}

impl ItemList {
    /// A list in TOML; an unknown key or a key given twice is an error naming it.
    pub fn parse(text: &str) -> Result<Self, ItemListError> {
        let list: ItemList =
            toml::from_str(text).map_err(|e| ItemListError::Toml(e.message().to_owned()))?;
        let mut seen = Vec::new();
        for item in &list.items {
            if !KEYS.contains(&item.key.as_str()) {
                return Err(ItemListError::UnknownKey {
                    key: item.key.clone(),
                    keys: KEYS.join(", "),
                });
            }
            if seen.contains(&item.key) {
                return Err(ItemListError::Twice(item.key.clone()));
            }
            seen.push(item.key.clone());
        }
        Ok(list)
    }

    /// A shipped list by name.
    pub fn shipped(name: &str) -> Option<Self> {
        SHIPPED_LISTS
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, text)| Self::parse(text).ok())
    }

    /// The shipped lists' names.
    pub fn shipped_names() -> Vec<&'static str> {
        SHIPPED_LISTS.iter().map(|(n, _)| *n).collect()
    }

    /// `items` (every key checked) as this list asks for them: its items, in its order, in
    /// its words.
    fn select(&self, items: Vec<Item>) -> Vec<Item> {
        self.items
            .iter()
            .filter_map(|wanted| {
                let mut item = items.iter().find(|i| i.key == wanted.key)?.clone();
                item.label = wanted.label.clone();
                Some(item)
            })
            .collect()
    }
}

/// The checklist of `list` before there is a manifest: every item missing.
pub fn absent(list: &ItemList) -> Checklist {
    Checklist {
        manifest: None,
        items: list
            .items
            .iter()
            .map(|listed| Item {
                key: listed.key.clone(),
                label: listed.label.clone(),
                status: ItemStatus::Missing,
                value: None,
                detail: "no onboarding manifest".into(),
                todo: Some(format!("run `onramp init` and fill in {MANIFEST_NAME}")),
                attachment: None,
            })
            .collect(),
        answers: Manifest::default(),
    }
}

/// Read `path` and check the items `list` asks for; `None` checks an absent manifest (every
/// item missing).
pub fn check(path: Option<&Path>, list: &ItemList) -> Result<Checklist, ManifestError> {
    let Some(path) = path else {
        return Ok(absent(list));
    };
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        what: "onboarding manifest",
        path: path.to_owned(),
        source,
    })?;
    // Parse as written first, so that an unknown key or a wrong type names its line.
    let as_written: Manifest = toml::from_str(&text).map_err(|e| ManifestError::Invalid {
        path: path.to_owned(),
        line: e.span().map(|s| text[..s.start].matches('\n').count() + 1),
        message: e.message().to_owned(),
    })?;
    let raw = toml::Value::try_from(&as_written).map_err(|e| ManifestError::Invalid {
        path: path.to_owned(),
        line: None,
        message: e.to_string(),
    })?;
    let expanded = expand(raw, path, &|name| std::env::var(name).ok())?;
    let manifest: Manifest =
        expanded
            .try_into()
            .map_err(|e: toml::de::Error| ManifestError::Invalid {
                path: path.to_owned(),
                line: None,
                message: e.message().to_owned(),
            })?;
    let base = path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    Ok(Checklist {
        manifest: Some(path.to_owned()),
        items: list.select(check_manifest(&manifest, &base)),
        answers: manifest,
    })
}

/// `${VAR}` in every string of the manifest.
fn expand(
    value: toml::Value,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<toml::Value, ManifestError> {
    Ok(match value {
        toml::Value::String(text) => {
            let mut missing = Vec::new();
            let expanded = crate::infra::env::expand(&text, env, &mut |name| {
                missing.push(name.to_owned());
            });
            let invalid = |message: String| ManifestError::Invalid {
                path: path.to_owned(),
                line: None,
                message,
            };
            if let Some(name) = missing.first() {
                return Err(invalid(format!(
                    "the environment variable {name} is not set"
                )));
            }
            toml::Value::String(expanded.map_err(|e| invalid(e.to_string()))?)
        }
        toml::Value::Array(items) => toml::Value::Array(
            items
                .into_iter()
                .map(|v| expand(v, path, env))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(table) => toml::Value::Table(
            table
                .into_iter()
                .map(|(k, v)| Ok((k, expand(v, path, env)?)))
                .collect::<Result<_, ManifestError>>()?,
        ),
        other => other,
    })
}

fn item(
    key: &str,
    status: ItemStatus,
    value: Option<String>,
    detail: impl Into<String>,
    todo: Option<String>,
) -> Item {
    Item {
        key: key.to_owned(),
        // The payer's list gives the label ([`ItemList::select`]).
        label: key.to_owned(),
        status,
        value,
        detail: detail.into(),
        todo,
        attachment: None,
    }
}

fn text_item(key: &str, value: &str, what: &str) -> Item {
    if value.trim().is_empty() {
        item(
            key,
            ItemStatus::Missing,
            None,
            format!("{key} is empty"),
            Some(format!("write {what} in {MANIFEST_NAME} ({key})")),
        )
    } else {
        item(
            key,
            ItemStatus::Complete,
            Some(value.trim().to_owned()),
            "given",
            None,
        )
    }
}

impl Checklist {
    /// The app's own recording (`recording-app.*`, made by the `@app` scenarios) answers
    /// the screen recording the payer asks for, when the manifest names none and the app
    /// `passed` its checks; a recording of an app that failed them is no evidence, and the
    /// item says so.
    pub fn recorded_app(&mut self, file: &Path, passed: bool) {
        let Some(item) = self
            .items
            .iter_mut()
            .find(|i| i.key == "screen_recording" && i.status != ItemStatus::Complete)
        else {
            return;
        };
        let name = file
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        if passed {
            item.status = ItemStatus::Complete;
            item.value = Some(name.clone());
            item.detail = format!(
                "{name}: onramp's recording of the app connecting and showing the member's data"
            );
            item.todo = None;
            item.attachment = Some(file.to_owned());
        } else {
            item.detail = format!("{name} shows the app failing its checks (see the report)");
            item.todo = Some("fix what the app's scenarios found, then run again: the recording of a passing run is the evidence".into());
        }
    }
}

fn check_manifest(m: &Manifest, base: &Path) -> Vec<Item> {
    let mut items = vec![
        text_item("company", &m.company, "your company's legal name"),
        text_item("app_name", &m.app_name, "the application's name"),
        text_item(
            "client_id",
            &m.client_id,
            "the sandbox client_id from the developer portal",
        ),
        file_item("questionnaire", &m.questionnaire, base, &[Kind::Pdf], false),
        file_item(
            "screen_recording",
            &m.screen_recording,
            base,
            &[Kind::Video],
            false,
        ),
        file_item(
            "terms_of_service",
            &m.terms_of_service,
            base,
            &[Kind::Pdf, Kind::Html, Kind::Text],
            true,
        ),
        file_item(
            "privacy_policy",
            &m.privacy_policy,
            base,
            &[Kind::Pdf, Kind::Html, Kind::Text],
            true,
        ),
        logo_item(&m.logo, base),
        email_item("support_email", &m.support_email),
        email_item("security_contact", &m.security_contact),
    ];
    items.push(description_item(m));
    items.push(customers_item(m));
    items.push(test_instance_item(m));
    items.push(share_answers_item(m));
    items.push(share_contacts_item(m));
    items.push(payers_item(m));
    items
}

/// The `description` item.
fn description_item(m: &Manifest) -> Item {
    let description = m.description.trim();
    let personas: Vec<&str> = m
        .personas
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect();
    match (description.len(), personas.is_empty()) {
        (0, _) => item(
            "description",
            ItemStatus::Missing,
            None,
            "description is empty",
            Some("describe the app's purpose and benefits (description)".into()),
        ),
        (n, _) if n < 40 => item(
            "description",
            ItemStatus::Invalid,
            Some(description.into()),
            format!("only {n} characters"),
            Some("say what the app does, for whom, and why it helps (a few sentences)".into()),
        ),
        (_, true) => item(
            "description",
            ItemStatus::Missing,
            Some(description.into()),
            "no personas",
            Some("list the personas the app serves (personas = [\"members\", ...])".into()),
        ),
        _ => item(
            "description",
            ItemStatus::Complete,
            Some(format!("{description} — personas: {}", personas.join(", "))),
            "given",
            None,
        ),
    }
}

/// The `customers` item.
fn customers_item(m: &Manifest) -> Item {
    match m.customers.trim() {
        "consumers" if m.consumer_cost.trim().is_empty() => item(
            "customers",
            ItemStatus::Missing,
            Some("consumers".into()),
            "direct consumers, but no cost given",
            Some("say what consumers pay (consumer_cost, e.g. \"free\")".into()),
        ),
        "consumers" => item(
            "customers",
            ItemStatus::Complete,
            Some(format!(
                "direct consumers; cost: {}",
                m.consumer_cost.trim()
            )),
            "given",
            None,
        ),
        "intermediaries" => item(
            "customers",
            ItemStatus::Complete,
            Some("intermediary, third-party organizations".into()),
            "given",
            None,
        ),
        "" => item(
            "customers",
            ItemStatus::Missing,
            None,
            "customers is empty",
            Some("set customers = \"consumers\" or \"intermediaries\"".into()),
        ),
        other => item(
            "customers",
            ItemStatus::Invalid,
            Some(other.into()),
            "not consumers or intermediaries",
            Some("set customers = \"consumers\" or \"intermediaries\"".into()),
        ),
    }
}

/// The `test_instance` item.
fn test_instance_item(m: &Manifest) -> Item {
    match m.test_instance.trim() {
        "" => item(
            "test_instance",
            ItemStatus::Missing,
            None,
            "test_instance is empty",
            Some("give an https URL of a demo instance, or \"none\"".into()),
        ),
        none if none.eq_ignore_ascii_case("none") || none.eq_ignore_ascii_case("no") => item(
            "test_instance",
            ItemStatus::Complete,
            Some("none".into()),
            "no test instance (the payer asks; saying no is an answer)",
            None,
        ),
        url => url_item("test_instance", url),
    }
}

/// The `share_answers` item.
fn share_answers_item(m: &Manifest) -> Item {
    match m.share_answers {
        Some(yes) => item(
            "share_answers",
            ItemStatus::Complete,
            Some(yes_no(yes)),
            "answered",
            None,
        ),
        None => item(
            "share_answers",
            ItemStatus::Missing,
            None,
            "not answered",
            Some("set share_answers = true or false".into()),
        ),
    }
}

/// The `share_contacts` item.
fn share_contacts_item(m: &Manifest) -> Item {
    match (m.share_contacts, m.shared_contact.trim()) {
        (None, _) => item(
            "share_contacts",
            ItemStatus::Missing,
            None,
            "not answered",
            Some("set share_contacts = true or false".into()),
        ),
        (Some(false), _) => item(
            "share_contacts",
            ItemStatus::Complete,
            Some("no".into()),
            "answered",
            None,
        ),
        (Some(true), "") => item(
            "share_contacts",
            ItemStatus::Missing,
            Some("yes".into()),
            "which contact is not said",
            Some("set shared_contact to the contact to share".into()),
        ),
        (Some(true), contact) => item(
            "share_contacts",
            ItemStatus::Complete,
            Some(format!("yes: {contact}")),
            "answered",
            None,
        ),
    }
}

/// The `payers` item.
fn payers_item(m: &Manifest) -> Item {
    match m.payers.trim() {
        "" => item(
            "payers",
            ItemStatus::Missing,
            None,
            "payers is empty",
            Some("set payers = \"all\" or the name of one payer".into()),
        ),
        all if all.eq_ignore_ascii_case("all") => item(
            "payers",
            ItemStatus::Complete,
            Some("all payer customers".into()),
            "answered",
            None,
        ),
        one => item(
            "payers",
            ItemStatus::Complete,
            Some(format!("only {one}")),
            "answered",
            None,
        ),
    }
}

fn yes_no(yes: bool) -> String {
    if yes { "yes".into() } else { "no".into() }
}

fn email_item(key: &str, value: &str) -> Item {
    let value = value.trim();
    if value.is_empty() {
        return item(
            key,
            ItemStatus::Missing,
            None,
            format!("{key} is empty"),
            Some(format!("give an email address ({key})")),
        );
    }
    match value.parse::<email_address::EmailAddress>() {
        Ok(address) if address.domain().contains('.') => item(
            key,
            ItemStatus::Complete,
            Some(value.into()),
            "a well-formed address",
            None,
        ),
        _ => item(
            key,
            ItemStatus::Invalid,
            Some(value.into()),
            "not a well-formed email address",
            Some(format!("write an address like name@example.com ({key})")),
        ),
    }
}

fn url_item(key: &str, value: &str) -> Item {
    match url::Url::parse(value) {
        Ok(url) if url.scheme() == "https" && url.host_str().is_some_and(|h| h.contains('.')) => {
            item(
                key,
                ItemStatus::Complete,
                Some(value.into()),
                "a well-formed https URL",
                None,
            )
        }
        Ok(url) if url.scheme() != "https" => item(
            key,
            ItemStatus::Invalid,
            Some(value.into()),
            format!("a {} URL", url.scheme()),
            Some("use an https URL".into()),
        ),
        _ => item(
            key,
            ItemStatus::Invalid,
            Some(value.into()),
            "not a well-formed URL",
            Some("write a full https URL".into()),
        ),
    }
}

/// What a file claims to be, judged by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pdf,
    Png,
    Jpeg,
    Video,
    Html,
    Text,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Pdf => "a PDF",
            Kind::Png => "a PNG image",
            Kind::Jpeg => "a JPEG image",
            Kind::Video => "a video (MP4, MOV, WebM, MKV or AVI)",
            Kind::Html => "an HTML page",
            Kind::Text => "a text file",
        }
    }
}

/// Identify a file by its signature.
pub fn sniff(bytes: &[u8]) -> Option<Kind> {
    if infer::archive::is_pdf(bytes) {
        Some(Kind::Pdf)
    } else if infer::image::is_png(bytes) {
        Some(Kind::Png)
    } else if infer::image::is_jpeg(bytes) {
        Some(Kind::Jpeg)
    } else if infer::is_video(bytes) {
        Some(Kind::Video)
    } else if infer::text::is_html(bytes) {
        Some(Kind::Html)
    } else if !bytes.is_empty() && std::str::from_utf8(&bytes[..bytes.len().min(4096)]).is_ok() {
        Some(Kind::Text)
    } else {
        None
    }
}

fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut head = Vec::new();
    std::fs::File::open(path)?
        .take(64 * 1024)
        .read_to_end(&mut head)?;
    Ok(head)
}

fn file_item(key: &str, value: &str, base: &Path, kinds: &[Kind], url_allowed: bool) -> Item {
    let value = value.trim();
    let wanted = kinds
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(" or ");
    if value.is_empty() {
        let todo = if url_allowed {
            format!("give an https URL or a file ({wanted}) for {key}")
        } else {
            format!("add the file ({wanted}) and name it in {key}")
        };
        return item(
            key,
            ItemStatus::Missing,
            None,
            format!("{key} is empty"),
            Some(todo),
        );
    }
    if value.contains("://") {
        return if url_allowed {
            url_item(key, value)
        } else {
            item(
                key,
                ItemStatus::Invalid,
                Some(value.into()),
                "a link, but the payer wants this attached",
                Some(format!("download it and name the file ({wanted}) in {key}")),
            )
        };
    }
    let path = base.join(value);
    match read_head(&path) {
        Err(error) => item(
            key,
            ItemStatus::Missing,
            Some(value.into()),
            format!("cannot read {}: {error}", path.display()),
            Some(format!(
                "put the file at {} or fix the path",
                path.display()
            )),
        ),
        Ok(head) => match sniff(&head) {
            Some(kind) if kinds.contains(&kind) => {
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                Item {
                    attachment: Some(path.clone()),
                    ..item(
                        key,
                        ItemStatus::Complete,
                        Some(value.into()),
                        format!("{}, {}", kind.name(), human_size(size)),
                        None,
                    )
                }
            }
            found => item(
                key,
                ItemStatus::Invalid,
                Some(value.into()),
                format!(
                    "{} is {}, not {wanted}",
                    path.display(),
                    found.map_or("of an unknown type", Kind::name)
                ),
                Some(format!("replace it with {wanted}")),
            ),
        },
    }
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    } else {
        format!("{:.0} KiB", (bytes as f64 / 1024.0).ceil())
    }
}

/// Width and height of a PNG or JPEG, from its header.
pub fn dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    if !matches!(sniff(bytes)?, Kind::Png | Kind::Jpeg) {
        return None;
    }
    let size = imagesize::blob_size(bytes).ok()?;
    Some((
        u32::try_from(size.width).ok()?,
        u32::try_from(size.height).ok()?,
    ))
}

fn logo_item(value: &str, base: &Path) -> Item {
    let value = value.trim();
    if value.contains("://") {
        let mut linked = url_item("logo", value);
        if linked.status == ItemStatus::Complete {
            linked.detail =
                "a link (its shape and size are not checked; attach the file to have them checked)"
                    .into();
        }
        return linked;
    }
    let mut file = file_item("logo", value, base, &[Kind::Png, Kind::Jpeg], true);
    if file.status != ItemStatus::Complete {
        return file;
    }
    let head = read_head(&base.join(value)).unwrap_or_default();
    match dimensions(&head) {
        Some((w, h)) if w != h => {
            file.status = ItemStatus::Invalid;
            file.detail = format!("{w} x {h} px: not square");
            file.todo = Some("crop or pad the logo to a square".into());
        }
        Some((w, _)) if w < LOGO_MIN => {
            file.status = ItemStatus::Invalid;
            file.detail = format!("{w} x {w} px: smaller than {LOGO_MIN} px");
            file.todo = Some(format!(
                "export the logo at {LOGO_MIN} x {LOGO_MIN} px or larger"
            ));
        }
        Some((w, h)) => file.detail = format!("{}, {w} x {h} px", file.detail),
        None => {
            file.status = ItemStatus::Invalid;
            file.detail = "its size could not be read".into();
            file.todo = Some("save it again as a standard PNG or JPEG".into());
        }
    }
    file
}

/// The checklist as a plain-text table for the terminal.
pub fn render_text(checklist: &Checklist) -> String {
    let mut out = String::new();
    match &checklist.manifest {
        Some(path) => out.push_str(&format!(
            "Production-access checklist from {}\n\n",
            path.display()
        )),
        None => out.push_str("Production-access checklist (no onboarding manifest yet)\n\n"),
    }
    let width = checklist
        .items
        .iter()
        .map(|i| i.label.chars().count())
        .max()
        .unwrap_or(0)
        .min(60);
    for item in &checklist.items {
        let mark = match item.status {
            ItemStatus::Complete => "ok     ",
            ItemStatus::Missing => "MISSING",
            ItemStatus::Invalid => "FIX    ",
        };
        let label: String = item.label.chars().take(60).collect();
        out.push_str(&format!("{mark}  {label:width$}  {}\n", item.detail));
        if let Some(todo) = &item.todo {
            out.push_str(&format!("{:9}{:width$}  -> {todo}\n", "", ""));
        }
    }
    out.push_str(&format!(
        "\n{} of {} items complete\n",
        checklist.items.len() - checklist.missing(),
        checklist.items.len()
    ));
    out
}

/// The checklist as Markdown (`checklist.md`).
pub fn render_markdown(checklist: &Checklist) -> String {
    let escape = |text: &str| text.replace('|', "\\|").replace('\n', " ");
    let mut out = String::from("# Production-access checklist\n\n");
    match &checklist.manifest {
        Some(path) => out.push_str(&format!("From `{}`. ", path.display())),
        None => out.push_str(
            "No onboarding manifest yet: run `onramp init` and fill in `onboarding.toml`. ",
        ),
    }
    out.push_str(&format!(
        "{} of {} items complete.\n\n| status | item | found | to do |\n|---|---|---|---|\n",
        checklist.items.len() - checklist.missing(),
        checklist.items.len()
    ));
    for item in &checklist.items {
        let status = match item.status {
            ItemStatus::Complete => "complete",
            ItemStatus::Missing => "**missing**",
            ItemStatus::Invalid => "**to fix**",
        };
        let found = match &item.value {
            Some(value) => format!("{} ({})", escape(value), escape(&item.detail)),
            None => escape(&item.detail),
        };
        out.push_str(&format!(
            "| {status} | {} | {found} | {} |\n",
            escape(&item.label),
            item.todo.as_deref().map(escape).unwrap_or_default()
        ));
    }
    out
}
