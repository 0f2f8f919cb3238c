//! Authorization of the group API, a test per rule: 401 without
//! credentials, 403 with the rule's code for the wrong caller, and the
//! right caller let through. Credentials are explicit here (bearer tokens:
//! the operator's, and member tokens issued by the admin route).

mod common;

use axum::body::Body;
use common::{
    ADMIN_TOKEN, ANONYMOUS, Options, Reply, TestApp, app_with, member_bearer, member_tokens, operator_bearer, send,
};
use http::{Request, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// A request with these credentials (`None`: none at all).
fn request(method: &str, path: &str, body: Option<&Value>, bearer: Option<&str>) -> Request<Body> {
    let mut r = Request::builder().method(method).uri(path);
    match bearer {
        Some(b) => r = r.header("authorization", b),
        None => r = r.header(ANONYMOUS, "1"),
    }
    match body {
        Some(b) => r.header("content-type", "application/json").body(Body::from(b.to_string())).unwrap(),
        None => r.body(Body::empty()).unwrap(),
    }
}

async fn call(app: &TestApp, method: &str, path: &str, body: Option<&Value>, bearer: Option<&str>) -> Reply {
    send(&app.router, request(method, path, body, bearer)).await
}

fn expect(reply: &Reply, status: StatusCode, code: &str, what: &str) {
    assert_eq!((reply.status, reply.code().as_str()), (status, code), "{what}: {}", reply.text());
}

/// A group of three members organized by the first, created by its organizer.
async fn group(app: &TestApp) -> (String, Vec<String>) {
    let m: Vec<String> = (0..3).map(|_| Uuid::new_v4().to_string()).collect();
    let body = json!({ "members": m, "contribution_msat": 10_000 });
    let reply = call(app, "POST", "/groups", Some(&body), Some(&member_bearer(&m[0]))).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let g = reply.json();
    assert_eq!(g["organizer"], m[0].as_str(), "a member who creates a group organizes it");
    (g["id"].as_str().unwrap().to_owned(), m)
}

#[tokio::test]
async fn every_group_route_answers_401_without_credentials_or_with_a_wrong_token() {
    let app = app_with(Options::default());
    let (id, m) = group(&app).await;
    let member = json!({ "member": m[0] });
    let node = json!({ "keysend": sunusav_core::memory::SimulatedNode::payee_node().to_hex() });
    let bolt11 = json!({ "bolt11": "lnbcrt1" });
    let bid = json!({ "member": m[0], "payout_msat": 1 });
    let create = json!({ "members": m, "contribution_msat": 1 });
    let routes: Vec<(&str, String, Option<&Value>)> = vec![
        ("POST", "/groups".into(), Some(&create)),
        ("GET", format!("/groups/{id}"), None),
        ("POST", format!("/groups/{id}/start"), None),
        ("POST", format!("/groups/{id}/cancel"), None),
        ("POST", format!("/groups/{id}/invoices"), Some(&member)),
        ("GET", format!("/groups/{id}/ledger"), None),
        ("GET", format!("/groups/{id}/order"), None),
        ("POST", format!("/groups/{id}/bids"), Some(&bid)),
        ("POST", format!("/groups/{id}/payout-invoice"), Some(&bolt11)),
        ("GET", format!("/members/{}/payout-destination", m[0]), None),
        ("PUT", format!("/members/{}/payout-destination", m[0]), Some(&node)),
        ("DELETE", format!("/members/{}/payout-destination", m[0]), None),
    ];
    let forged = member_bearer(&m[0]).replace("sv1.", "sv1.0");
    let wrong_secret = format!(
        "Bearer {}",
        sunusav_axum::MemberTokens::new(b"another-secret-of-at-least-32-bytes!")
            .unwrap()
            .issue(m[0].parse().unwrap())
            .token
    );
    for (method, path, body) in &routes {
        let what = format!("{method} {path}");
        expect(&call(&app, method, path, *body, None).await, StatusCode::UNAUTHORIZED, "unauthorized", &what);
        for bearer in [format!("Bearer {ADMIN_TOKEN}x"), forged.clone(), wrong_secret.clone(), "Basic x".into()] {
            let reply = call(&app, method, path, *body, Some(&bearer)).await;
            expect(&reply, StatusCode::UNAUTHORIZED, "unauthorized", &format!("{what} with {bearer:.12}…"));
        }
    }
    // Nothing was changed by any refused call.
    let g = call(&app, "GET", &format!("/groups/{id}"), None, Some(&operator_bearer())).await.json();
    assert_eq!(g["status"], "forming");
}

#[tokio::test]
async fn an_expired_member_token_answers_401_token_expired() {
    let app = app_with(Options::default());
    let (id, m) = group(&app).await;
    let past = member_tokens().with_clock(sunusav_axum::fixed_clock(1_000)).issue(m[0].parse().unwrap());
    let reply = call(&app, "GET", &format!("/groups/{id}"), None, Some(&format!("Bearer {}", past.token))).await;
    expect(&reply, StatusCode::UNAUTHORIZED, "token_expired", "a token that expired");
}

#[tokio::test]
async fn the_group_api_answers_401_when_the_state_has_no_identity() {
    let app = common::app_without_identity();
    let reply = call(&app, "GET", &format!("/groups/{}", Uuid::new_v4()), None, Some(&operator_bearer())).await;
    expect(&reply, StatusCode::UNAUTHORIZED, "unauthorized", "no Authenticate configured");
}

#[tokio::test]
async fn start_and_cancel_are_for_the_organizer_and_operators() {
    let app = app_with(Options::default());
    let (id, m) = group(&app).await;
    for (who, bearer) in
        [("another member", member_bearer(&m[1])), ("an outsider", member_bearer(&Uuid::new_v4().to_string()))]
    {
        for verb in ["start", "cancel"] {
            let reply = call(&app, "POST", &format!("/groups/{id}/{verb}"), None, Some(&bearer)).await;
            expect(&reply, StatusCode::FORBIDDEN, "organizer_only", &format!("{verb} by {who}"));
        }
    }
    let started = call(&app, "POST", &format!("/groups/{id}/start"), None, Some(&member_bearer(&m[0]))).await;
    assert_eq!(started.status, StatusCode::OK, "the organizer starts it: {}", started.text());
    let cancelled = call(&app, "POST", &format!("/groups/{id}/cancel"), None, Some(&operator_bearer())).await;
    assert_eq!(cancelled.status, StatusCode::OK, "an operator cancels it: {}", cancelled.text());
    assert_eq!(cancelled.json()["status"], "cancelled");
}

#[tokio::test]
async fn a_group_without_an_organizer_is_managed_by_operators_only() {
    let app = app_with(Options::default());
    let m: Vec<String> = (0..2).map(|_| Uuid::new_v4().to_string()).collect();
    let body = json!({ "members": m, "contribution_msat": 10_000 });
    let g = call(&app, "POST", "/groups", Some(&body), Some(&operator_bearer())).await.json();
    assert_eq!(g["organizer"], Value::Null);
    let id = g["id"].as_str().unwrap();
    let reply = call(&app, "POST", &format!("/groups/{id}/start"), None, Some(&member_bearer(&m[0]))).await;
    expect(&reply, StatusCode::FORBIDDEN, "organizer_only", "a member of a group nobody organizes");
    let reply = call(&app, "POST", &format!("/groups/{id}/start"), None, Some(&operator_bearer())).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[tokio::test]
async fn a_member_creates_a_group_only_as_its_organizer_and_member() {
    let app = app_with(Options::default());
    let m: Vec<String> = (0..2).map(|_| Uuid::new_v4().to_string()).collect();
    let naming_another = json!({ "members": m, "contribution_msat": 1_000, "organizer": m[1] });
    let reply = call(&app, "POST", "/groups", Some(&naming_another), Some(&member_bearer(&m[0]))).await;
    expect(&reply, StatusCode::FORBIDDEN, "create_as_organizer", "a member naming another organizer");
    let outsider = Uuid::new_v4().to_string();
    let plain = json!({ "members": m, "contribution_msat": 1_000 });
    let reply = call(&app, "POST", "/groups", Some(&plain), Some(&member_bearer(&outsider))).await;
    expect(&reply, StatusCode::FORBIDDEN, "create_as_organizer", "a member creating a group they are not in");
    // An operator names an organizer among the members, or none; not an outsider.
    let named = json!({ "members": m, "contribution_msat": 1_000, "organizer": m[1] });
    let reply = call(&app, "POST", "/groups", Some(&named), Some(&operator_bearer())).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(reply.json()["organizer"], m[1].as_str());
    let stranger = json!({ "members": m, "contribution_msat": 1_000, "organizer": outsider });
    let reply = call(&app, "POST", "/groups", Some(&stranger), Some(&operator_bearer())).await;
    expect(&reply, StatusCode::UNPROCESSABLE_ENTITY, "organizer_not_member", "an organizer who is no member");
}

#[tokio::test]
async fn a_group_and_its_ledger_are_read_by_its_members_and_operators_only() {
    let app = app_with(Options::default());
    let (id, m) = group(&app).await;
    for path in [format!("/groups/{id}"), format!("/groups/{id}/ledger")] {
        for bearer in [member_bearer(&m[2]), operator_bearer()] {
            let reply = call(&app, "GET", &path, None, Some(&bearer)).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text());
        }
        let reply = call(&app, "GET", &path, None, Some(&member_bearer(&Uuid::new_v4().to_string()))).await;
        expect(&reply, StatusCode::FORBIDDEN, "members_only", &format!("{path} by an outsider"));
    }
}

#[tokio::test]
async fn contribution_invoices_are_issued_to_a_member_for_themselves_only() {
    let app = app_with(Options::default());
    let (id, m) = group(&app).await;
    call(&app, "POST", &format!("/groups/{id}/start"), None, Some(&operator_bearer())).await;
    let path = format!("/groups/{id}/invoices");
    let for_m1 = json!({ "member": m[1] });
    let reply = call(&app, "POST", &path, Some(&for_m1), Some(&member_bearer(&m[2]))).await;
    expect(&reply, StatusCode::FORBIDDEN, "self_only", "an invoice for another member");
    let reply = call(&app, "POST", &path, Some(&for_m1), Some(&operator_bearer())).await;
    expect(&reply, StatusCode::FORBIDDEN, "self_only", "an operator asking for a member's invoice");
    let reply = call(&app, "POST", &path, Some(&for_m1), Some(&member_bearer(&m[1]))).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(reply.json()["member"], m[1].as_str());
}

#[tokio::test]
async fn a_payout_destination_is_set_by_its_member_only_and_read_by_them_and_operators() {
    let app = app_with(Options::default());
    let (_, m) = group(&app).await;
    let path = format!("/members/{}/payout-destination", m[1]);
    let node = json!({ "keysend": sunusav_core::memory::SimulatedNode::payee_node().to_hex() });
    for (who, bearer) in [("another member", member_bearer(&m[0])), ("an operator", operator_bearer())] {
        let reply = call(&app, "PUT", &path, Some(&node), Some(&bearer)).await;
        expect(&reply, StatusCode::FORBIDDEN, "self_only", &format!("set by {who}"));
        let reply = call(&app, "DELETE", &path, None, Some(&bearer)).await;
        expect(&reply, StatusCode::FORBIDDEN, "self_only", &format!("cleared by {who}"));
    }
    let reply = call(&app, "GET", &path, None, Some(&member_bearer(&m[0]))).await;
    expect(&reply, StatusCode::FORBIDDEN, "self_only", "read by another member");
    let set = call(&app, "PUT", &path, Some(&node), Some(&member_bearer(&m[1]))).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());
    for bearer in [member_bearer(&m[1]), operator_bearer()] {
        let shown = call(&app, "GET", &path, None, Some(&bearer)).await;
        assert_eq!(shown.json()["keysend"], node["keysend"], "{}", shown.text());
    }
}

#[tokio::test]
async fn the_pot_invoice_is_submitted_by_its_beneficiary_only() {
    let app = app_with(Options::default());
    let (id, m) = group(&app).await;
    call(&app, "POST", &format!("/groups/{id}/start"), None, Some(&operator_bearer())).await;
    let path = format!("/groups/{id}/payout-invoice");
    let invoice =
        sunusav_core::memory::SimulatedNode::new().mint_payee_invoice(None, std::time::Duration::from_hours(1));
    let body = json!({ "bolt11": invoice });
    for (who, bearer) in [("another member", member_bearer(&m[1])), ("an operator", operator_bearer())] {
        let reply = call(&app, "POST", &path, Some(&body), Some(&bearer)).await;
        expect(&reply, StatusCode::FORBIDDEN, "beneficiary_only", &format!("submitted by {who}"));
    }
    // Cycle 1 pays the first member.
    let reply = call(&app, "POST", &path, Some(&body), Some(&member_bearer(&m[0]))).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
}

#[tokio::test]
async fn member_tokens_are_issued_by_the_admin_route_and_work_on_the_group_api() {
    let app = app_with(Options { admin: true, ..Options::default() });
    let (id, m) = group(&app).await;
    let path = format!("/admin/members/{}/token", m[2]);
    let refused = call(&app, "POST", &path, None, Some(&member_bearer(&m[2]))).await;
    expect(&refused, StatusCode::UNAUTHORIZED, "unauthorized", "a member token on an admin route");
    let issued = call(&app, "POST", &path, None, Some(&operator_bearer())).await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.text());
    let token = issued.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(issued.json()["member"], m[2].as_str());
    let reply = call(&app, "GET", &format!("/groups/{id}"), None, Some(&format!("Bearer {token}"))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}
