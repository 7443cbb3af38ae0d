//! The embedded demo health plan over real HTTP on loopback: every endpoint, every error
//! path, every fault, and hostile input.

mod common;

use std::time::{Duration, Instant};

use common::sandbox::{
    JOHN, REDIRECT, authorize, code_for, exchange, get, http, oauth_error, request_id, search_all,
    start, token_for, verify,
};
use onramp::sandbox::{Client, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Fault, PkceMode, SandboxConfig};
use onramp::validate::Registry;
use serde_json::Value;

fn location(response: &reqwest::Response) -> url::Url {
    let text = response
        .headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .expect("ascii");
    url::Url::parse(text).expect("an absolute URL")
}

fn query(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn with_faults(specs: &[&str]) -> SandboxConfig {
    SandboxConfig {
        faults: specs
            .iter()
            .map(|s| s.parse::<Fault>().expect("fault spec"))
            .collect(),
        ..SandboxConfig::default()
    }
}

// ---- authorization -----------------------------------------------------------------------

#[tokio::test]
async fn the_landing_page_links_to_the_identity_form_with_real_labels() {
    let sandbox = start(SandboxConfig::default()).await;
    let response = authorize(
        &sandbox,
        &[("state", "s1"), ("scope", "patient/*.read openid")],
    )
    .await;
    assert_eq!(response.status(), 200);
    let landing = response.text().await.expect("page");
    assert!(
        landing.contains(">Click here to confirm identity</a>"),
        "{landing}"
    );
    let request = request_id(&landing);
    let form = http()
        .get(format!("{}/identity", sandbox.authorize_url()))
        .query(&[("request", request.as_str())])
        .send()
        .await
        .expect("form");
    assert_eq!(form.status(), 200);
    let page = form.text().await.expect("page");
    for (id, label) in [
        ("first_name", "First Name"),
        ("last_name", "Last Name"),
        ("birth_date", "Birthdate"),
        ("member_id", "Plan Member ID"),
        ("zip", "Zip Code"),
    ] {
        assert!(
            page.contains(&format!("<label for=\"{id}\">{label}</label>")),
            "{label}"
        );
        assert!(page.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(page.contains("MM/DD/YYYY"));
    assert!(page.contains(">Verify identity</button>"));
}

#[tokio::test]
async fn the_test_member_gets_a_code_and_the_state_back() {
    let sandbox = start(SandboxConfig::default()).await;
    let state = "a b&c=d/é";
    let landing = authorize(&sandbox, &[("state", state)])
        .await
        .text()
        .await
        .expect("page");
    // Names are case-insensitive.
    let response = verify(
        &sandbox,
        &request_id(&landing),
        ["JOHN", "allen", "10/19/1950", "123456789123", "02114"],
    )
    .await;
    assert_eq!(response.status(), 302);
    let to = location(&response);
    assert!(to.as_str().starts_with(REDIRECT), "{to}");
    assert_eq!(query(&to, "state").as_deref(), Some(state));
    assert!(query(&to, "code").is_some_and(|c| c.len() >= 43));
}

#[tokio::test]
async fn a_redirect_uri_with_its_own_query_keeps_it() {
    let sandbox = start(SandboxConfig::default()).await;
    let landing = http()
        .get(sandbox.authorize_url())
        .query(&[
            ("client_id", DEMO_CLIENT_ID),
            ("redirect_uri", "http://localhost:4000/cb?tenant=7"),
        ])
        .send()
        .await
        .expect("landing")
        .text()
        .await
        .expect("page");
    let to = location(&verify(&sandbox, &request_id(&landing), JOHN).await);
    assert_eq!(query(&to, "tenant").as_deref(), Some("7"));
    assert!(query(&to, "code").is_some());
}

#[tokio::test]
async fn a_wrong_identity_shows_the_form_again_and_issues_nothing() {
    let sandbox = start(SandboxConfig::default()).await;
    let landing = authorize(&sandbox, &[]).await.text().await.expect("page");
    let request = request_id(&landing);
    let response = verify(
        &sandbox,
        &request,
        ["John", "Allen", "10/19/1951", "123456789123", "02114"],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("location").is_none());
    let page = response.text().await.expect("page");
    assert!(page.contains("could not verify your identity"), "{page}");
    assert!(
        page.contains("value=\"10/19/1951\""),
        "the typed values are kept"
    );
    // The same sign-in can still succeed.
    assert_eq!(verify(&sandbox, &request, JOHN).await.status(), 302);
}

#[tokio::test]
async fn a_badly_written_birthdate_is_explained() {
    let sandbox = start(SandboxConfig::default()).await;
    let landing = authorize(&sandbox, &[]).await.text().await.expect("page");
    let page = verify(
        &sandbox,
        &request_id(&landing),
        ["John", "Allen", "1950-10-19", "123456789123", "02114"],
    )
    .await
    .text()
    .await
    .expect("page");
    assert!(page.contains("MM/DD/YYYY, for example"), "{page}");
}

#[tokio::test]
async fn cancelling_redirects_with_access_denied_and_the_state() {
    let sandbox = start(SandboxConfig::default()).await;
    let landing = authorize(&sandbox, &[("state", "keep-me")])
        .await
        .text()
        .await
        .expect("page");
    let response = http()
        .post(format!("{}/identity", sandbox.authorize_url()))
        .form(&[
            ("request", request_id(&landing).as_str()),
            ("action", "cancel"),
        ])
        .send()
        .await
        .expect("cancel");
    assert_eq!(response.status(), 302);
    let to = location(&response);
    assert_eq!(query(&to, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&to, "state").as_deref(), Some("keep-me"));
    assert!(query(&to, "code").is_none());
}

#[tokio::test]
async fn unknown_apps_and_unregistered_redirects_get_an_error_page_never_a_redirect() {
    let sandbox = start(SandboxConfig::default()).await;
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("client_id", "someone-else"), ("redirect_uri", REDIRECT)],
        vec![("redirect_uri", REDIRECT)],
        vec![("client_id", DEMO_CLIENT_ID)],
        vec![
            ("client_id", DEMO_CLIENT_ID),
            ("redirect_uri", "https://attacker.example/steal"),
        ],
        vec![
            ("client_id", DEMO_CLIENT_ID),
            ("redirect_uri", "http://127.0.0.1.attacker.example/cb"),
        ],
        vec![
            ("client_id", DEMO_CLIENT_ID),
            ("redirect_uri", "javascript:alert(1)"),
        ],
        vec![
            ("client_id", DEMO_CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("client_id", DEMO_CLIENT_ID),
        ],
    ];
    for case in cases {
        let response = http()
            .get(sandbox.authorize_url())
            .query(&case)
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 400, "{case:?}");
        assert!(response.headers().get("location").is_none(), "{case:?}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap_or_default()
                .starts_with("text/html")
        );
    }
    let other_system = http()
        .get(format!("{}/oauth2/authorize/prod", sandbox.origin()))
        .query(&[("client_id", DEMO_CLIENT_ID), ("redirect_uri", REDIRECT)])
        .send()
        .await
        .expect("answer");
    assert_eq!(other_system.status(), 404);
}

#[tokio::test]
async fn loopback_redirects_of_any_port_and_configured_ones_are_accepted() {
    let config = SandboxConfig {
        clients: vec![Client::demo(vec!["https://app.example/callback".into()])],
        ..SandboxConfig::default()
    };
    let sandbox = start(config).await;
    for redirect in [
        "http://localhost:1234/x",
        "http://[::1]:5/cb",
        "http://127.0.0.1/cb",
        "https://app.example/callback",
    ] {
        let response = http()
            .get(sandbox.authorize_url())
            .query(&[("client_id", DEMO_CLIENT_ID), ("redirect_uri", redirect)])
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 200, "{redirect}");
    }
}

#[tokio::test]
async fn bad_authorization_parameters_redirect_with_oauth_errors() {
    let sandbox = start(SandboxConfig {
        pkce: PkceMode::Required,
        ..SandboxConfig::default()
    })
    .await;
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    for (extra, error) in [
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("scope", "patient/*.write admin")], "invalid_scope"),
        (vec![], "invalid_request"),
        (
            vec![
                ("code_challenge", challenge),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("code_challenge", "short"),
                ("code_challenge_method", "S256"),
            ],
            "invalid_request",
        ),
    ] {
        let mut with_state = extra.clone();
        with_state.push(("state", "st"));
        let response = authorize(&sandbox, &with_state).await;
        assert_eq!(response.status(), 302, "{extra:?}");
        let to = location(&response);
        assert_eq!(query(&to, "error").as_deref(), Some(error), "{extra:?}");
        assert_eq!(query(&to, "state").as_deref(), Some("st"));
    }
    let ok = authorize(
        &sandbox,
        &[
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("response_type", "code"),
        ],
    )
    .await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn a_finished_sign_in_cannot_be_replayed() {
    let sandbox = start(SandboxConfig::default()).await;
    let landing = authorize(&sandbox, &[]).await.text().await.expect("page");
    let request = request_id(&landing);
    assert_eq!(verify(&sandbox, &request, JOHN).await.status(), 302);
    let again = verify(&sandbox, &request, JOHN).await;
    assert_eq!(again.status(), 400);
    assert!(
        again
            .text()
            .await
            .expect("page")
            .contains("Sign-in expired")
    );
}

// ---- token -------------------------------------------------------------------------------

#[tokio::test]
async fn the_code_exchange_returns_a_bearer_token_for_the_member() {
    let sandbox = start(SandboxConfig::default()).await;
    let code = code_for(
        &sandbox,
        JOHN,
        &[("scope", "patient/*.read launch/patient openid")],
    )
    .await;
    let response = exchange(&sandbox, &code, &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 7200);
    assert_eq!(body["patient"], "john-allen");
    assert_eq!(body["scope"], "patient/*.read launch/patient openid");
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|t| t.len() >= 43)
    );
    let token = body["access_token"].as_str().expect("token");
    assert_eq!(
        get(&sandbox, token, "Patient/john-allen").await.status(),
        200
    );
}

#[tokio::test]
async fn http_basic_client_authentication_works_and_two_methods_are_refused() {
    let sandbox = start(SandboxConfig::default()).await;
    let code = code_for(&sandbox, JOHN, &[]).await;
    let basic = http()
        .post(sandbox.token_url())
        .basic_auth(DEMO_CLIENT_ID, Some(DEMO_CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .expect("answer");
    assert_eq!(basic.status(), 200);
    let code = code_for(&sandbox, JOHN, &[]).await;
    let both = http()
        .post(sandbox.token_url())
        .basic_auth(DEMO_CLIENT_ID, Some(DEMO_CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
        ])
        .send()
        .await
        .expect("answer");
    let (status, error, _) = oauth_error(both).await;
    assert_eq!((status, error.as_str()), (400, "invalid_request"));
}

#[tokio::test]
async fn wrong_client_credentials_are_invalid_client() {
    let sandbox = start(SandboxConfig::default()).await;
    let code = code_for(&sandbox, JOHN, &[]).await;
    let wrong = http()
        .post(sandbox.token_url())
        .basic_auth(DEMO_CLIENT_ID, Some("not-the-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .expect("answer");
    assert!(
        wrong.headers()["www-authenticate"]
            .to_str()
            .unwrap_or_default()
            .starts_with("Basic")
    );
    let (status, error, _) = oauth_error(wrong).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    let none = http()
        .post(sandbox.token_url())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .expect("answer");
    assert_eq!(none.status(), 401);
    // The code was not spent by the failed attempts.
    assert_eq!(exchange(&sandbox, &code, &[]).await.status(), 200);
}

#[tokio::test]
async fn a_reused_code_is_invalid_grant_and_revokes_its_tokens() {
    let sandbox = start(SandboxConfig::default()).await;
    let code = code_for(&sandbox, JOHN, &[]).await;
    let first: Value = exchange(&sandbox, &code, &[])
        .await
        .json()
        .await
        .expect("JSON");
    let token = first["access_token"].as_str().expect("token");
    assert_eq!(get(&sandbox, token, "Patient").await.status(), 200);
    let (status, error, description) = oauth_error(exchange(&sandbox, &code, &[]).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    assert!(description.contains("already used"), "{description}");
    assert_eq!(
        get(&sandbox, token, "Patient").await.status(),
        401,
        "the first token is revoked"
    );
    let refreshed = http()
        .post(sandbox.token_url())
        .form(&[
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                first["refresh_token"].as_str().unwrap_or_default(),
            ),
        ])
        .send()
        .await
        .expect("answer");
    assert_eq!(refreshed.status(), 400, "the refresh token is revoked too");
}

#[tokio::test]
async fn codes_expire() {
    let sandbox = start(SandboxConfig {
        code_lifetime: Duration::from_millis(50),
        ..SandboxConfig::default()
    })
    .await;
    let code = code_for(&sandbox, JOHN, &[]).await;
    tokio::time::sleep(Duration::from_millis(120)).await;
    let (status, error, description) = oauth_error(exchange(&sandbox, &code, &[]).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    assert!(description.contains("expired"), "{description}");
}

#[tokio::test]
async fn unknown_codes_mismatched_redirects_and_pkce_failures_are_invalid_grant() {
    let sandbox = start(SandboxConfig::default()).await;
    let error_of = |response: reqwest::Response| async move {
        let (status, error, _) = oauth_error(response).await;
        assert_eq!(status, 400);
        error
    };
    assert_eq!(
        error_of(exchange(&sandbox, "no-such-code", &[]).await).await,
        "invalid_grant"
    );
    let code = code_for(&sandbox, JOHN, &[]).await;
    assert_eq!(
        error_of(
            exchange(
                &sandbox,
                &code,
                &[("redirect_uri", "http://127.0.0.1:9/other")]
            )
            .await
        )
        .await,
        "invalid_grant"
    );
    assert_eq!(
        exchange(&sandbox, &code, &[("redirect_uri", REDIRECT)])
            .await
            .status(),
        200
    );

    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let pkce = [
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    let code = code_for(&sandbox, JOHN, &pkce).await;
    assert_eq!(
        error_of(exchange(&sandbox, &code, &[]).await).await,
        "invalid_grant",
        "verifier missing"
    );
    let code = code_for(&sandbox, JOHN, &pkce).await;
    assert_eq!(
        error_of(
            exchange(
                &sandbox,
                &code,
                &[("code_verifier", "x".repeat(43).as_str())]
            )
            .await
        )
        .await,
        "invalid_grant"
    );
    let code = code_for(&sandbox, JOHN, &pkce).await;
    assert_eq!(
        exchange(&sandbox, &code, &[("code_verifier", verifier)])
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn malformed_token_requests_get_rfc_6749_errors() {
    let sandbox = start(SandboxConfig::default()).await;
    let post = |form: Vec<(&'static str, &'static str)>| {
        let url = sandbox.token_url();
        async move { http().post(url).form(&form).send().await.expect("answer") }
    };
    let auth = [
        ("client_id", DEMO_CLIENT_ID),
        ("client_secret", DEMO_CLIENT_SECRET),
    ];
    let mut unsupported = auth.to_vec();
    unsupported.push(("grant_type", "password"));
    let (status, error, _) = oauth_error(post(unsupported).await).await;
    assert_eq!((status, error.as_str()), (400, "unsupported_grant_type"));
    let (_, error, _) = oauth_error(post(auth.to_vec()).await).await;
    assert_eq!(error, "invalid_request");
    let mut no_code = auth.to_vec();
    no_code.push(("grant_type", "authorization_code"));
    let (_, error, _) = oauth_error(post(no_code).await).await;
    assert_eq!(error, "invalid_request");
    let json_body = http()
        .post(sandbox.token_url())
        .json(&serde_json::json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .expect("answer");
    let (status, error, _) = oauth_error(json_body).await;
    assert_eq!((status, error.as_str()), (400, "invalid_request"));
}

#[tokio::test]
async fn refresh_tokens_rotate() {
    let sandbox = start(SandboxConfig::default()).await;
    let code = code_for(&sandbox, JOHN, &[]).await;
    let first: Value = exchange(&sandbox, &code, &[])
        .await
        .json()
        .await
        .expect("JSON");
    let refresh = |token: String| {
        let url = sandbox.token_url();
        async move {
            http()
                .post(url)
                .form(&[
                    ("client_id", DEMO_CLIENT_ID),
                    ("client_secret", DEMO_CLIENT_SECRET),
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                ])
                .send()
                .await
                .expect("answer")
        }
    };
    let old = first["refresh_token"].as_str().expect("refresh").to_owned();
    let second = refresh(old.clone()).await;
    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.expect("JSON");
    assert_ne!(second["access_token"], first["access_token"]);
    assert_eq!(second["patient"], "john-allen");
    assert_eq!(
        get(
            &sandbox,
            second["access_token"].as_str().expect("token"),
            "Coverage"
        )
        .await
        .status(),
        200
    );
    assert_eq!(
        refresh(old).await.status(),
        400,
        "a used refresh token is spent"
    );
}

/// POST a form to `url` as the demo client (secret in the body).
async fn post_as_demo(url: String, fields: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![
        ("client_id", DEMO_CLIENT_ID),
        ("client_secret", DEMO_CLIENT_SECRET),
    ];
    form.extend_from_slice(fields);
    http().post(url).form(&form).send().await.expect("answer")
}

async fn tokens(sandbox: &onramp::sandbox::Sandbox, scope: &str) -> Value {
    let code = code_for(sandbox, JOHN, &[("scope", scope)]).await;
    exchange(sandbox, &code, &[])
        .await
        .json()
        .await
        .expect("JSON")
}

#[tokio::test]
async fn a_refresh_may_narrow_the_access_token_but_not_widen_the_grant() {
    let sandbox = start(SandboxConfig::default()).await;
    let first = tokens(&sandbox, "patient/*.read launch/patient offline_access").await;
    let refresh = first["refresh_token"].as_str().expect("refresh").to_owned();
    let narrow = post_as_demo(
        sandbox.token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("scope", "patient/Patient.read launch/patient"),
        ],
    )
    .await;
    assert_eq!(narrow.status(), 200);
    let narrow: Value = narrow.json().await.expect("JSON");
    assert_eq!(narrow["scope"], "patient/Patient.read launch/patient");
    let access = narrow["access_token"].as_str().expect("token");
    assert_eq!(get(&sandbox, access, "Patient").await.status(), 200);
    let refused = get(&sandbox, access, "Coverage").await;
    assert_eq!(refused.status(), 403);
    assert!(
        refused.headers()["www-authenticate"]
            .to_str()
            .unwrap_or_default()
            .contains("insufficient_scope")
    );
    // The new refresh token still holds the whole grant.
    let whole = post_as_demo(
        sandbox.token_url(),
        &[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                narrow["refresh_token"].as_str().expect("refresh"),
            ),
        ],
    )
    .await;
    let whole: Value = whole.json().await.expect("JSON");
    assert_eq!(
        whole["scope"],
        "patient/*.read launch/patient offline_access"
    );
    let wider = post_as_demo(
        sandbox.token_url(),
        &[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                whole["refresh_token"].as_str().expect("refresh"),
            ),
            ("scope", "user/*.read"),
        ],
    )
    .await;
    let (status, error, _) = oauth_error(wider).await;
    assert_eq!((status, error.as_str()), (400, "invalid_scope"));
}

/// The revocation and introspection endpoints a sandbox advertises.
async fn token_companions(sandbox: &onramp::sandbox::Sandbox) -> (String, String) {
    let smart: Value = http()
        .get(format!(
            "{}/.well-known/smart-configuration",
            sandbox.fhir_base()
        ))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    let endpoint = |name: &str| smart[name].as_str().expect("advertised").to_owned();
    (
        endpoint("revocation_endpoint"),
        endpoint("introspection_endpoint"),
    )
}

/// POST `token=…` as the demo client with HTTP Basic (every persona takes it).
async fn post_token(url: &str, token: &str) -> reqwest::Response {
    http()
        .post(url)
        .basic_auth(DEMO_CLIENT_ID, Some(DEMO_CLIENT_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .expect("answer")
}

#[tokio::test]
async fn introspection_and_revocation_follow_rfc_7662_and_rfc_7009() {
    let sandbox = start(SandboxConfig::default()).await;
    let (revocation, introspection) = token_companions(&sandbox).await;
    let token = tokens(&sandbox, "patient/*.read launch/patient openid fhirUser").await;
    let access = token["access_token"].as_str().expect("token");
    let live: Value = post_token(&introspection, access)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(live["active"], true, "{live}");
    assert_eq!(live["scope"], token["scope"]);
    assert_eq!(live["client_id"], DEMO_CLIENT_ID);
    assert_eq!(live["patient"], "john-allen");
    assert!(
        live["fhirUser"]
            .as_str()
            .is_some_and(|u| u.ends_with("/Patient/john-allen"))
    );
    assert!(live["exp"].as_u64().is_some());
    let unauthenticated = http()
        .post(&revocation)
        .form(&[("token", access)])
        .send()
        .await
        .expect("answer");
    assert_eq!(unauthenticated.status(), 401);
    assert_eq!(post_token(&revocation, access).await.status(), 200);
    let dead: Value = post_token(&introspection, access)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(dead, serde_json::json!({ "active": false }));
    assert_eq!(get(&sandbox, access, "Patient").await.status(), 401);
    // Unknown tokens are no error (RFC 7009 §2.2).
    assert_eq!(post_token(&revocation, "nothing").await.status(), 200);
    // Revoking the refresh token ends the grant's access tokens too.
    let refreshed: Value = post_as_demo(
        sandbox.token_url(),
        &[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                token["refresh_token"].as_str().expect("refresh"),
            ),
        ],
    )
    .await
    .json()
    .await
    .expect("JSON");
    let access = refreshed["access_token"].as_str().expect("token");
    post_token(
        &revocation,
        refreshed["refresh_token"].as_str().expect("refresh"),
    )
    .await;
    assert_eq!(get(&sandbox, access, "Patient").await.status(), 401);
}

#[tokio::test]
async fn blue_button_serves_revocation_and_introspection_at_its_own_paths() {
    let sandbox = start(SandboxConfig {
        persona: onramp::sandbox::Persona::Bluebutton,
        ..SandboxConfig::default()
    })
    .await;
    let (revocation, introspection) = token_companions(&sandbox).await;
    assert!(revocation.ends_with("/v2/o/revoke_token/"), "{revocation}");
    assert!(
        introspection.ends_with("/v2/o/introspect/"),
        "{introspection}"
    );
    assert_eq!(post_token(&revocation, "nothing").await.status(), 200);
    let unknown: Value = post_token(&introspection, "nothing")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(unknown["active"], false);
}

// ---- discovery ---------------------------------------------------------------------------

#[tokio::test]
async fn smart_configuration_and_capability_statement_describe_the_server() {
    let sandbox = start(SandboxConfig::default()).await;
    let smart: Value = http()
        .get(format!(
            "{}/.well-known/smart-configuration",
            sandbox.fhir_base()
        ))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(smart["authorization_endpoint"], sandbox.authorize_url());
    assert_eq!(smart["token_endpoint"], sandbox.token_url());
    assert_eq!(
        smart["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    for scope in ["patient/*.read", "user/*.read", "launch/patient", "openid"] {
        assert!(
            smart["scopes_supported"]
                .as_array()
                .expect("scopes")
                .iter()
                .any(|s| s == scope),
            "{scope}"
        );
    }
    assert!(
        smart["capabilities"]
            .as_array()
            .expect("capabilities")
            .iter()
            .any(|c| c == "launch-standalone")
    );

    let response = http()
        .get(format!("{}/metadata", sandbox.fhir_base()))
        .send()
        .await
        .expect("answer");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("application/fhir+json")
    );
    let bytes = response.bytes().await.expect("body");
    let metadata: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(metadata["resourceType"], "CapabilityStatement");
    let served: Vec<&str> = metadata["rest"][0]["resource"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["type"].as_str())
        .collect();
    for kind in [
        "ExplanationOfBenefit",
        "Coverage",
        "Organization",
        "Patient",
        "Practitioner",
        "Location",
    ] {
        assert!(served.contains(&kind), "{kind}");
    }
    let uris = &metadata["rest"][0]["security"]["extension"][0];
    assert_eq!(
        uris["url"],
        "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    );
    // The R4 4.0.1 schema takes the true version, 4.0.1: no schema complaint at all.
    let checked = Registry::global().check_bytes(&bytes);
    assert!(checked.findings.is_empty(), "{:?}", checked.findings);

    let off = start(SandboxConfig {
        pkce: PkceMode::Off,
        ..SandboxConfig::default()
    })
    .await;
    let smart: Value = http()
        .get(format!(
            "{}/.well-known/smart-configuration",
            off.fhir_base()
        ))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    assert!(smart.get("code_challenge_methods_supported").is_none());
}

// ---- FHIR API ----------------------------------------------------------------------------

#[tokio::test]
async fn reads_without_a_valid_token_are_refused_with_an_operation_outcome() {
    let sandbox = start(SandboxConfig::default()).await;
    let anonymous = http()
        .get(format!("{}/Patient", sandbox.fhir_base()))
        .send()
        .await
        .expect("answer");
    assert_eq!(anonymous.status(), 401);
    assert!(
        anonymous.headers()["www-authenticate"]
            .to_str()
            .unwrap_or_default()
            .starts_with("Bearer")
    );
    assert_eq!(
        anonymous.json::<Value>().await.expect("JSON")["resourceType"],
        "OperationOutcome"
    );
    let forged = get(&sandbox, "forged-token", "ExplanationOfBenefit").await;
    assert_eq!(forged.status(), 401);
    assert!(
        forged.headers()["www-authenticate"]
            .to_str()
            .unwrap_or_default()
            .contains("invalid_token")
    );
}

#[tokio::test]
async fn every_required_type_is_a_valid_searchset_of_the_members_data() {
    let sandbox = start(SandboxConfig::default()).await;
    let token = token_for(&sandbox, JOHN).await;
    let registry = Registry::global();
    for kind in [
        "ExplanationOfBenefit",
        "Coverage",
        "Organization",
        "Patient",
        "Practitioner",
        "Location",
    ] {
        let (pages, resources) = search_all(&sandbox, &token, kind).await;
        assert!(!resources.is_empty(), "{kind}");
        let total = pages[0]["total"].as_u64().expect("total") as usize;
        assert_eq!(
            total,
            resources.len(),
            "{kind}: total matches what the pages hold"
        );
        for page in &pages {
            assert_eq!(page["type"], "searchset");
            let bytes = serde_json::to_vec(page).expect("serializes");
            let checked = registry.check_bytes(&bytes);
            assert!(
                checked.findings.is_empty(),
                "{kind}: {:?}",
                checked.findings
            );
            for entry in page["entry"].as_array().expect("entries") {
                let id = entry["resource"]["id"].as_str().expect("id");
                assert_eq!(
                    entry["fullUrl"],
                    format!("{}/{kind}/{id}", sandbox.fhir_base())
                );
                assert_eq!(entry["search"]["mode"], "match");
            }
        }
    }
    let (_, eobs) = search_all(&sandbox, &token, "ExplanationOfBenefit").await;
    assert_eq!(eobs.len(), 12);
    for eob in &eobs {
        assert_eq!(eob["patient"]["reference"], "Patient/john-allen");
    }
    let kinds: std::collections::BTreeSet<String> = eobs
        .iter()
        .map(|e| {
            let code = e["type"]["coding"][0]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let sub = e["subType"]["coding"][0]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            format!("{code}/{sub}")
        })
        .collect();
    assert_eq!(
        kinds.len(),
        4,
        "professional, inpatient, outpatient and pharmacy: {kinds:?}"
    );
}

#[tokio::test]
async fn paging_follows_opaque_cursors_and_refuses_tampered_ones() {
    let sandbox = start(SandboxConfig::default()).await;
    let token = token_for(&sandbox, JOHN).await;
    let (pages, resources) = search_all(&sandbox, &token, "ExplanationOfBenefit?_count=5").await;
    assert_eq!(pages.len(), 3);
    let ids: std::collections::BTreeSet<&str> =
        resources.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids.len(), 12, "no duplicates across pages");
    let next = pages[0]["link"]
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["relation"] == "next")
        .expect("next")["url"]
        .as_str()
        .expect("url")
        .to_owned();
    assert!(next.contains("_cursor="));
    let tampered = next.replace("_cursor=", "_cursor=AAAA");
    let response = http()
        .get(&tampered)
        .bearer_auth(&token)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.expect("JSON")["resourceType"],
        "OperationOutcome"
    );
    let big: Value = get(&sandbox, &token, "ExplanationOfBenefit?_count=100000")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(big["entry"].as_array().expect("entries").len(), 12);
    let count_only: Value = get(&sandbox, &token, "ExplanationOfBenefit?_count=0")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(count_only["total"], 12);
    assert!(count_only["entry"].as_array().is_none_or(Vec::is_empty));
}

#[tokio::test]
async fn a_member_sees_only_their_compartment() {
    let sandbox = start(SandboxConfig::default()).await;
    let john = token_for(&sandbox, JOHN).await;
    let other = sandbox.member(1).expect("a second member");
    let identity = other.identity.clone().expect("identity");
    let theirs = token_for(
        &sandbox,
        [
            &identity.first_name,
            &identity.last_name,
            &identity.birth_date,
            &identity.member_id,
            &identity.zip,
        ],
    )
    .await;
    let (_, patients) = search_all(&sandbox, &theirs, "Patient").await;
    assert_eq!(patients.len(), 1);
    assert_eq!(patients[0]["id"], other.patient_id.as_str());
    assert_eq!(
        get(&sandbox, &john, &format!("Patient/{}", other.patient_id))
            .await
            .status(),
        404
    );
    let (_, their_eobs) = search_all(&sandbox, &theirs, "ExplanationOfBenefit").await;
    let eob_id = their_eobs[0]["id"].as_str().expect("id");
    assert_eq!(
        get(&sandbox, &john, &format!("ExplanationOfBenefit/{eob_id}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        get(&sandbox, &theirs, &format!("ExplanationOfBenefit/{eob_id}"))
            .await
            .status(),
        200
    );
    assert_eq!(
        search_all(
            &sandbox,
            &john,
            &format!("ExplanationOfBenefit?patient=Patient/{}", other.patient_id)
        )
        .await
        .1
        .len(),
        0
    );

    // A reference parameter names the member's Patient as `Patient/id`, as a bare id (FHIR
    // R4 §3.1.1.4.8: what most clients send) or as an absolute URL: the same claims.
    let john_id = &sandbox.member(0).expect("John").patient_id;
    let (_, all) = search_all(&sandbox, &john, "ExplanationOfBenefit").await;
    assert!(!all.is_empty());
    for value in [
        format!("Patient/{john_id}"),
        john_id.clone(),
        format!("{}/Patient/{john_id}", sandbox.fhir_base()),
    ] {
        let (_, found) = search_all(
            &sandbox,
            &john,
            &format!("ExplanationOfBenefit?patient={value}"),
        )
        .await;
        assert_eq!(found.len(), all.len(), "patient={value}");
    }
    assert_eq!(
        search_all(
            &sandbox,
            &john,
            &format!("ExplanationOfBenefit?patient={}", other.patient_id)
        )
        .await
        .1
        .len(),
        0,
        "another member's bare id matches nothing of John's"
    );

    // Every Organization, Practitioner and Location John sees is referenced by his data.
    let (_, eobs) = search_all(&sandbox, &john, "ExplanationOfBenefit").await;
    let (_, coverage) = search_all(&sandbox, &john, "Coverage").await;
    let (_, locations) = search_all(&sandbox, &john, "Location").await;
    let mut referenced = std::collections::BTreeSet::new();
    for resource in eobs.iter().chain(&coverage).chain(&locations) {
        collect_references(resource, &mut referenced);
    }
    for kind in ["Organization", "Practitioner", "Location"] {
        for resource in search_all(&sandbox, &john, kind).await.1 {
            let reference = format!("{kind}/{}", resource["id"].as_str().unwrap_or_default());
            assert!(
                referenced.contains(&reference),
                "{reference} is not referenced by John's data"
            );
        }
    }
}

fn collect_references(value: &Value, out: &mut std::collections::BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (name, member) in map {
                if name == "reference" {
                    if let Some(text) = member.as_str() {
                        out.insert(text.to_owned());
                    }
                } else {
                    collect_references(member, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_references(i, out)),
        _ => {}
    }
}

#[tokio::test]
async fn unknown_types_ids_and_methods_get_operation_outcomes() {
    let sandbox = start(SandboxConfig::default()).await;
    let token = token_for(&sandbox, JOHN).await;
    for (path, status) in [
        ("Nope", 404),
        ("Specimen", 404),
        ("Patient/nobody", 404),
        ("ExplanationOfBenefit/eob-john-allen-99999", 404),
        ("Patient/..%2F..%2Fetc%2Fpasswd", 404),
        ("Patient/%00", 404),
    ] {
        let response = get(&sandbox, &token, path).await;
        assert_eq!(response.status(), status, "{path}");
        assert_eq!(
            response.json::<Value>().await.expect("JSON")["resourceType"],
            "OperationOutcome",
            "{path}"
        );
    }
    let post = http()
        .post(format!("{}/Patient", sandbox.fhir_base()))
        .bearer_auth(&token)
        .body("{}")
        .send()
        .await
        .expect("answer");
    assert_eq!(post.status(), 405);
    assert_eq!(
        post.json::<Value>().await.expect("JSON")["resourceType"],
        "OperationOutcome"
    );
    let bad_count = get(&sandbox, &token, "Patient?_count=many").await;
    assert_eq!(bad_count.status(), 400);
}

// ---- hostile input -----------------------------------------------------------------------

#[tokio::test]
async fn hostile_form_input_gets_4xx_or_an_escaped_page_never_a_panic() {
    let sandbox = start(SandboxConfig::default()).await;
    let landing = authorize(&sandbox, &[]).await.text().await.expect("page");
    let request = request_id(&landing);
    let url = format!("{}/identity", sandbox.authorize_url());
    let huge = "x".repeat(64 * 1024);
    let oversized = http()
        .post(&url)
        .form(&[("request", request.as_str()), ("first_name", huge.as_str())])
        .send()
        .await
        .expect("answer");
    assert_eq!(oversized.status(), 413);
    let not_utf8 = http()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'=', 0x80])
        .send()
        .await
        .expect("answer");
    assert_eq!(not_utf8.status(), 400);
    let wrong_type = http()
        .post(&url)
        .json(&serde_json::json!({"request": request}))
        .send()
        .await
        .expect("answer");
    assert_eq!(wrong_type.status(), 415);
    let long = "y".repeat(500);
    let too_long = verify(
        &sandbox,
        &request,
        [
            long.as_str(),
            "Allen",
            "10/19/1950",
            "123456789123",
            "02114",
        ],
    )
    .await;
    assert_eq!(too_long.status(), 400);
    let missing = http()
        .post(&url)
        .form(&[("request", request.as_str()), ("first_name", "John")])
        .send()
        .await
        .expect("answer");
    assert!(
        missing
            .text()
            .await
            .expect("page")
            .contains("Fill in every field")
    );
    let script = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>";
    let page = verify(
        &sandbox,
        &request,
        [script, "Allen", "10/19/1950", "123456789123", "02114"],
    )
    .await
    .text()
    .await
    .expect("page");
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(!page.contains("<img src=x"), "{page}");
    assert!(page.contains("&lt;script&gt;"));
    let unknown_request = verify(&sandbox, "made-up", JOHN).await;
    assert_eq!(unknown_request.status(), 400);
    // After all that, the sandbox still works.
    assert_eq!(verify(&sandbox, &request, JOHN).await.status(), 302);
}

// ---- faults ------------------------------------------------------------------------------

#[tokio::test]
async fn latency_delays_fhir_responses() {
    let sandbox = start(with_faults(&["latency=300ms"])).await;
    let token = token_for(&sandbox, JOHN).await;
    let started = Instant::now();
    assert_eq!(get(&sandbox, &token, "Patient").await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn status_faults_fail_a_share_of_requests_with_an_operation_outcome() {
    let sandbox = start(with_faults(&["status=503@0.5"])).await;
    let token = token_for(&sandbox, JOHN).await;
    let mut failures = 0;
    for _ in 0..10 {
        let response = get(&sandbox, &token, "Coverage").await;
        if response.status() == 503 {
            failures += 1;
            assert_eq!(
                response.json::<Value>().await.expect("JSON")["resourceType"],
                "OperationOutcome"
            );
        } else {
            assert_eq!(response.status(), 200);
        }
    }
    assert_eq!(failures, 5);
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after() {
    let sandbox = start(with_faults(&["rate-limit=2/s"])).await;
    let token = token_for(&sandbox, JOHN).await;
    let statuses = [
        get(&sandbox, &token, "Patient").await,
        get(&sandbox, &token, "Patient").await,
        get(&sandbox, &token, "Patient").await,
    ];
    assert_eq!(statuses[0].status(), 200);
    let limited = &statuses[2];
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry >= 1);
}

#[tokio::test]
async fn malformed_json_breaks_only_the_named_type() {
    let sandbox = start(with_faults(&["malformed-json:Coverage"])).await;
    let token = token_for(&sandbox, JOHN).await;
    let body = get(&sandbox, &token, "Coverage")
        .await
        .bytes()
        .await
        .expect("body");
    assert!(serde_json::from_slice::<Value>(&body).is_err());
    let read = get(&sandbox, &token, "Coverage/coverage-john-allen")
        .await
        .bytes()
        .await
        .expect("body");
    assert!(serde_json::from_slice::<Value>(&read).is_err());
    assert!(
        get(&sandbox, &token, "Patient")
            .await
            .json::<Value>()
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn invalid_resources_fail_the_schema_where_promised() {
    let sandbox = start(with_faults(&["invalid-resource:Patient"])).await;
    let token = token_for(&sandbox, JOHN).await;
    let body = get(&sandbox, &token, "Patient")
        .await
        .bytes()
        .await
        .expect("body");
    let checked = Registry::global().check_bytes(&body);
    assert_eq!(checked.invalid, 1);
    assert_eq!(checked.findings[0].path, "Patient.meta.lastUpdated");
    assert_eq!(
        checked.findings[0].resource.as_deref(),
        Some("Patient/john-allen")
    );
}

#[tokio::test]
async fn foreign_patient_leaks_another_members_resource_into_the_first_page() {
    let sandbox = start(with_faults(&[
        "foreign-patient:ExplanationOfBenefit",
        "foreign-patient:Organization",
    ]))
    .await;
    let token = token_for(&sandbox, JOHN).await;
    let (_, eobs) = search_all(&sandbox, &token, "ExplanationOfBenefit").await;
    let foreign: Vec<&Value> = eobs
        .iter()
        .filter(|e| e["patient"]["reference"] != "Patient/john-allen")
        .collect();
    assert_eq!(foreign.len(), 1);
    let (_, orgs) = search_all(&sandbox, &token, "Organization").await;
    let (_, clean_orgs) = {
        let clean = start(SandboxConfig::default()).await;
        let token = token_for(&clean, JOHN).await;
        search_all(&clean, &token, "Organization").await
    };
    assert_eq!(orgs.len(), clean_orgs.len() + 1);
}

#[tokio::test]
async fn drop_next_link_hides_the_rest_of_the_searchset() {
    let sandbox = start(with_faults(&["drop-next-link:ExplanationOfBenefit"])).await;
    let token = token_for(&sandbox, JOHN).await;
    let (pages, eobs) = search_all(&sandbox, &token, "ExplanationOfBenefit").await;
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0]["total"], 12);
    assert_eq!(eobs.len(), 10);
}

#[tokio::test]
async fn expire_codes_makes_every_exchange_invalid_grant() {
    let sandbox = start(with_faults(&["expire-codes"])).await;
    let code = code_for(&sandbox, JOHN, &[]).await;
    let (status, error, description) = oauth_error(exchange(&sandbox, &code, &[]).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    assert!(description.contains("expired"), "{description}");
}

#[tokio::test]
async fn slow_body_trickles_the_response_out() {
    let sandbox = start(with_faults(&["slow-body=50ms"])).await;
    let token = token_for(&sandbox, JOHN).await;
    let started = Instant::now();
    let body = get(&sandbox, &token, "ExplanationOfBenefit")
        .await
        .bytes()
        .await
        .expect("body");
    let chunks = body.len().div_ceil(1024) as u32;
    assert!(chunks > 5);
    assert!(
        started.elapsed() >= Duration::from_millis(50) * (chunks - 1),
        "{:?} for {chunks} chunks",
        started.elapsed()
    );
    assert!(
        serde_json::from_slice::<Value>(&body).is_ok(),
        "the body is complete"
    );
}

// ---- data --------------------------------------------------------------------------------

#[tokio::test]
async fn every_generated_resource_of_every_member_is_valid_r4() {
    let sandbox = start(SandboxConfig {
        members: 5,
        eobs_per_member: 9,
        ..SandboxConfig::default()
    })
    .await;
    let registry = Registry::global();
    for index in 0..sandbox.member_count() {
        let member = sandbox.member(index).expect("member");
        let id = member.identity.expect("identity");
        let token = token_for(
            &sandbox,
            [
                &id.first_name,
                &id.last_name,
                &id.birth_date,
                &id.member_id,
                &id.zip,
            ],
        )
        .await;
        for kind in [
            "ExplanationOfBenefit",
            "Coverage",
            "Organization",
            "Patient",
            "Practitioner",
            "Location",
        ] {
            let (pages, resources) = search_all(&sandbox, &token, kind).await;
            assert!(!resources.is_empty(), "member {index} {kind}");
            for page in pages {
                let checked = registry.check_bytes(&serde_json::to_vec(&page).expect("bytes"));
                assert!(
                    checked.findings.is_empty(),
                    "member {index} {kind}: {:?}",
                    checked.findings
                );
            }
        }
    }
}

#[tokio::test]
async fn a_large_generated_plan_serves_its_last_member_at_once() {
    // 10,000 members with 10 claims each: 100,000 ExplanationOfBenefit, none stored.
    let sandbox = start(SandboxConfig {
        members: 10_000,
        eobs_per_member: 10,
        ..SandboxConfig::default()
    })
    .await;
    let last = sandbox.member(9_999).expect("the last member");
    let id = last.identity.expect("identity");
    let token = token_for(
        &sandbox,
        [
            &id.first_name,
            &id.last_name,
            &id.birth_date,
            &id.member_id,
            &id.zip,
        ],
    )
    .await;
    let (_, eobs) = search_all(&sandbox, &token, "ExplanationOfBenefit?_count=4").await;
    assert_eq!(eobs.len(), 10);
    assert_eq!(eobs[9]["id"], format!("eob-{}-9", last.patient_id));
}

#[tokio::test]
async fn a_data_folder_is_served_per_patient() {
    let dir = tempfile::tempdir().expect("temp dir");
    let patient = |id: &str, given: &str, member: &str| {
        serde_json::json!({
            "resourceType": "Patient", "id": id,
            "identifier": [{"type": {"coding": [{"code": "MB"}]}, "value": member}],
            "name": [{"family": "Tester", "given": [given]}],
            "birthDate": "1980-02-03",
            "address": [{"postalCode": "12345"}]
        })
    };
    let bundle = serde_json::json!({
        "resourceType": "Bundle", "type": "collection",
        "entry": [
            {"resource": patient("p-ann", "Ann", "M-1")},
            {"resource": {"resourceType": "Coverage", "id": "c-ann", "status": "active", "beneficiary": {"reference": "Patient/p-ann"}, "payor": [{"reference": "Organization/payer"}]}},
            {"resource": {"resourceType": "Organization", "id": "payer", "name": "Their Plan"}},
            {"resource": {"resourceType": "Organization", "id": "unrelated", "name": "Nobody's"}},
            {"resource": {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/p-ann"}}}
        ]
    });
    common::write(dir.path(), "ann.json", &bundle.to_string());
    common::write(
        dir.path(),
        "more/bob.ndjson",
        &format!("{}\n", patient("p-bob", "Bob", "M-2")),
    );
    let sandbox = start(SandboxConfig {
        data: Some(dir.path().to_owned()),
        ..SandboxConfig::default()
    })
    .await;
    assert_eq!(sandbox.member_count(), 2);
    let ann = token_for(&sandbox, ["ann", "TESTER", "02/03/1980", "M-1", "12345"]).await;
    let (_, orgs) = search_all(&sandbox, &ann, "Organization").await;
    assert_eq!(orgs.len(), 1, "only the payer her Coverage references");
    assert_eq!(search_all(&sandbox, &ann, "Observation").await.1.len(), 1);
    assert_eq!(get(&sandbox, &ann, "Patient/p-bob").await.status(), 404);
    let bob = token_for(&sandbox, ["Bob", "Tester", "02/03/1980", "M-2", "12345"]).await;
    assert_eq!(search_all(&sandbox, &bob, "Coverage").await.1.len(), 0);

    let empty = tempfile::tempdir().expect("temp dir");
    common::write(
        empty.path(),
        "x.json",
        r#"{"resourceType":"Organization","id":"o"}"#,
    );
    let error = onramp::sandbox::Sandbox::start(SandboxConfig {
        data: Some(empty.path().to_owned()),
        ..SandboxConfig::default()
    })
    .await
    .expect_err("no patients");
    assert!(error.to_string().contains("data folder"), "{error}");
}

#[tokio::test]
async fn the_built_in_callback_page_shows_what_an_app_would_receive() {
    let sandbox = start(SandboxConfig::default()).await;
    let page = http()
        .get(format!("{}/callback", sandbox.origin()))
        .query(&[("code", "abc<script>"), ("state", "s1")])
        .send()
        .await
        .expect("answer")
        .text()
        .await
        .expect("page");
    assert!(page.contains("abc&lt;script&gt;"), "{page}");
    assert!(page.contains("s1"));
    let described = onramp::sandbox::describe(&sandbox);
    assert!(
        described.contains(&format!("redirect_uri={}/callback", sandbox.origin())),
        "{described}"
    );
}

// ---- the clients for apps under test ----------------------------------------------------------

/// The public app client proves itself with PKCE alone: its authorization request must carry
/// a challenge (whatever the server's PKCE mode), its code is exchanged with client_id and the
/// verifier and no secret, a code without the verifier is refused, and a secret it does not
/// have is refused.
#[tokio::test]
async fn the_public_app_client_needs_pkce_and_no_secret() {
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let app = onramp::sandbox::APP_PUBLIC_CLIENT_ID;
    let sandbox = start(SandboxConfig {
        pkce: PkceMode::Optional,
        ..SandboxConfig::default()
    })
    .await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let authorize = |extra: Vec<(&'static str, &'static str)>| {
        let mut query = vec![
            ("client_id", app),
            ("redirect_uri", "http://localhost:5/app/callback"),
            ("response_type", "code"),
            ("state", "app-state"),
        ];
        query.extend(extra);
        no_redirects
            .get(sandbox.authorize_url())
            .query(&query)
            .send()
    };
    let refused = authorize(Vec::new()).await.expect("answers");
    let location = refused.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(location.contains("error=invalid_request"), "{location}");
    let code = || async {
        let landing = authorize(vec![
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .await
        .expect("answers")
        .text()
        .await
        .expect("landing page");
        let verified = verify(&sandbox, &request_id(&landing), JOHN).await;
        let location = verified.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_owned();
        url::Url::parse(&location)
            .expect("redirect")
            .query_pairs()
            .find(|(k, _)| k == "code")
            .expect("a code")
            .1
            .into_owned()
    };
    let exchange = |code: String, extra: Vec<(&'static str, &'static str)>| {
        let mut form = vec![
            ("client_id", app.to_owned()),
            ("grant_type", "authorization_code".to_owned()),
            ("code", code),
            ("redirect_uri", "http://localhost:5/app/callback".to_owned()),
        ];
        form.extend(extra.into_iter().map(|(k, v)| (k, v.to_owned())));
        http().post(sandbox.token_url()).form(&form).send()
    };
    let granted = exchange(code().await, vec![("code_verifier", VERIFIER)])
        .await
        .expect("answers");
    assert_eq!(granted.status(), 200);
    let body: Value = granted.json().await.expect("JSON");
    assert!(body["access_token"].is_string(), "{body}");
    let (status, error, _) =
        oauth_error(exchange(code().await, Vec::new()).await.expect("answers")).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    let (status, error, description) = oauth_error(
        exchange(
            code().await,
            vec![("code_verifier", VERIFIER), ("client_secret", "guess")],
        )
        .await
        .expect("answers"),
    )
    .await;
    assert_eq!(
        (status, error.as_str()),
        (401, "invalid_client"),
        "{description}"
    );
    assert!(description.contains("public client"), "{description}");
}

// ---- the Blue Button persona ---------------------------------------------------------------

mod bluebutton {
    use super::*;
    use onramp::sandbox::{Persona, Sandbox};

    const CLIENT: (&str, &str) = ("bb-client", "bb-secret");

    async fn start_bluebutton(eobs_per_member: usize) -> Sandbox {
        start(SandboxConfig {
            persona: Persona::Bluebutton,
            members: 100,
            eobs_per_member,
            pkce: Persona::Bluebutton.default_pkce(),
            clients: vec![Client {
                client_id: CLIENT.0.into(),
                client_secret: Some(CLIENT.1.into()),
                redirect_uris: Vec::new(),
                any_loopback: true,
            }],
            ..SandboxConfig::default()
        })
        .await
    }

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    /// The login page for a PKCE authorization request.
    async fn login_page(sandbox: &Sandbox) -> String {
        http()
            .get(sandbox.authorize_url())
            .query(&[
                ("client_id", CLIENT.0),
                ("redirect_uri", REDIRECT),
                ("response_type", "code"),
                ("state", "bb-state"),
                ("scope", "openid profile patient/Patient.rs patient/Coverage.rs patient/ExplanationOfBenefit.rs"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .expect("authorize")
            .text()
            .await
            .expect("page")
    }

    async fn post(sandbox: &Sandbox, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        http()
            .post(format!("{}{path}", sandbox.authorize_url()))
            .form(form)
            .send()
            .await
            .expect("answers")
    }

    /// Log in as `user`, then answer the consent page with `share`; the redirect's code.
    async fn code(sandbox: &Sandbox, user: &str, password: &str, share: &str) -> String {
        let page = login_page(sandbox).await;
        let request = request_id(&page);
        let consent = post(
            sandbox,
            "login",
            &[
                ("request", &request),
                ("username", user),
                ("password", password),
            ],
        )
        .await
        .text()
        .await
        .expect("consent page");
        for text in [
            "Allow",
            "Deny",
            "Share healthcare data and personal information",
        ] {
            assert!(consent.contains(text), "{text}: {consent}");
        }
        let response = post(
            sandbox,
            "consent",
            &[("request", &request), ("action", "allow"), ("share", share)],
        )
        .await;
        assert_eq!(response.status(), 302);
        let at = location(&response);
        assert_eq!(query(&at, "state").as_deref(), Some("bb-state"));
        query(&at, "code").expect("a code")
    }

    async fn exchange(sandbox: &Sandbox, form: &[(&str, &str)], basic: bool) -> reqwest::Response {
        let mut request = http().post(sandbox.token_url()).form(form);
        if basic {
            request = request.basic_auth(CLIENT.0, Some(CLIENT.1));
        }
        request.send().await.expect("token answers")
    }

    /// The token response for `code`, exchanged as the persona wants it.
    async fn tokens(sandbox: &Sandbox, code: &str) -> Value {
        exchange(
            sandbox,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
            true,
        )
        .await
        .json()
        .await
        .expect("token JSON")
    }

    #[tokio::test]
    async fn an_enrollee_logs_in_consents_and_the_app_gets_tokens_with_basic_auth_only() {
        let sandbox = start_bluebutton(12).await;
        assert!(sandbox.authorize_url().ends_with("/v2/o/authorize/"));
        assert!(sandbox.token_url().ends_with("/v2/o/token/"));
        assert!(sandbox.fhir_base().ends_with("/v2/fhir"));
        let page = login_page(&sandbox).await;
        for text in [
            "<label for=\"username\">Username</label>",
            "<label for=\"password\">Password</label>",
            "Log in",
        ] {
            assert!(page.contains(text), "{text}: {page}");
        }
        // A wrong password shows the login page again.
        let request = request_id(&page);
        let wrong = post(
            &sandbox,
            "login",
            &[
                ("request", &request),
                ("username", "BBUser00007"),
                ("password", "PW00008!"),
            ],
        )
        .await;
        assert_eq!(wrong.status(), 200);
        assert!(wrong.text().await.expect("page").contains("incorrect"));

        let code = code(&sandbox, "BBUser00007", "PW00007!", "yes").await;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ];
        // The secret in the body is not how this server authenticates clients.
        let mut in_body = form.to_vec();
        in_body.extend([("client_id", CLIENT.0), ("client_secret", CLIENT.1)]);
        let (status, error, _) = oauth_error(exchange(&sandbox, &in_body, false).await).await;
        assert_eq!((status, error.as_str()), (401, "invalid_client"));
        // Without redirect_uri the exchange is refused (RFC 6749 §4.1.3).
        let (status, error, _) =
            oauth_error(exchange(&sandbox, &[form[0], form[1], form[3]], true).await).await;
        assert_eq!((status, error.as_str()), (400, "invalid_request"));
        let body: Value = exchange(&sandbox, &form, true)
            .await
            .json()
            .await
            .expect("token JSON");
        assert_eq!(body["patient"], "m00007");
        assert!(
            body["scope"]
                .as_str()
                .expect("scope")
                .contains("patient/Patient.rs")
        );
        sandbox.shutdown().await;
    }

    #[tokio::test]
    async fn withholding_personal_information_drops_the_patient_scope() {
        let sandbox = start_bluebutton(12).await;
        let code = code(&sandbox, "BBUser00000", "PW00000!", "no").await;
        let body = tokens(&sandbox, &code).await;
        let scope = body["scope"].as_str().expect("scope");
        assert!(
            !scope.contains("Patient.rs") && !scope.contains("profile"),
            "{scope}"
        );
        assert!(scope.contains("patient/Coverage.rs"), "{scope}");
        sandbox.shutdown().await;
    }

    #[tokio::test]
    async fn pkce_is_required_and_only_three_types_are_served_fifty_a_page() {
        let sandbox = start_bluebutton(60).await;
        let without_pkce = http()
            .get(sandbox.authorize_url())
            .query(&[("client_id", CLIENT.0), ("redirect_uri", REDIRECT)])
            .send()
            .await
            .expect("authorize");
        assert_eq!(without_pkce.status(), 302);
        assert_eq!(
            query(&location(&without_pkce), "error").as_deref(),
            Some("invalid_request")
        );
        let code = code(&sandbox, "BBUser00000", "PW00000!", "yes").await;
        let body = tokens(&sandbox, &code).await;
        let token = body["access_token"].as_str().expect("token");
        let metadata: Value = get(&sandbox, token, "metadata")
            .await
            .json()
            .await
            .expect("metadata");
        let types: Vec<&str> = metadata["rest"][0]["resource"]
            .as_array()
            .expect("resources")
            .iter()
            .filter_map(|r| r["type"].as_str())
            .collect();
        assert_eq!(types, ["Coverage", "ExplanationOfBenefit", "Patient"]);
        assert_eq!(get(&sandbox, token, "Organization").await.status(), 404);
        let page: Value = get(&sandbox, token, "ExplanationOfBenefit?_count=100")
            .await
            .json()
            .await
            .expect("page");
        assert_eq!(page["entry"].as_array().map(Vec::len), Some(50));
        assert_eq!(page["total"], 60);
        sandbox.shutdown().await;
    }
}

#[tokio::test]
async fn five_wrong_identities_end_the_sign_in() {
    let sandbox = start(SandboxConfig::default()).await;
    let landing = authorize(&sandbox, &[]).await.text().await.expect("page");
    let request = request_id(&landing);
    let wrong = ["John", "Allen", "10/19/1951", "123456789123", "02114"];
    for _ in 0..4 {
        assert_eq!(verify(&sandbox, &request, wrong).await.status(), 200);
    }
    let fifth = verify(&sandbox, &request, wrong).await;
    assert_eq!(fifth.status(), 429);
    assert!(
        fifth
            .text()
            .await
            .expect("page")
            .contains("Too many attempts")
    );
    // Ended: even the right details no longer finish it; a new sign-in does.
    assert_ne!(verify(&sandbox, &request, JOHN).await.status(), 302);
    assert!(!code_for(&sandbox, JOHN, &[]).await.is_empty());
}

/// Guessing one member's details over many sign-ins is not free: after ten wrong tries at a
/// member ID, signing in as that member pauses (even with the right details), saying for
/// how long; other members sign in as before.
#[tokio::test]
async fn wrong_tries_at_one_member_pause_their_sign_ins() {
    let sandbox = start(SandboxConfig::default()).await;
    let wrong = ["John", "Allen", "10/19/1951", "123456789123", "02114"];
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let landing = authorize(&sandbox, &[]).await.text().await.expect("page");
        let request = request_id(&landing);
        for _ in 0..5 {
            statuses.push(verify(&sandbox, &request, wrong).await.status().as_u16());
        }
    }
    // Each sign-in ends at its fifth wrong try; the tenth at the member pauses the member.
    assert_eq!(statuses, [200, 200, 200, 200, 429, 200, 200, 200, 200, 429]);
    let landing = authorize(&sandbox, &[]).await.text().await.expect("page");
    let right = verify(&sandbox, &request_id(&landing), JOHN).await;
    assert_eq!(right.status(), 429);
    let page = right.text().await.expect("page");
    assert!(page.contains("paused for 60 seconds"), "{page}");
    assert!(page.contains("Wait 60 seconds"), "{page}");
    // Another member ID is not paused.
    let other = ["Jane", "Doe", "01/01/1970", "999999999999", "02114"];
    let landing = authorize(&sandbox, &[]).await.text().await.expect("page");
    assert_eq!(
        verify(&sandbox, &request_id(&landing), other)
            .await
            .status(),
        200
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_and_state_is_bounded() {
    let sandbox = start(SandboxConfig::default()).await;
    let token = token_for(&sandbox, JOHN).await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let answer = http()
            .get(format!("{}/Patient", sandbox.fhir_base()))
            .header("Authorization", format!("{scheme} {token}"))
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 200, "{scheme}");
    }
    let basic = http()
        .get(format!("{}/Patient", sandbox.fhir_base()))
        .header("Authorization", format!("Basic {token}"))
        .send()
        .await
        .expect("answer");
    assert_eq!(basic.status(), 401);
    // A state of 2 KB is kept and returned; a longer one is refused with invalid_request.
    let kept = "s".repeat(2048);
    let landing = authorize(&sandbox, &[("state", &kept)]).await;
    assert_eq!(landing.status(), 200);
    let huge = "s".repeat(2049);
    let refused = authorize(&sandbox, &[("state", &huge)]).await;
    assert_eq!(refused.status(), 302);
    let to = location(&refused);
    assert_eq!(query(&to, "error").as_deref(), Some("invalid_request"));
    assert!(query(&to, "state").is_none());
}

#[tokio::test]
async fn every_type_searches_by_id() {
    let sandbox = start(SandboxConfig::default()).await;
    let token = token_for(&sandbox, JOHN).await;
    for kind in [
        "Patient",
        "Coverage",
        "ExplanationOfBenefit",
        "Organization",
        "Practitioner",
        "Location",
    ] {
        let all = get(&sandbox, &token, kind)
            .await
            .json::<Value>()
            .await
            .expect("JSON");
        let id = all["entry"][0]["resource"]["id"]
            .as_str()
            .expect("an id")
            .to_owned();
        let one = get(&sandbox, &token, &format!("{kind}?_id={id}"))
            .await
            .json::<Value>()
            .await
            .expect("JSON");
        let ids: Vec<&str> = one["entry"]
            .as_array()
            .expect("entries")
            .iter()
            .filter_map(|e| e["resource"]["id"].as_str())
            .collect();
        assert_eq!(ids, [id.as_str()], "{kind}");
        let none = get(&sandbox, &token, &format!("{kind}?_id=no-such-id"))
            .await
            .json::<Value>()
            .await
            .expect("JSON");
        assert_eq!(none["total"], 0, "{kind}");
    }
}

#[tokio::test]
async fn a_token_reads_only_the_types_its_scopes_grant() {
    let sandbox = start(SandboxConfig::default()).await;
    for (scope, readable, refused) in [
        (
            "openid fhirUser launch/patient",
            &[][..],
            &["Patient", "ExplanationOfBenefit"][..],
        ),
        (
            "patient/Coverage.read",
            &["Coverage"][..],
            &["ExplanationOfBenefit", "Patient"][..],
        ),
        (
            "patient/Coverage.rs",
            &["Coverage"][..],
            &["ExplanationOfBenefit"][..],
        ),
        (
            "patient/*.rs",
            &["Coverage", "ExplanationOfBenefit", "Patient"][..],
            &[][..],
        ),
        ("patient/*.read", &["Organization", "Location"][..], &[][..]),
    ] {
        let body = tokens(&sandbox, scope).await;
        let token = body["access_token"].as_str().expect("access_token");
        for kind in readable {
            assert_eq!(
                get(&sandbox, token, kind).await.status(),
                200,
                "{scope}: {kind}"
            );
        }
        for kind in refused {
            let answer = get(&sandbox, token, kind).await;
            assert_eq!(answer.status(), 403, "{scope}: {kind}");
            assert!(
                answer.headers()["www-authenticate"]
                    .to_str()
                    .unwrap_or_default()
                    .contains("insufficient_scope")
            );
            let outcome: Value = answer.json().await.expect("JSON");
            assert_eq!(
                outcome["resourceType"], "OperationOutcome",
                "{scope}: {kind}"
            );
        }
    }
}

/// The member's clinical data (US Core 6.1.0 shapes): searched by patient, read by id, valid
/// at every tier against the US Core profiles it declares, and the member's alone.
#[tokio::test]
async fn the_members_clinical_data_is_theirs_and_us_core() {
    let sandbox = start(SandboxConfig::default()).await;
    let john = token_for(&sandbox, JOHN).await;
    let john_id = sandbox.member(0).expect("John").patient_id.clone();
    let other = sandbox.member(1).expect("a second member");
    let validator = onramp::validate::Validator::default();
    for kind in [
        "AllergyIntolerance",
        "Condition",
        "Observation",
        "Immunization",
        "MedicationRequest",
        "Procedure",
        "Encounter",
        "DiagnosticReport",
        "DocumentReference",
        "CarePlan",
        "CareTeam",
        "Goal",
    ] {
        let (_, mine) = search_all(&sandbox, &john, &format!("{kind}?patient={john_id}")).await;
        assert!(!mine.is_empty(), "{kind}");
        for resource in &mine {
            let text = resource.to_string();
            assert!(
                text.contains(&format!("Patient/{john_id}")),
                "{kind}: {text}"
            );
            let checked = validator.check_bytes(text.as_bytes());
            assert!(
                checked.findings.is_empty(),
                "{kind}: {:#?}",
                checked.findings
            );
            assert!(
                checked.profiled > 0,
                "{kind}: checked against its US Core profile"
            );
        }
        let id = mine[0]["id"].as_str().expect("id");
        assert_eq!(
            get(&sandbox, &john, &format!("{kind}/{id}")).await.status(),
            200
        );
        let (_, theirs) = search_all(
            &sandbox,
            &john,
            &format!("{kind}?patient={}", other.patient_id),
        )
        .await;
        assert!(theirs.is_empty(), "{kind}: another member's are not John's");
    }
    // A MedicationRequest's Medication is the member's own, and readable.
    let (_, medications) = search_all(&sandbox, &john, "Medication").await;
    assert!(!medications.is_empty());
    let id = medications[0]["id"].as_str().expect("id");
    assert_eq!(
        get(&sandbox, &john, &format!("Medication/{id}"))
            .await
            .status(),
        200
    );
}

/// What one pending sign-in can hold is bounded in bytes: an over-long redirect URI is
/// refused on a page (never redirected to), an over-long scope with invalid_request.
#[tokio::test]
async fn over_long_authorization_parameters_are_refused() {
    let sandbox = start(SandboxConfig::default()).await;
    let long_redirect = format!("http://127.0.0.1:9/callback?pad={}", "x".repeat(3000));
    let response = http()
        .get(sandbox.authorize_url())
        .query(&[
            ("client_id", DEMO_CLIENT_ID),
            ("redirect_uri", long_redirect.as_str()),
        ])
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    let page = response.text().await.expect("page");
    assert!(page.contains("longer than 2048 bytes"), "{page}");

    let long_scope = "patient/*.read ".repeat(100);
    let response = http()
        .get(sandbox.authorize_url())
        .query(&[
            ("client_id", DEMO_CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("state", "s1"),
            ("scope", long_scope.as_str()),
        ])
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 302);
    let to = location(&response);
    assert_eq!(query(&to, "error").as_deref(), Some("invalid_request"));
    assert_eq!(query(&to, "state").as_deref(), Some("s1"));
}
