//! One Chromium for every browser session of a run: started by onramp with a DevTools port,
//! in a process group of its own that dropping [`Chromium`] ends (helpers included), on
//! every exit path.
//!
//! Each [`super::Browser`] attached to it works in a browser context of its own, made over
//! the DevTools protocol (`Target.createBrowserContext`): its own cookies, storage and cache,
//! as a fresh incognito profile has. Runs over several targets then share one browser
//! process instead of starting one each, which on two cores is most of what a sign-in costs,
//! and still cannot see each other's sign-ins. chromedriver attaches to it
//! (`debuggerAddress`) and drives the context's page.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::driver::{find_chromium, stop_group};
use super::setup::{BrowserError, BrowserOptions, DevToolsEndpoint, chromium_args, new_profile};

/// How long Chromium may take to open its DevTools port.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Chromium's standard error, in its profile folder.
const LOG: &str = "onramp-chromium-stderr.log";
/// How long one DevTools command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Sessions attached to a shared Chromium start together, and end together, but none starts
/// while one ends: chromedriver 156 crashes (a null pointer, the driver and every session on
/// it gone) when a session starts in Chromium's headless shell while another context's page
/// is going away. A start is held from making the context to switching to its page, an end
/// from quitting the session to disposing of its context.
pub(super) static SESSIONS: Turns = Turns::new();

/// What is under way on the shared Chromium's sessions (see [`SESSIONS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Turn {
    Start = 0,
    End = 1,
}

/// Any number of one kind of [`Turn`] at once, never both kinds.
#[derive(Debug)]
pub(super) struct Turns {
    /// How many starts and how many ends are under way.
    under_way: std::sync::Mutex<[usize; 2]>,
    changed: tokio::sync::Notify,
}

/// A turn under way, until dropped.
#[derive(Debug)]
pub(super) struct TurnGuard {
    turns: &'static Turns,
    turn: Turn,
}

impl Turns {
    const fn new() -> Self {
        Self {
            under_way: std::sync::Mutex::new([0, 0]),
            changed: tokio::sync::Notify::const_new(),
        }
    }

    /// Wait until no turn of the other kind is under way, then take one of `turn`'s.
    pub(super) async fn take(&'static self, turn: Turn) -> TurnGuard {
        let other = 1 - turn as usize;
        loop {
            // Listen before looking, so that an end between the two is not missed.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut under_way = self.under_way.lock().unwrap_or_else(|p| p.into_inner());
                if under_way[other] == 0 {
                    under_way[turn as usize] += 1;
                    return TurnGuard { turns: self, turn };
                }
            }
            changed.await;
        }
    }
}

impl Drop for TurnGuard {
    fn drop(&mut self) {
        let mut under_way = self
            .turns
            .under_way
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        under_way[self.turn as usize] -= 1;
        drop(under_way);
        self.turns.changed.notify_waiters();
    }
}

/// A Chromium onramp started; dropping it stops it.
#[derive(Debug)]
pub struct Chromium {
    child: Option<Child>,
    endpoint: DevToolsEndpoint,
    /// The profile every context starts from, removed when this is dropped (after the
    /// browser has stopped).
    profile: tempfile::TempDir,
}

impl Chromium {
    /// Start Chromium, headless unless `options.headed`, and wait until its DevTools answer.
    pub async fn launch(options: &BrowserOptions) -> Result<Self, BrowserError> {
        let path = match &options.chromium {
            Some(path) => path.clone(),
            None => find_chromium(!options.headed)?,
        };
        let profile = new_profile()?;
        // What Chromium says on its way out (no display, a missing library) goes into the
        // error that names it.
        let log = std::fs::File::create(profile.path().join(LOG))
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null());
        let mut command = Command::new(&path);
        command
            .args(chromium_args(options))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            // Port 0: Chromium picks a free one and writes it into DevToolsActivePort.
            .arg("--remote-debugging-port=0")
            .arg("--remote-debugging-address=127.0.0.1")
            // No window of its own: each session opens a page in a context of its own.
            .arg("--no-startup-window")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0);
        let child = command.spawn().map_err(|source| BrowserError::Spawn {
            path: path.clone(),
            source,
        })?;
        let mut chromium = Self {
            child: Some(child),
            endpoint: DevToolsEndpoint {
                address: String::new(),
                browser: String::new(),
            },
            profile,
        };
        chromium.endpoint = chromium.wait_until_ready(&path).await?;
        Ok(chromium)
    }

    pub fn endpoint(&self) -> &DevToolsEndpoint {
        &self.endpoint
    }

    /// The profile folder it was started with (removed when this is dropped).
    pub fn profile_dir(&self) -> &Path {
        self.profile.path()
    }

    /// Read the port and browser path Chromium writes once its DevTools listen.
    async fn wait_until_ready(&mut self, path: &Path) -> Result<DevToolsEndpoint, BrowserError> {
        let file = self.profile.path().join("DevToolsActivePort");
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(exit)) = child.try_wait()
            {
                return Err(BrowserError::ChromiumStart {
                    path: path.to_path_buf(),
                    reason: format!("it exited ({exit}){}", self.log_tail()),
                });
            }
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let mut lines = text.lines();
            if let (Some(port), Some(browser)) = (lines.next(), lines.next())
                && port.parse::<u16>().is_ok()
                && browser.starts_with("/devtools/browser/")
            {
                return Ok(DevToolsEndpoint {
                    address: format!("127.0.0.1:{port}"),
                    browser: format!("ws://127.0.0.1:{port}{browser}"),
                });
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(BrowserError::ChromiumStart {
                    path: path.to_path_buf(),
                    reason: format!(
                        "it wrote no DevTools port into {} within {} s{}",
                        file.display(),
                        READY_TIMEOUT.as_secs(),
                        self.log_tail()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The last lines Chromium wrote to its standard error, for an error message.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.profile.path().join(LOG)).unwrap_or_default();
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .rev()
            .take(3)
            .collect();
        if lines.is_empty() {
            return String::new();
        }
        let lines: Vec<&str> = lines.into_iter().rev().collect();
        format!("; it said: {}", lines.join(" | "))
    }

    /// Stop Chromium and its helpers now (also done on drop). SIGTERM to the browser alone
    /// first: it then shuts down its helpers and removes its singleton folder in the temp
    /// directory itself; whatever is left after two seconds is killed, and the folder removed.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // The singleton socket links into a folder of Chromium's own under the temp directory.
        let singleton = std::fs::read_link(self.profile.path().join("SingletonSocket"))
            .ok()
            .and_then(|socket| socket.parent().map(Path::to_path_buf));
        if let Ok(raw) = i32::try_from(child.id()) {
            let _ = nix::sys::signal::kill(Pid::from_raw(raw), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        stop_group(child);
        if let Some(folder) = singleton
            && folder
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("org.chromium."))
        {
            let _ = std::fs::remove_dir_all(folder);
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        self.stop();
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A browser context of its own in a shared Chromium, and the page it opened there. The
/// context lives as long as this connection: Chromium disposes of it (its pages, cookies
/// and storage) when the connection closes, however this ends.
pub(super) struct Context {
    socket: Socket,
    next_id: u64,
    id: String,
    /// The page's target id, which chromedriver uses as its window handle.
    pub page: String,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("id", &self.id)
            .field("page", &self.page)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// Make a context and open a blank page of `window` size in it.
    pub async fn open(
        endpoint: &DevToolsEndpoint,
        window: (u32, u32),
    ) -> Result<Self, BrowserError> {
        let not_ready = |reason: String| BrowserError::DevTools {
            url: endpoint.browser.clone(),
            reason,
        };
        let (socket, _) = tokio::time::timeout(
            COMMAND_TIMEOUT,
            tokio_tungstenite::connect_async(&endpoint.browser),
        )
        .await
        .map_err(|_| not_ready("no answer".into()))?
        .map_err(|e| not_ready(e.to_string()))?;
        let mut context = Self {
            socket,
            next_id: 0,
            id: String::new(),
            page: String::new(),
        };
        let made = context
            .command(
                "Target.createBrowserContext",
                json!({ "disposeOnDetach": true }),
            )
            .await
            .map_err(not_ready)?;
        context.id = text_at(&made, "browserContextId").map_err(not_ready)?;
        let page = context
            .command(
                "Target.createTarget",
                json!({
                    "url": "about:blank",
                    "browserContextId": context.id,
                    "width": window.0,
                    "height": window.1,
                }),
            )
            .await
            .map_err(not_ready)?;
        context.page = text_at(&page, "targetId").map_err(not_ready)?;
        Ok(context)
    }

    /// Send a DevTools command on the browser's connection and wait for its result.
    async fn command(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({ "id": id, "method": method, "params": params }).to_string();
        let exchange = async {
            self.socket
                .send(Message::text(message))
                .await
                .map_err(|e| format!("{method}: {e}"))?;
            while let Some(received) = self.socket.next().await {
                let received = received.map_err(|e| format!("{method}: {e}"))?;
                let Message::Text(text) = received else {
                    continue;
                };
                let Ok(answer) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                // Events (no id) and other answers are not this command's.
                if answer.get("id").and_then(Value::as_u64) != Some(id) {
                    continue;
                }
                if let Some(error) = answer.get("error") {
                    return Err(format!("{method} was refused: {error}"));
                }
                return Ok(answer.get("result").cloned().unwrap_or(Value::Null));
            }
            Err(format!("{method}: the DevTools connection closed"))
        };
        tokio::time::timeout(COMMAND_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("{method}: no answer within {} s", COMMAND_TIMEOUT.as_secs()))?
    }

    /// Dispose of the context (its page, cookies and storage) and close the connection.
    pub async fn close(mut self) {
        let id = self.id.clone();
        let _ = self
            .command(
                "Target.disposeBrowserContext",
                json!({ "browserContextId": id }),
            )
            .await;
        let _ = self.socket.close(None).await;
    }
}

fn text_at(value: &Value, name: &str) -> Result<String, String> {
    value
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("the DevTools answer has no {name}: {value}"))
}

#[cfg(test)]
mod tests {
    use super::{Turn, Turns};
    use std::time::Duration;

    #[tokio::test]
    async fn starts_overlap_ends_overlap_but_never_a_start_and_an_end() {
        let turns: &'static Turns = Box::leak(Box::new(Turns::new()));
        let first = turns.take(Turn::Start).await;
        let second = tokio::time::timeout(Duration::from_millis(100), turns.take(Turn::Start))
            .await
            .expect("two starts at once");
        let end = tokio::spawn(turns.take(Turn::End));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !end.is_finished(),
            "an end waits while starts are under way"
        );
        drop(first);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!end.is_finished(), "and while one is");
        drop(second);
        let end = tokio::time::timeout(Duration::from_secs(1), end)
            .await
            .expect("the end goes once the starts are done")
            .expect("joined");
        let other_end = tokio::time::timeout(Duration::from_millis(100), turns.take(Turn::End))
            .await
            .expect("two ends at once");
        let start = tokio::spawn(turns.take(Turn::Start));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !start.is_finished(),
            "a start waits while ends are under way"
        );
        drop((end, other_end));
        tokio::time::timeout(Duration::from_secs(1), start)
            .await
            .expect("the start goes once the ends are done")
            .expect("joined");
    }
}
