//! The pages' frame (navigation, style, the live-update script and the
//! security headers), error pages, and small renderers: times, ages,
//! percent-encoded URL segments and admin-only buttons.

use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_FRAME_OPTIONS};
use http::{HeaderValue, StatusCode};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sha2::{Digest, Sha256};

use super::auth::Viewer;

const CSS: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{background:#1b1f24;color:#fff;padding:.5rem 1rem;display:flex;gap:1rem;align-items:center;flex-wrap:wrap}
header a{color:#cfe3ff;text-decoration:none}header .role{margin-left:auto;opacity:.8}
header form{display:inline}main{padding:1rem}h1{font-size:1.3rem;margin:.2rem 0 1rem}h2{font-size:1.1rem}
table{border-collapse:collapse;background:#fff;margin-bottom:1rem;width:100%}
th,td{border:1px solid #d8dde3;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
pre{background:#fff;border:1px solid #d8dde3;padding:.5rem;white-space:pre-wrap;word-break:break-all}
form.inline{display:inline}button{cursor:pointer}button.danger{color:#a40000}
.notice{padding:.4rem .6rem;background:#e6f4ea;border:1px solid #9bd3ae}.notice.bad{background:#fdecea;border-color:#f5b5ae}
.dead,.failed,.payout_failed,.refused{color:#a40000;font-weight:600}.succeeded,.paid_out,.completed{color:#17692e}
nav.pager a{margin-right:1rem}.filters{margin-bottom:1rem}.filters input[type=text]{width:28rem}
main.login{max-width:28rem;margin:4rem auto}.hint{opacity:.7}
";

/// The live-update script: reads the server-sent events at the body's
/// `data-events` URL and sets each element's text by id (never HTML).
const LIVE_JS: &str = "(function(){var u=document.body.dataset.events;if(!u||!window.EventSource)return;\
var s=new EventSource(u);s.onmessage=function(m){var d=JSON.parse(m.data);\
for(var k in d){var e=document.getElementById(k);if(e)e.textContent=d[k];}};})();";

/// The content security policy: no source but this one, the inline style,
/// and the one inline script by its digest.
fn csp() -> String {
    let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(LIVE_JS.as_bytes()));
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; connect-src 'self'; \
         img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

fn with_headers(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, Html(markup.into_string())).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp()) {
        headers.insert(CONTENT_SECURITY_POLICY, v);
    }
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// A page without navigation (the login form).
pub(crate) fn bare_page(title: &str, body: &Markup) -> Response {
    with_headers(StatusCode::OK, document(title, None, body))
}

fn document(title: &str, events: Option<&str>, body: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · sunusav console" }
                style { (PreEscaped(CSS)) }
            }
            body data-events=[events] {
                (body)
                @if events.is_some() { script { (PreEscaped(LIVE_JS)) } }
            }
        }
    }
}

fn frame(v: &Viewer, title: &str, content: &Markup) -> Markup {
    html! {
        header {
            strong { "sunusav" }
            a href=(v.url("/")) { "Overview" }
            a href={ (v.url("/jobs")) "?queue=payouts&state=dead" } { "Jobs" }
            a href=(v.url("/deliveries")) { "Deliveries" }
            a href=(v.url("/groups")) { "Groups" }
            a href=(v.url("/unapplied")) { "Unapplied" }
            a href=(v.url("/audit")) { "Audit log" }
            span.role { "role: " strong data-role=(v.role.as_str()) { (v.role.as_str()) } }
            form.inline method="post" action=(v.url("/logout")) {
                input type="hidden" name="csrf" value=(v.csrf);
                button type="submit" { "Log out" }
            }
        }
        main {
            h1 { (title) }
            (content)
        }
    }
}

/// A console page (200), with live updates from `events` when given.
pub(crate) fn page(v: &Viewer, title: &str, events: Option<&str>, content: &Markup) -> Response {
    with_headers(StatusCode::OK, document(title, events, &frame(v, title, content)))
}

/// An error page with its stable code in `data-code` (and in the text).
pub(crate) fn error_page(v: Option<&Viewer>, status: StatusCode, code: &str, message: &str) -> Response {
    let content = html! {
        div.notice.bad data-code=(code) {
            strong { (status.as_u16()) " " (code) } ": " (message)
        }
    };
    let title = status.canonical_reason().unwrap_or("Error");
    let markup = match v {
        Some(v) => document(title, None, &frame(v, title, &content)),
        None => document(title, None, &content),
    };
    with_headers(status, markup)
}

/// The error page of an [`ApiError`](crate::ApiError).
pub(crate) fn api_error_page(v: &Viewer, e: &crate::ApiError) -> Response {
    error_page(Some(v), e.status(), e.code(), e.message())
}

/// A POST button, for the admin role only (nothing for the operator role).
pub(crate) fn action(v: &Viewer, path: &str, label: &str, danger: bool) -> Markup {
    html! {
        @if v.can_act() {
            form.inline method="post" action=(v.url(path)) {
                input type="hidden" name="csrf" value=(v.csrf);
                button type="submit" class=[danger.then_some("danger")] data-action=(label) { (label) }
            }
        }
    }
}

/// `s` as one URL path segment or query value: every byte but the
/// unreserved ones (and `:`) percent-encoded.
pub(crate) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push_str(&hex::encode_upper([b]));
        }
    }
    out
}

/// Unix ms as `YYYY-MM-DD HH:MM:SSZ` (UTC).
pub(crate) fn time(ms: u64) -> String {
    let secs = ms / 1_000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z", rem / 3_600, rem % 3_600 / 60, rem % 60)
}

/// Days since 1970-01-01 as a date (Howard Hinnant's algorithm, for days ≥ 0).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// A time as unix ms: all digits (unix ms), or `YYYY-MM-DDTHH:MM[:SS]`
/// (a `datetime-local` field; a space for the `T` too), read as UTC.
pub(crate) fn parse_time(text: &str) -> Option<u64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let (date, clock) = text.split_once(['T', ' '])?;
    let mut date_parts = date.splitn(3, '-').map(str::parse::<u64>);
    let mut next_date = || date_parts.next()?.ok();
    let (year, month, day) = (next_date()?, next_date()?, next_date()?);
    let mut clock_parts = clock.trim_end_matches('Z').splitn(3, ':').map(str::parse::<u64>);
    let (hour, minute) = (clock_parts.next()?.ok()?, clock_parts.next()?.ok()?);
    let second = clock_parts.next().transpose().ok()?.unwrap_or(0);
    let valid = (1970..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour <= 23
        && minute <= 59
        && second <= 59;
    valid.then(|| ((days_from_civil(year, month, day) * 86_400) + hour * 3_600 + minute * 60 + second) * 1_000)
}

/// A date as days since 1970-01-01 (Howard Hinnant's algorithm, years ≥ 1970).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A duration in ms as `1h 02m`, `3m 04s` or `5s`.
pub(crate) fn age(ms: u64) -> String {
    let s = ms / 1_000;
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3_600, s % 3_600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_ages_and_segments_render_as_expected() {
        assert_eq!(time(0), "1970-01-01 00:00:00Z");
        assert_eq!(time(1_796_656_022_000), "2026-12-07 15:07:02Z");
        assert_eq!(age(5_000), "5s");
        assert_eq!(age(184_000), "3m 04s");
        assert_eq!(age(3_720_000), "1h 02m");
        assert_eq!(enc("webhook:a/b?<c>"), "webhook:a%2Fb%3F%3Cc%3E");
        assert_eq!(parse_time("2026-12-07T15:07:02"), Some(1_796_656_022_000));
        assert_eq!(parse_time("2026-12-07 15:07"), Some(1_796_656_020_000));
        assert_eq!(parse_time("1970-01-01T00:00"), Some(0));
        assert_eq!(parse_time("1796656022000"), Some(1_796_656_022_000));
        for bad in ["", "2026-13-01T00:00", "yesterday", "2026-12-07"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
        for ms in [0, 951_782_400_000, 1_796_656_022_000] {
            assert_eq!(parse_time(&time(ms).replace('Z', "")), Some(ms));
        }
    }
}
