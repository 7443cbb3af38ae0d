//! The app under test's process and settings for one run (`[app]`): its placeholders filled
//! (`${app.port}`, the target's endpoints), started by its command when a scenario first
//! needs it, and stopped with everything it started when the run ends (even on a panic).
//! What the app should show of the member is kept here once read ([`Expected`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;
use url::Url;

use super::StepFailure;
use crate::app::MemberName;
use crate::config::AppSettings;
use crate::infra::origin::without_query as url_without_query;

/// The app of the target, its placeholders filled, and its process once started.
#[derive(Debug)]
pub struct AppHost {
    settings: Option<AppSettings>,
    /// The start URL, placeholders filled.
    url: Result<Url, String>,
    command: Vec<String>,
    env: BTreeMap<String, String>,
    started: OnceCell<Result<(), StepFailure>>,
    process: std::sync::Mutex<Option<std::process::Child>>,
    /// The command's output, for a message when it ends before answering.
    log: Option<tempfile::NamedTempFile>,
    pub(super) expected: OnceCell<Expected>,
    /// What the app may show of the member's resources of each type, once read (or why not).
    pub(super) marks: tokio::sync::Mutex<BTreeMap<String, Result<Vec<String>, String>>>,
    /// The codes and tokens the embedded sandbox issues (to the app too), when it is the
    /// target: what the app's pages may show is redacted with them.
    issued: Option<crate::sandbox::IssuedSecrets>,
}

/// What the app should show of the member: their name and what of their claims an app may
/// show, as the payer holds them.
#[derive(Debug, Clone)]
pub struct Expected {
    pub name: Option<MemberName>,
    /// Where the name came from (the payer's Patient, or the target's `[member]`).
    pub name_source: String,
    pub claim_marks: Vec<String>,
    /// Why there are no claim marks, when there are none.
    pub claims_problem: Option<String>,
}

impl AppHost {
    /// The target's app, with `${app.port}` a free loopback port and `${target.…}` the
    /// target's endpoints.
    /// `endpoint("authorize")` (`token`, `fhir_base`) is the target's.
    pub fn new(settings: Option<&AppSettings>, endpoint: &dyn Fn(&str) -> String) -> Self {
        // 0 when none can be had: the app then fails to listen, and says so.
        let port = crate::infra::process::free_port().unwrap_or(0);
        let fill = |text: &str| crate::config::fill_app_placeholders(text, port, endpoint);
        let url = settings.map_or_else(
            || Err("no [app]".to_owned()),
            |s| Url::parse(&fill(&s.url)).map_err(|e| format!("app.url: {e}")),
        );
        Self {
            url,
            command: settings
                .map_or_else(Vec::new, |s| s.command.iter().map(|c| fill(c)).collect()),
            env: settings.map_or_else(BTreeMap::new, |s| {
                s.env.iter().map(|(k, v)| (k.clone(), fill(v))).collect()
            }),
            log: settings
                .filter(|s| !s.command.is_empty())
                .and_then(|_| tempfile::NamedTempFile::new().ok()),
            settings: settings.cloned(),
            started: OnceCell::new(),
            process: std::sync::Mutex::new(None),
            expected: OnceCell::new(),
            marks: tokio::sync::Mutex::new(BTreeMap::new()),
            issued: None,
        }
    }

    /// Redact, from now on, what `issued` says the sandbox gave out (the app's code and
    /// tokens, which onramp never sees otherwise).
    pub fn with_issued(mut self, issued: Option<crate::sandbox::IssuedSecrets>) -> Self {
        self.issued = issued;
        self
    }

    /// Teach `recorder` the codes and tokens issued so far, before the app's pages are read.
    pub fn learn_secrets(&self, recorder: &crate::evidence::Recorder) {
        for secret in self
            .issued
            .iter()
            .flat_map(crate::sandbox::IssuedSecrets::now)
        {
            recorder.add_secret(&secret);
        }
    }

    /// The app's settings, or (no `[app]`) the reason its scenarios are skipped.
    pub fn settings(&self) -> Result<&AppSettings, StepFailure> {
        self.settings.as_ref().ok_or_else(|| {
            StepFailure::blocked(
                "the target has no [app]: give its url (and how to start it) to drive your app through the payer's sign-in",
            )
        })
    }

    /// The app's start URL, once it answers there (started first, by its command, when it
    /// has one).
    pub async fn ready(&self) -> Result<Url, StepFailure> {
        let settings = self.settings()?;
        let url = self.url.clone().map_err(StepFailure::usage)?;
        self.started
            .get_or_init(|| self.start(settings, &url))
            .await
            .clone()?;
        Ok(url)
    }

    async fn start(&self, settings: &AppSettings, url: &Url) -> Result<(), StepFailure> {
        let deadline = Instant::now() + settings.timeout;
        if let Some((program, args)) = self.command.split_first() {
            use std::os::unix::process::CommandExt as _;
            let (out, err) = match &self.log {
                Some(log) => (
                    log.reopen().map(std::process::Stdio::from),
                    log.reopen().map(std::process::Stdio::from),
                ),
                None => (
                    Ok(std::process::Stdio::null()),
                    Ok(std::process::Stdio::null()),
                ),
            };
            let child = std::process::Command::new(program)
                .args(args)
                .current_dir(&settings.dir)
                .envs(&self.env)
                .stdin(std::process::Stdio::null())
                .stdout(out.unwrap_or_else(|_| std::process::Stdio::null()))
                .stderr(err.unwrap_or_else(|_| std::process::Stdio::null()))
                .process_group(0)
                .spawn()
                .map_err(|e| {
                    StepFailure::usage(format!(
                        "[app] command {program} did not start in {} ({e}): check the program is installed and the path is right",
                        settings.dir.display()
                    ))
                })?;
            *self.process.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        }
        loop {
            if let Some(exit) = self.exited() {
                return Err(StepFailure::app(format!(
                    "{} ended ({exit}) before answering at {}{}",
                    settings.name,
                    url_without_query(url),
                    self.log_tail()
                )));
            }
            match answers(url).await {
                Ok(()) => return Ok(()),
                Err(reason) if Instant::now() >= deadline || self.command.is_empty() => {
                    return Err(if self.command.is_empty() {
                        StepFailure::usage(format!(
                            "nothing answers at {} ({reason}): start {} first, or give [app] command so that onramp starts it",
                            url_without_query(url),
                            settings.name
                        ))
                    } else {
                        StepFailure::app(format!(
                            "{} did not answer at {} within {} of starting ({reason}){}",
                            settings.name,
                            url_without_query(url),
                            crate::infra::words::seconds(settings.timeout),
                            self.log_tail()
                        ))
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// How the app's process ended, if it has.
    fn exited(&self) -> Option<std::process::ExitStatus> {
        let mut process = self.process.lock().unwrap_or_else(|p| p.into_inner());
        process
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten())
    }

    /// The last lines of the command's output, queries and fragments cut (they can carry
    /// codes), for a message.
    fn log_tail(&self) -> String {
        let Some(log) = &self.log else {
            return String::new();
        };
        let text = std::fs::read_to_string(log.path()).unwrap_or_default();
        let lines: Vec<String> = text
            .lines()
            .rev()
            .take(5)
            .map(|line| {
                let cut: String = line.split(['?', '#']).next().unwrap_or_default().into();
                crate::infra::text::truncate(&cut, 200)
            })
            .collect();
        if lines.is_empty() {
            String::new()
        } else {
            format!(
                "; its output ends: {}",
                lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )
        }
    }
}

impl Drop for AppHost {
    fn drop(&mut self) {
        let child = self
            .process
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(child) = child {
            crate::infra::process::stop_group(child);
        }
    }
}

/// Whether something accepts connections at `url`'s host and port.
async fn answers(url: &Url) -> Result<(), String> {
    let host = url.host_str().ok_or("the URL has no host")?.to_owned();
    let port = url.port_or_known_default().ok_or("the URL has no port")?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    match tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 2 s".into()),
    }
}
