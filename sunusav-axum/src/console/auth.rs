//! Who is looking: the [`Viewer`] extractor (role, where the console is
//! mounted, the form token), the login form and its cookie, and the check
//! every action passes.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, OriginalUri, State};
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, COOKIE, LOCATION, SET_COOKIE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode};
use maud::html;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use sunusav_core::ports::{AuditAction, AuditOutcome, AuditRole};

use super::layout::{bare_page, error_page};
use crate::audit;
use crate::state::AppState;

/// The login cookie's name.
pub(crate) const COOKIE_NAME: &str = "sunusav_console";

/// The one looking at a page: their role, how they authenticated, the form
/// token of their pages, and the prefix the console is mounted under.
#[derive(Clone)]
pub(crate) struct Viewer {
    pub(crate) role: AuditRole,
    pub(crate) via_cookie: bool,
    pub(crate) csrf: String,
    pub(crate) base: String,
}

impl std::fmt::Debug for Viewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Viewer").field("role", &self.role).field("base", &self.base).finish_non_exhaustive()
    }
}

impl Viewer {
    /// Whether the viewer may act (the admin role).
    pub(crate) fn can_act(&self) -> bool {
        self.role == AuditRole::Admin
    }

    /// A console URL: the mount prefix, then `path` (which starts with
    /// `/`; `/` alone is the overview, at the prefix itself).
    pub(crate) fn url(&self, path: &str) -> String {
        home_then(&self.base, path)
    }

    /// Lets an action through for the admin role with a valid form token
    /// (when authenticated by the cookie); otherwise the 403 to answer, and
    /// a refusal of the operator role is written to the audit log.
    pub(crate) async fn authorize(
        &self,
        state: &AppState,
        csrf: Option<&str>,
        action: AuditAction,
        target: &str,
    ) -> Result<(), Response> {
        if !self.can_act() {
            audit::record(state, self.role, action, target, AuditOutcome::Refused, Some("forbidden".into())).await;
            return Err(error_page(
                Some(self),
                StatusCode::FORBIDDEN,
                "forbidden",
                "the operator role is read-only: this action needs the admin role",
            ));
        }
        if self.via_cookie {
            let presented = csrf.unwrap_or("");
            if !bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes())) {
                return Err(error_page(
                    Some(self),
                    StatusCode::FORBIDDEN,
                    "csrf_mismatch",
                    "the form token is missing or wrong: reload the page and try again",
                ));
            }
        }
        Ok(())
    }
}

/// The body of an action's form: its form token.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    pub(crate) csrf: Option<String>,
}

/// The form token of an action's body, if it has one.
pub(crate) fn csrf_field(form: &Result<Form<ActionForm>, FormRejection>) -> Option<&str> {
    form.as_ref().ok().and_then(|Form(f)| f.csrf.as_deref())
}

/// `path` under the mount prefix `base`; `/` is the prefix itself (a nested
/// router's root has no trailing slash).
pub(crate) fn home_then(base: &str, path: &str) -> String {
    if path == "/" && !base.is_empty() { base.to_owned() } else { format!("{base}{path}") }
}

/// The prefix the console is mounted under (empty at the root).
pub(crate) fn base_of(parts: &Parts) -> String {
    let inner = parts.uri.path();
    let original = parts.extensions.get::<OriginalUri>().map_or(inner, |o| o.0.path());
    let base = original.strip_suffix(inner).unwrap_or(if inner == "/" { original } else { "" });
    base.trim_end_matches('/').to_owned()
}

/// The token presented: `Authorization: Bearer`, else the login cookie.
fn presented(headers: &HeaderMap) -> Option<(Vec<u8>, bool)> {
    if let Some(v) = headers.get(AUTHORIZATION) {
        let v = v.as_bytes();
        return v.strip_prefix(b"Bearer ").or_else(|| v.strip_prefix(b"bearer ")).map(|t| (t.to_vec(), false));
    }
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .and_then(|(_, value)| hex::decode(value).ok())
        .map(|t| (t, true))
}

/// The role `token` opens, if any.
fn role_of(state: &AppState, token: &[u8]) -> Option<AuditRole> {
    let admin = state.inner.admin_token.as_ref().is_some_and(|t| t.matches(token));
    let operator = state.inner.operator_token.as_ref().is_some_and(|t| t.matches(token));
    if admin {
        Some(AuditRole::Admin)
    } else if operator {
        Some(AuditRole::Operator)
    } else {
        None
    }
}

/// The form token of a session: a digest of its token, which gives nothing
/// of the token away.
fn csrf_of(token: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"sunusav-console-csrf\0");
    h.update(token);
    hex::encode(h.finalize())
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let base = base_of(parts);
        let Some((token, via_cookie)) = presented(&parts.headers) else {
            return Err(login_response(&base, StatusCode::UNAUTHORIZED, None));
        };
        if let Some(role) = role_of(state, &token) {
            Ok(Self { role, via_cookie, csrf: csrf_of(&token), base })
        } else {
            tracing::warn!("console request with a wrong token");
            Err(login_response(&base, StatusCode::UNAUTHORIZED, Some("that token opens nothing here")))
        }
    }
}

/// The login form, answered with `status` (401 for a page asked without
/// credentials); `data-code` holds the stable code.
fn login_response(base: &str, status: StatusCode, notice: Option<&str>) -> Response {
    let body = html! {
        main.login data-code="unauthorized" {
            h1 { "sunusav console" }
            @if let Some(n) = notice { p.notice.bad { (n) } }
            form method="post" action={ (base) "/login" } {
                label { "Token " input type="password" name="token" autocomplete="current-password" required; }
                button type="submit" { "Log in" }
            }
            p.hint { "The admin token opens every page and action; the operator token opens the pages, read-only." }
        }
    };
    (status, bare_page("Log in", &body)).into_response()
}

/// `GET /login`.
pub(crate) async fn login_page(parts: Parts) -> Response {
    login_response(&base_of(&parts), StatusCode::OK, None)
}

/// The login form's body.
#[derive(Deserialize)]
pub(crate) struct LoginForm {
    token: String,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginForm(<redacted>)")
    }
}

fn cookie(base: &str, value: &str, secure: bool, max_age: Option<u32>) -> HeaderValue {
    let path = if base.is_empty() { "/" } else { base };
    let mut c = format!("{COOKIE_NAME}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str("; Max-Age=");
        c.push_str(&age.to_string());
    }
    // Hex digits and a path that came through the router: always a valid header.
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("sunusav_console=; Max-Age=0"))
}

fn is_https(parts: &Parts) -> bool {
    parts.uri.scheme_str() == Some("https")
        || parts.headers.get("x-forwarded-proto").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// `POST /login`: a token that opens a role sets the cookie and answers 303
/// to the overview; another answers 401 with the form again.
pub(crate) async fn login(
    State(state): State<AppState>,
    parts: Parts,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let base = base_of(&parts);
    let Ok(Form(form)) = form else {
        return login_response(&base, StatusCode::BAD_REQUEST, Some("the form was not understood"));
    };
    if role_of(&state, form.token.as_bytes()).is_none() {
        tracing::warn!("console login with a wrong token");
        return login_response(&base, StatusCode::UNAUTHORIZED, Some("that token opens nothing here"));
    }
    let value = hex::encode(form.token.as_bytes());
    let mut response = see_other(&home_then(&base, "/"));
    response.headers_mut().insert(SET_COOKIE, cookie(&base, &value, is_https(&parts), None));
    response
}

/// The login form's answer past its rate limit: 429 `rate_limited` with
/// `retry-after`, a page that says when to try again; a request without a
/// client address: 500 (never let through unlimited).
#[allow(clippy::needless_pass_by_value)] // tower_governor hands the error over by value
pub(crate) fn login_refused(error: tower_governor::GovernorError) -> Response {
    match error {
        tower_governor::GovernorError::TooManyRequests { wait_time, .. } => {
            let message = format!("too many login attempts from this client; try again in {} s", wait_time.max(1));
            let page = error_page(None, StatusCode::TOO_MANY_REQUESTS, "rate_limited", &message);
            crate::rate_limit::with_retry_after(page, wait_time)
        }
        _ => error_page(
            None,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the client's address is unknown: the server must provide it",
        ),
    }
}

/// `POST /logout`: clears the cookie, 303 to the login form.
pub(crate) async fn logout(parts: Parts) -> Response {
    let base = base_of(&parts);
    let mut response = see_other(&format!("{base}/login"));
    response.headers_mut().insert(SET_COOKIE, cookie(&base, "", is_https(&parts), Some(0)));
    response
}

/// 303 See Other to `location`.
pub(crate) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, v);
    }
    response
}
