//! Helpers shared by the integration tests.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `onramp` binary cargo built for these tests.
pub fn onramp() -> Command {
    Command::new(env!("CARGO_BIN_EXE_onramp"))
}

/// Run `onramp` with `args` in `dir` (the repository root when `None`).
pub fn run(args: &[&str]) -> Output {
    onramp()
        .args(args)
        .current_dir(repo())
        .output()
        .expect("onramp runs")
}

/// Run `onramp` with `input` on standard input.
pub fn run_with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = onramp()
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("onramp starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("stdin accepts input");
    child.wait_with_output().expect("onramp finishes")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("fixture directory");
    }
    std::fs::write(&path, content).expect("fixture written");
    path
}

pub mod run;

/// Driving the embedded sandbox over real HTTP, as an app would.
pub mod sandbox {
    use onramp::sandbox::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Sandbox, SandboxConfig};
    use serde_json::Value;

    pub const REDIRECT: &str = "http://127.0.0.1:9/callback";

    /// An HTTP client that does not follow redirects.
    pub fn http() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client")
    }

    pub async fn start(config: SandboxConfig) -> Sandbox {
        Sandbox::start(config).await.expect("the sandbox starts")
    }

    /// The `request` id in a landing or identity page.
    pub fn request_id(page: &str) -> String {
        let marker = "name=\"request\" value=\"";
        let start = page.find(marker).expect("the page carries a request id") + marker.len();
        let end = page[start..].find('"').expect("quoted") + start;
        page[start..end].replace("&#x3D;", "=")
    }

    /// Open the authorization URL with `extra` query parameters; returns the response.
    pub async fn authorize(sandbox: &Sandbox, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut query: Vec<(&str, &str)> =
            vec![("client_id", DEMO_CLIENT_ID), ("redirect_uri", REDIRECT)];
        query.extend_from_slice(extra);
        http()
            .get(sandbox.authorize_url())
            .query(&query)
            .send()
            .await
            .expect("authorize answers")
    }

    /// Submit the identity form; returns the response (a redirect on success).
    pub async fn verify(
        sandbox: &Sandbox,
        request: &str,
        identity: [&str; 5],
    ) -> reqwest::Response {
        let [first, last, birth, member, zip] = identity;
        http()
            .post(format!("{}/identity", sandbox.authorize_url()))
            .form(&[
                ("request", request),
                ("first_name", first),
                ("last_name", last),
                ("birth_date", birth),
                ("member_id", member),
                ("zip", zip),
                ("action", "verify"),
            ])
            .send()
            .await
            .expect("identity answers")
    }

    pub const JOHN: [&str; 5] = ["John", "Allen", "10/19/1950", "123456789123", "02114"];

    /// Sign in as `identity` with `extra` authorization parameters; returns the code.
    pub async fn code_for(
        sandbox: &Sandbox,
        identity: [&str; 5],
        extra: &[(&str, &str)],
    ) -> String {
        let landing = authorize(sandbox, extra)
            .await
            .text()
            .await
            .expect("landing page");
        let response = verify(sandbox, &request_id(&landing), identity).await;
        assert_eq!(response.status(), 302, "identity verified");
        let location = response.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let url = url::Url::parse(&location).expect("redirect URL");
        url.query_pairs()
            .find(|(k, _)| k == "code")
            .expect("code in the redirect")
            .1
            .into_owned()
    }

    /// Exchange a code with the demo client's secret in the body.
    pub async fn exchange(
        sandbox: &Sandbox,
        code: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = vec![
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
            ("grant_type", "authorization_code"),
            ("code", code),
        ];
        form.extend_from_slice(extra);
        http()
            .post(sandbox.token_url())
            .form(&form)
            .send()
            .await
            .expect("token answers")
    }

    /// A live access token for `identity`.
    pub async fn token_for(sandbox: &Sandbox, identity: [&str; 5]) -> String {
        let code = code_for(sandbox, identity, &[]).await;
        let body: Value = exchange(sandbox, &code, &[])
            .await
            .json()
            .await
            .expect("token JSON");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// An OAuth error answer as `(status, error, error_description)`.
    pub async fn oauth_error(response: reqwest::Response) -> (u16, String, String) {
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("an OAuth error is JSON");
        let field = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
        (status, field("error"), field("error_description"))
    }

    /// `GET {fhir}/{path}` with a bearer token.
    pub async fn get(sandbox: &Sandbox, token: &str, path: &str) -> reqwest::Response {
        http()
            .get(format!("{}/{path}", sandbox.fhir_base()))
            .bearer_auth(token)
            .send()
            .await
            .expect("FHIR answers")
    }

    /// Every resource of a search, following `next` links.
    pub async fn search_all(
        sandbox: &Sandbox,
        token: &str,
        path: &str,
    ) -> (Vec<Value>, Vec<Value>) {
        let mut url = format!("{}/{path}", sandbox.fhir_base());
        let (mut pages, mut resources) = (Vec::new(), Vec::new());
        for _ in 0..1000 {
            let page: Value = http()
                .get(&url)
                .bearer_auth(token)
                .send()
                .await
                .expect("page")
                .json()
                .await
                .expect("JSON");
            for entry in page["entry"].as_array().cloned().unwrap_or_default() {
                resources.push(entry["resource"].clone());
            }
            let next = page["link"]
                .as_array()
                .and_then(|links| links.iter().find(|l| l["relation"] == "next"))
                .and_then(|l| l["url"].as_str())
                .map(str::to_owned);
            pages.push(page);
            match next {
                Some(next) => url = next,
                None => break,
            }
        }
        (pages, resources)
    }
}
