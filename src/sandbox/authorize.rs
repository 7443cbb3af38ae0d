//! The authorization endpoint and the member's identity pages.
//!
//! The authorization endpoint checks the app (unknown client or unregistered redirect URI:
//! an error page, never a redirect), then shows the persona's sign-in:
//!
//! - demo plan (`GET /oauth2/authorize/test`): a landing page with **Click here to confirm
//!   identity**, then the identity form (First Name, Last Name, Birthdate MM/DD/YYYY, Plan
//!   Member ID, Zip Code); **Verify identity** with a member's details redirects to the app
//!   with a single-use code and the app's `state`; **Cancel** redirects with
//!   `error=access_denied`; a mismatch shows the form again and issues nothing.
//! - Blue Button (`GET /v2/o/authorize/`): a login page (**Username**, **Password**, **Log
//!   in**), then a consent page (**Allow** / **Deny**, with a choice to withhold personal
//!   information, which drops the Patient scopes).

#![expect(
    clippy::result_large_err,
    reason = "a refused request is answered with its page: the error is the response itself"
)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, RawQuery, State as Shared};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use url::Url;

use super::data::Identity;
use super::faults::Fault;
use super::grants::SignIn;
use super::persona::Persona;
use super::{PkceMode, SYSTEM, State, html_page};

/// Scopes the payer's guide lists, plus the SMART ones apps commonly send with them.
pub const SCOPES_SUPPORTED: [&str; 8] = [
    "patient/*.read",
    "user/*.read",
    "launch/patient",
    "openid",
    "fhirUser",
    "offline_access",
    "patient/*.rs",
    "user/*.rs",
];
/// Granted when the request names no scope.
pub const DEFAULT_SCOPE: &str = "patient/*.read";
/// Longest value accepted in any identity form field.
const FIELD_LIMIT: usize = 200;

/// A scope this server grants: one of [`SCOPES_SUPPORTED`], or a resource-level SMART scope
/// such as `patient/ExplanationOfBenefit.read`.
/// The longest `state` the sandbox keeps.
const MAX_STATE_BYTES: usize = 2048;
/// The longest `redirect_uri` and `scope` it keeps: with `state`, what one pending sign-in
/// can hold, so that a flood of authorization requests is bounded in bytes, not only in
/// entries (browsers themselves cut URLs near 2 KB).
const MAX_REDIRECT_URI_BYTES: usize = 2048;
const MAX_SCOPE_BYTES: usize = 1024;

fn is_supported_scope(scope: &str) -> bool {
    if SCOPES_SUPPORTED.contains(&scope) {
        return true;
    }
    let Some((context, rest)) = scope.split_once('/') else {
        return false;
    };
    let Some((kind, access)) = rest.split_once('.') else {
        return false;
    };
    matches!(context, "patient" | "user")
        && matches!(access, "read" | "rs" | "r" | "s")
        && crate::validate::Registry::global().is_resource_type(kind)
}

/// Parse a query or form body strictly: every parameter once (RFC 6749 §3.1).
pub(crate) fn parameters(raw: &str) -> Result<HashMap<String, String>, Repeated> {
    let mut seen = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        if seen.insert(name.to_string(), value.into_owned()).is_some() {
            return Err(Repeated(name.into_owned()));
        }
    }
    Ok(seen)
}

/// A parameter sent twice (RFC 6749 §3.1: request and response parameters MUST NOT be
/// included more than once).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the parameter `{0}` appears more than once")]
pub(crate) struct Repeated(pub String);

fn error_page(
    state: &State,
    status: StatusCode,
    title: &str,
    message: &str,
    advice: &str,
) -> Response {
    html_page(status, state.pages.error(title, message, advice))
}

/// `redirect_uri` with OAuth parameters added to its query.
fn redirect(redirect_uri: &str, pairs: &[(&str, Option<&str>)]) -> Response {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "redirect URI is not a URL").into_response();
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in pairs {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
    }
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(location) = HeaderValue::from_str(url.as_str()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn error_redirect(
    redirect_uri: &str,
    error: &str,
    description: &str,
    state: Option<&str>,
) -> Response {
    redirect(
        redirect_uri,
        &[
            ("error", Some(error)),
            ("error_description", Some(description)),
            ("state", state),
        ],
    )
}

#[derive(Serialize)]
struct Landing<'a> {
    client_id: &'a str,
    scope: &'a str,
    redirect_uri: &'a str,
    identity_url: String,
    identity_action: String,
    request: &'a str,
}

/// The authorization request in `query`, checked: the sign-in to remember, or the page
/// (or error redirect) that answers it.
fn request(state: &State, query: Option<&str>) -> Result<SignIn, Response> {
    let params = parameters(query.unwrap_or_default()).map_err(|problem| {
        error_page(
            state,
            StatusCode::BAD_REQUEST,
            "Bad sign-in request",
            &problem.to_string(),
            "Go back to the app and start again.",
        )
    })?;
    let Some(client_id) = params.get("client_id").filter(|c| !c.is_empty()) else {
        return Err(error_page(
            state,
            StatusCode::BAD_REQUEST,
            "Bad sign-in request",
            "The request does not say which app is asking (client_id is missing).",
            "The app's authorization URL must include client_id and redirect_uri.",
        ));
    };
    let Some(client) = state.client(client_id) else {
        return Err(error_page(
            state,
            StatusCode::BAD_REQUEST,
            "Unknown app",
            &format!("No app with client_id \"{client_id}\" is registered with this health plan."),
            "Check the client_id, or ask the plan to sync your app to the demo environment.",
        ));
    };
    let Some(redirect_uri) = params.get("redirect_uri").filter(|r| !r.is_empty()) else {
        return Err(error_page(
            state,
            StatusCode::BAD_REQUEST,
            "Bad sign-in request",
            "The request does not say where to return (redirect_uri is missing).",
            "Include the redirect_uri registered for the app.",
        ));
    };
    // Too long to be a registered redirect URI: said here, never redirected to.
    if redirect_uri.len() > MAX_REDIRECT_URI_BYTES {
        return Err(error_page(
            state,
            StatusCode::BAD_REQUEST,
            "Bad sign-in request",
            &format!("The redirect_uri is longer than {MAX_REDIRECT_URI_BYTES} bytes."),
            "Use the redirect URI registered for the app.",
        ));
    }
    if !client.accepts_redirect(redirect_uri) && !state.faults.has(&Fault::OpenRedirect) {
        return Err(error_page(
            state,
            StatusCode::BAD_REQUEST,
            "Unregistered redirect URI",
            &format!("\"{redirect_uri}\" is not a redirect URI registered for {client_id}."),
            "Use a redirect URI registered for the app; the health plan never redirects anywhere else.",
        ));
    }
    let app_state = params.get("state").map(String::as_str);
    // `state` is the app's to choose (RFC 6749 §4.1.1), but the server keeps it per pending
    // sign-in: an unbounded one would let anyone fill the server's memory.
    if app_state.is_some_and(|s| s.len() > MAX_STATE_BYTES) {
        return Err(error_redirect(
            redirect_uri,
            "invalid_request",
            &format!("state is longer than {MAX_STATE_BYTES} bytes"),
            None,
        ));
    }
    if params
        .get("scope")
        .is_some_and(|s| s.len() > MAX_SCOPE_BYTES)
    {
        return Err(error_redirect(
            redirect_uri,
            "invalid_request",
            &format!("scope is longer than {MAX_SCOPE_BYTES} bytes"),
            app_state,
        ));
    }
    if let Some(kind) = params.get("response_type")
        && kind != "code"
    {
        return Err(error_redirect(
            redirect_uri,
            "unsupported_response_type",
            "only response_type=code is supported",
            app_state,
        ));
    }
    let scope = granted_scope(&params, redirect_uri, app_state)?;
    let code_challenge = code_challenge(state, client, &params, redirect_uri, app_state)?;
    Ok(SignIn {
        client_id: client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        state: app_state.map(str::to_owned),
        scope,
        code_challenge,
        member: None,
        started: Instant::now(),
        attempts: 0,
    })
}

/// The scopes granted: the supported ones of those asked for, or the default when none was
/// asked; an error redirect when none asked for is supported.
fn granted_scope(
    params: &HashMap<String, String>,
    redirect_uri: &str,
    app_state: Option<&str>,
) -> Result<String, Response> {
    Ok(match params.get("scope") {
        None => DEFAULT_SCOPE.to_owned(),
        Some(requested) => {
            let granted: Vec<&str> = requested
                .split_whitespace()
                .filter(|s| is_supported_scope(s))
                .collect();
            if granted.is_empty() {
                return Err(error_redirect(
                    redirect_uri,
                    "invalid_scope",
                    "none of the requested scopes is supported; see scopes_supported in .well-known/smart-configuration",
                    app_state,
                ));
            }
            granted.join(" ")
        }
    })
}

/// The PKCE challenge of the request, as the server's PKCE mode takes it (RFC 7636 §4.3:
/// S256 only, 43 base64url characters).
/// A public client must send one whatever the mode: PKCE is its only proof (SMART App
/// Launch 2.0 §"client-public").
fn code_challenge(
    state: &State,
    client: &super::Client,
    params: &HashMap<String, String>,
    redirect_uri: &str,
    app_state: Option<&str>,
) -> Result<Option<String>, Response> {
    let mode = if client.is_public() {
        PkceMode::Required
    } else {
        state.config.pkce
    };
    Ok(match mode {
        PkceMode::Off => None,
        mode => {
            let method = params.get("code_challenge_method").map(String::as_str);
            match (params.get("code_challenge"), method) {
                (Some(_), Some(m)) if m != "S256" => {
                    return Err(error_redirect(
                        redirect_uri,
                        "invalid_request",
                        "only code_challenge_method=S256 is supported",
                        app_state,
                    ));
                }
                (Some(challenge), _)
                    if challenge.len() != 43
                        || !challenge
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
                {
                    return Err(error_redirect(
                        redirect_uri,
                        "invalid_request",
                        "code_challenge must be the 43-character base64url SHA-256 of the code_verifier",
                        app_state,
                    ));
                }
                (Some(_), None) => {
                    return Err(error_redirect(
                        redirect_uri,
                        "invalid_request",
                        "code_challenge_method=S256 is required with code_challenge",
                        app_state,
                    ));
                }
                (Some(challenge), Some(_)) => Some(challenge.clone()),
                (None, _) if mode == PkceMode::Required => {
                    return Err(error_redirect(
                        redirect_uri,
                        "invalid_request",
                        "this server requires PKCE: send code_challenge with code_challenge_method=S256",
                        app_state,
                    ));
                }
                (None, _) => None,
            }
        }
    })
}

/// Remember a checked sign-in; its id.
fn remember(state: &State, sign_in: SignIn) -> Result<String, Response> {
    Ok(state.grants.start_sign_in(sign_in))
}

/// The page for a sign-in ended by [`crate::sandbox::grants::MAX_ATTEMPTS`] wrong tries.
fn locked_out(state: &State) -> Response {
    error_page(
        state,
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        "The details did not match too many times, so this sign-in has ended.",
        "Go back to the app and connect again.",
    )
}

/// The page while signing in as one member pauses after
/// [`crate::sandbox::grants::MEMBER_FAILURES`] wrong tries at them, over any sign-ins.
fn member_paused(state: &State, wait: std::time::Duration) -> Response {
    let seconds = wait.as_millis().div_ceil(1000).max(1);
    error_page(
        state,
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        &format!(
            "The details for this member did not match too many times, so signing in as them is paused for {seconds} seconds."
        ),
        &format!(
            "Wait {seconds} seconds, then go back to the app and connect again with the details on your member ID card."
        ),
    )
}

/// `GET /oauth2/authorize/{system}` (demo plan): the landing page.
pub(crate) async fn start(
    Shared(state): Shared<Arc<State>>,
    Path(system): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    if system != SYSTEM {
        return error_page(
            &state,
            StatusCode::NOT_FOUND,
            "Unknown health system",
            &format!("There is no health system called \"{system}\" here."),
            &format!("The demo health plan signs members in at /oauth2/authorize/{SYSTEM}."),
        );
    }
    let sign_in = match request(&state, query.as_deref()) {
        Ok(sign_in) => sign_in,
        Err(answer) => return answer,
    };
    let (client_id, scope, redirect_uri) = (
        sign_in.client_id.clone(),
        sign_in.scope.clone(),
        sign_in.redirect_uri.clone(),
    );
    let request = match remember(&state, sign_in) {
        Ok(request) => request,
        Err(answer) => return answer,
    };
    let action = format!("/oauth2/authorize/{SYSTEM}/identity");
    let page = state.pages.render(
        "landing",
        &Landing {
            client_id: &client_id,
            scope: &scope,
            redirect_uri: &redirect_uri,
            identity_url: format!("{action}?request={request}"),
            identity_action: action,
            request: &request,
        },
    );
    html_page(StatusCode::OK, page)
}

#[derive(Serialize, Default)]
struct Values {
    first_name: String,
    last_name: String,
    birth_date: String,
    member_id: String,
    zip: String,
}

#[derive(Serialize)]
struct IdentityPage<'a> {
    request: &'a str,
    identity_action: String,
    error: Option<&'a str>,
    values: Values,
}

fn identity_page(
    state: &State,
    status: StatusCode,
    request: &str,
    error: Option<&str>,
    values: Values,
) -> Response {
    let page = state.pages.render(
        "identity",
        &IdentityPage {
            request,
            identity_action: format!("/oauth2/authorize/{SYSTEM}/identity"),
            error,
            values,
        },
    );
    html_page(status, page)
}

fn expired(state: &State) -> Response {
    error_page(
        state,
        StatusCode::BAD_REQUEST,
        "Sign-in expired",
        "This sign-in is unknown, finished, or more than 30 minutes old.",
        "Go back to the app and connect again.",
    )
}

/// `GET /oauth2/authorize/{system}/identity?request=...`
pub(crate) async fn identity_form(
    Shared(state): Shared<Arc<State>>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = parameters(query.as_deref().unwrap_or_default()).unwrap_or_default();
    let Some(request) = params.get("request") else {
        return expired(&state);
    };
    if state.grants.sign_in(request).is_none() {
        return expired(&state);
    }
    identity_page(&state, StatusCode::OK, request, None, Values::default())
}

/// `POST /oauth2/authorize/{system}/identity`: verify, or cancel.
pub(crate) async fn identity_submit(
    Shared(state): Shared<Arc<State>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (params, sign_in, request) = match posted(&state, &headers, &body) {
        Ok(posted) => posted,
        Err(answer) => return answer,
    };
    let request = request.as_str();
    if params.get("action").map(String::as_str) == Some("cancel") {
        let _ = state.grants.finish_sign_in(request);
        return error_redirect(
            &sign_in.redirect_uri,
            "access_denied",
            "the member cancelled the sign-in",
            sign_in.state.as_deref(),
        );
    }
    let field = |name: &str| {
        params
            .get(name)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let values = Values {
        first_name: field("first_name"),
        last_name: field("last_name"),
        birth_date: field("birth_date"),
        member_id: field("member_id"),
        zip: field("zip"),
    };
    let all = [
        &values.first_name,
        &values.last_name,
        &values.birth_date,
        &values.member_id,
        &values.zip,
    ];
    if all.iter().any(|v| v.chars().count() > FIELD_LIMIT) {
        return identity_page(
            &state,
            StatusCode::BAD_REQUEST,
            request,
            Some("One of the fields is far too long."),
            Values::default(),
        );
    }
    if all.iter().any(|v| v.is_empty()) {
        return identity_page(
            &state,
            StatusCode::OK,
            request,
            Some("Fill in every field."),
            values,
        );
    }
    if !is_us_date(&values.birth_date) {
        return identity_page(
            &state,
            StatusCode::OK,
            request,
            Some("Enter your birthdate as MM/DD/YYYY, for example 10/19/1950."),
            values,
        );
    }
    let typed = Identity {
        first_name: values.first_name.clone(),
        last_name: values.last_name.clone(),
        birth_date: values.birth_date.clone(),
        member_id: values.member_id.clone(),
        zip: values.zip.clone(),
    };
    if let Some(wait) = state.grants.member_paused(&values.member_id) {
        return member_paused(&state, wait);
    }
    let found = state.store.find_member(&typed).map(|member| {
        if state.faults.has(&Fault::SignInAsFirst) {
            state.store.member(0).unwrap_or(member)
        } else {
            member
        }
    });
    let Some(member) = found else {
        if let Some(wait) = state.grants.member_failed(&values.member_id) {
            return member_paused(&state, wait);
        }
        if !state.grants.failed_attempt(request) {
            return locked_out(&state);
        }
        return identity_page(
            &state,
            StatusCode::OK,
            request,
            Some(
                "We could not verify your identity with these details. Check them against your member ID card and try again.",
            ),
            values,
        );
    };
    state.grants.member_succeeded(&values.member_id);
    let Some(sign_in) = state.grants.finish_sign_in(request) else {
        return expired(&state);
    };
    code_redirect(&state, &sign_in, member.index)
}

/// Issue a code for `member` and send the browser back to the app with it (as the faults
/// allow).
fn code_redirect(state: &State, sign_in: &SignIn, member: usize) -> Response {
    let Some(code) = state
        .grants
        .issue_code(sign_in, member, state.config.code_lifetime)
    else {
        return error_page(
            state,
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            "Too many codes are outstanding.",
            "Try again in a few minutes.",
        );
    };
    let mut target = sign_in.redirect_uri.clone();
    if state.faults.has(&Fault::WrongRedirect)
        && let Ok(mut url) = Url::parse(&target)
    {
        let path = format!("{}/elsewhere", url.path().trim_end_matches('/'));
        url.set_path(&path);
        target = url.to_string();
    }
    let code = (!state.faults.has(&Fault::OmitCode)).then_some(code.as_str());
    let app_state = if state.faults.has(&Fault::WrongState) {
        Some("not-the-state-the-app-sent")
    } else {
        sign_in.state.as_deref()
    };
    redirect(&target, &[("code", code), ("state", app_state)])
}

#[derive(Serialize)]
struct LoginPage<'a> {
    client_id: &'a str,
    request: &'a str,
    action: &'a str,
    username: &'a str,
    error: Option<&'a str>,
    last_user: String,
    /// `password`, or `text` with the `password-as-text` fault.
    password_type: &'static str,
}

fn login_page(
    state: &State,
    status: StatusCode,
    request: &str,
    client_id: &str,
    username: &str,
    error: Option<&str>,
) -> Response {
    let action = format!("{}login", state.config.persona.authorize_path());
    let page = state.pages.render(
        "login",
        &LoginPage {
            client_id,
            request,
            action: &action,
            username,
            error,
            last_user: format!("{:05}", state.store.member_count().saturating_sub(1)),
            password_type: if state.faults.has(&Fault::PasswordAsText) {
                "text"
            } else {
                "password"
            },
        },
    );
    html_page(status, page)
}

/// `GET /v2/o/authorize/` (Blue Button): the login page.
pub(crate) async fn login_start(
    Shared(state): Shared<Arc<State>>,
    RawQuery(query): RawQuery,
) -> Response {
    let sign_in = match request(&state, query.as_deref()) {
        Ok(sign_in) => sign_in,
        Err(answer) => return answer,
    };
    let client_id = sign_in.client_id.clone();
    match remember(&state, sign_in) {
        Ok(request) => login_page(&state, StatusCode::OK, &request, &client_id, "", None),
        Err(answer) => answer,
    }
}

/// The form body of a POST, refused unless it is a well-formed urlencoded form.
fn form(
    state: &State,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<HashMap<String, String>, Response> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    let Ok(text) = std::str::from_utf8(body) else {
        return Err(error_page(
            state,
            StatusCode::BAD_REQUEST,
            "Bad form",
            "The form was not sent as UTF-8 text.",
            "Go back and try again.",
        ));
    };
    match parameters(text) {
        Ok(params) if is_form => Ok(params),
        Ok(_) => Err(error_page(
            state,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Bad form",
            "The form must be sent as application/x-www-form-urlencoded.",
            "Use the form on the page.",
        )),
        Err(problem) => Err(error_page(
            state,
            StatusCode::BAD_REQUEST,
            "Bad form",
            &problem.to_string(),
            "Use the form on the page.",
        )),
    }
}

/// A posted sign-in form: its parameters, the sign-in it continues (by its `request` id)
/// and that id; or the page that refuses it.
fn posted(
    state: &State,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<(HashMap<String, String>, SignIn, String), Response> {
    let params = form(state, headers, body)?;
    let request = params
        .get("request")
        .cloned()
        .ok_or_else(|| expired(state))?;
    let sign_in = state
        .grants
        .sign_in(&request)
        .ok_or_else(|| expired(state))?;
    Ok((params, sign_in, request))
}

/// `POST /v2/o/authorize/login`: a synthetic enrollee's username and password, then the
/// consent page.
pub(crate) async fn login_submit(
    Shared(state): Shared<Arc<State>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (params, sign_in, request) = match posted(&state, &headers, &body) {
        Ok(posted) => posted,
        Err(answer) => return answer,
    };
    let request = request.as_str();
    let username = params.get("username").map(|u| u.trim()).unwrap_or_default();
    let password = params
        .get("password")
        .map(String::as_str)
        .unwrap_or_default();
    if username.chars().count() > FIELD_LIMIT || password.chars().count() > FIELD_LIMIT {
        return login_page(
            &state,
            StatusCode::BAD_REQUEST,
            request,
            &sign_in.client_id,
            "",
            Some("The username or password is far too long."),
        );
    }
    if let Some(wait) = state.grants.member_paused(username) {
        return member_paused(&state, wait);
    }
    let member = Persona::member_of_username(username)
        .filter(|index| *index < state.store.member_count())
        .filter(|index| password == Persona::password_of(*index))
        .map(|index| {
            if state.faults.has(&Fault::SignInAsFirst) {
                0
            } else {
                index
            }
        });
    let Some(member) = member else {
        if let Some(wait) = state.grants.member_failed(username) {
            return member_paused(&state, wait);
        }
        if !state.grants.failed_attempt(request) {
            return locked_out(&state);
        }
        return login_page(
            &state,
            StatusCode::OK,
            request,
            &sign_in.client_id,
            username,
            Some("The username or password is incorrect."),
        );
    };
    state.grants.member_succeeded(username);
    if !state.grants.verify_sign_in(request, member) {
        return expired(&state);
    }
    #[derive(Serialize)]
    struct ConsentPage<'a> {
        client_id: &'a str,
        scope: &'a str,
        redirect_uri: &'a str,
        request: &'a str,
        action: String,
    }
    let page = state.pages.render(
        "consent",
        &ConsentPage {
            client_id: &sign_in.client_id,
            scope: &sign_in.scope,
            redirect_uri: &sign_in.redirect_uri,
            request,
            action: format!("{}consent", state.config.persona.authorize_path()),
        },
    );
    html_page(StatusCode::OK, page)
}

/// `POST /v2/o/authorize/consent`: **Allow** (with or without personal information) or
/// **Deny**.
pub(crate) async fn consent_submit(
    Shared(state): Shared<Arc<State>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (params, sign_in, request) = match posted(&state, &headers, &body) {
        Ok(posted) => posted,
        Err(answer) => return answer,
    };
    if sign_in.member.is_none() {
        return expired(&state);
    }
    let Some(mut sign_in) = state.grants.finish_sign_in(&request) else {
        return expired(&state);
    };
    let Some(member) = sign_in.member else {
        return expired(&state);
    };
    if params.get("action").map(String::as_str) != Some("allow") {
        return error_redirect(
            &sign_in.redirect_uri,
            "access_denied",
            "the enrollee denied access",
            sign_in.state.as_deref(),
        );
    }
    if params.get("share").map(String::as_str) == Some("no") {
        // Without personal information, the Patient resource and the profile are withheld.
        sign_in.scope = sign_in
            .scope
            .split_whitespace()
            .filter(|s| !s.contains("/Patient.") && *s != "profile")
            .collect::<Vec<_>>()
            .join(" ");
    }
    code_redirect(&state, &sign_in, member)
}

/// `MM/DD/YYYY` with a real month and day.
fn is_us_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('/').collect();
    let [month, day, year] = parts.as_slice() else {
        return false;
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(month, 2) && digits(day, 2) && digits(year, 4)) {
        return false;
    }
    let (month, day): (u32, u32) = (month.parse().unwrap_or(0), day.parse().unwrap_or(0));
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_from_the_guide_and_resource_scopes_are_supported() {
        for scope in [
            "patient/*.read",
            "user/*.read",
            "launch/patient",
            "openid",
            "patient/ExplanationOfBenefit.read",
            "patient/Coverage.rs",
        ] {
            assert!(is_supported_scope(scope), "{scope}");
        }
        for scope in [
            "patient/*.write",
            "admin",
            "patient/Nope.read",
            "system/*.read",
        ] {
            assert!(!is_supported_scope(scope), "{scope}");
        }
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(parameters("a=1&b=2").is_ok());
        assert!(parameters("a=1&a=2").is_err());
    }

    #[test]
    fn birthdates_are_us_style() {
        assert!(is_us_date("10/19/1950"));
        assert!(!is_us_date("1950-10-19"));
        assert!(!is_us_date("13/19/1950"));
        assert!(!is_us_date("1/9/1950"));
    }
}
