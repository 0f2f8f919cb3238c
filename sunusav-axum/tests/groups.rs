//! The group API, and the whole flow: create → start → invoice → signed
//! webhook → the group shows the contribution.

mod common;

use common::{app, as_member, empty_request, event_body, json_request, send, settle_webhooks, signed_webhook};
use http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

fn members(n: usize) -> Vec<String> {
    (0..n).map(|_| Uuid::new_v4().to_string()).collect()
}

async fn create(router: &axum::Router, members: &[String]) -> Value {
    let reply =
        send(router, json_request("POST", "/groups", &json!({ "members": members, "contribution_msat": 10_000 })))
            .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    reply.json()
}

#[tokio::test]
async fn a_group_is_created_started_invoiced_and_shows_a_settled_contribution() {
    let app = app();
    let m = members(2);
    let group = create(&app.router, &m).await;
    assert_eq!(group["status"], "forming");
    assert_eq!(group["contribution_msat"], 10_000);
    assert_eq!(group["apply_balance"], true, "balances pay the next contribution by default");
    let id = group["id"].as_str().unwrap().to_owned();

    let started = send(&app.router, empty_request("POST", &format!("/groups/{id}/start"))).await;
    assert_eq!(started.status, StatusCode::OK);
    assert_eq!(started.json()["status"], "active");
    assert_eq!(started.json()["cycle"], 1);

    let mut hashes = Vec::new();
    for member in &m {
        let invoice =
            send(&app.router, json_request("POST", &format!("/groups/{id}/invoices"), &json!({ "member": member })))
                .await;
        assert_eq!(invoice.status, StatusCode::CREATED);
        let invoice = invoice.json();
        assert_eq!((invoice["amount_msat"].clone(), invoice["cycle"].clone()), (json!(10_000), json!(1)));
        assert_eq!(invoice["member"], json!(member));
        assert!(invoice["bolt11"].as_str().is_some_and(|b| !b.is_empty()));
        hashes.push(invoice["payment_hash"].as_str().unwrap().to_owned());
    }

    let paid = send(&app.router, signed_webhook(&event_body(&hashes[0], 10_000))).await;
    assert_eq!(paid.status, StatusCode::ACCEPTED);
    assert_eq!(settle_webhooks(&app.tontine).await, 1);
    let view = send(&app.router, empty_request("GET", &format!("/groups/{id}"))).await.json();
    assert_eq!(view["paid_members"], json!([m[0]]));
    assert_eq!(view["cycle_status"], "collecting");
    assert_eq!(view["payouts"], json!([]));

    send(&app.router, signed_webhook(&event_body(&hashes[1], 10_000))).await;
    settle_webhooks(&app.tontine).await;
    let view = send(&app.router, empty_request("GET", &format!("/groups/{id}"))).await.json();
    assert_eq!(view["cycle_status"], "completing", "{view}");
    let payouts = view["payouts"].as_array().unwrap();
    assert_eq!(payouts.len(), 1, "one payout for the completed cycle");
    assert_eq!(payouts[0]["beneficiary"], json!(m[0]));
    assert_eq!(payouts[0]["amount_msat"], 20_000);
    assert_eq!(payouts[0]["status"], "pending");
}

#[tokio::test]
async fn a_group_can_keep_balances_for_the_operator() {
    let app = app();
    let body = json!({ "members": members(2), "contribution_msat": 10_000, "apply_balance": false });
    let reply = send(&app.router, json_request("POST", "/groups", &body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    let view = send(&app.router, empty_request("GET", &format!("/groups/{id}"))).await.json();
    assert_eq!(view["apply_balance"], false);
    let bad = json!({ "members": members(2), "contribution_msat": 10_000, "apply_balance": "no" });
    let reply = send(&app.router, json_request("POST", "/groups", &bad)).await;
    assert!(reply.status.is_client_error(), "a non-boolean policy is refused: {}", reply.status);
}

#[tokio::test]
async fn invalid_group_input_answers_4xx_with_a_code() {
    let m = members(2);
    let cases: &[(&str, Value, StatusCode, &str)] = &[
        (
            "one member",
            json!({ "members": [m[0]], "contribution_msat": 1 }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_few_members",
        ),
        (
            "same member twice",
            json!({ "members": [m[0], m[0]], "contribution_msat": 1 }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "duplicate_member",
        ),
        (
            "zero contribution",
            json!({ "members": m, "contribution_msat": 0 }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "zero_contribution",
        ),
        (
            "fee over 100 %",
            json!({ "members": m, "contribution_msat": 1, "fee_bps": 10_001 }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "fee_too_high",
        ),
        (
            "pot overflow",
            json!({ "members": m, "contribution_msat": u64::MAX }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "pot_overflow",
        ),
        (
            "not a uuid",
            json!({ "members": ["x", "y"], "contribution_msat": 1 }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "negative amount",
            json!({ "members": m, "contribution_msat": -1 }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        ("missing field", json!({ "members": m }), StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
        (
            "unknown field",
            json!({ "members": m, "contribution_msat": 1, "x": 1 }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
    ];
    let app = app();
    for (case, body, status, code) in cases {
        let reply = send(&app.router, json_request("POST", "/groups", body)).await;
        assert_eq!((reply.status, reply.code()), (*status, (*code).to_owned()), "{case}");
    }
}

#[tokio::test]
async fn malformed_requests_answer_json_errors_never_500() {
    let app = app();
    let id = Uuid::new_v4();
    let syntax = http::Request::post("/groups").header("content-type", "application/json").body("{".into()).unwrap();
    let no_type = http::Request::post("/groups").body(r#"{"members":[]}"#.into()).unwrap();
    let cases: Vec<(&str, http::Request<axum::body::Body>, StatusCode, &str)> = vec![
        ("broken JSON", syntax, StatusCode::BAD_REQUEST, "invalid_json"),
        ("no content type", no_type, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        ("bad group id", empty_request("GET", "/groups/not-a-uuid"), StatusCode::BAD_REQUEST, "invalid_path"),
        ("unknown group", empty_request("GET", &format!("/groups/{id}")), StatusCode::NOT_FOUND, "not_found"),
        (
            "start unknown group",
            empty_request("POST", &format!("/groups/{id}/start")),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        ("unknown route", empty_request("GET", "/nope"), StatusCode::NOT_FOUND, "not_found"),
        ("wrong method", empty_request("DELETE", "/groups"), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
    ];
    for (case, request, status, code) in cases {
        let reply = send(&app.router, request).await;
        assert_eq!((reply.status, reply.code().as_str()), (status, code), "{case}");
        assert!(reply.content_type().starts_with("application/json"), "{case}");
    }
}

#[tokio::test]
async fn domain_conflicts_answer_409_with_the_rule_code() {
    let app = app();
    let m = members(2);
    let id = create(&app.router, &m).await["id"].as_str().unwrap().to_owned();
    let invoice = |member: &str| json_request("POST", &format!("/groups/{id}/invoices"), &json!({ "member": member }));

    let reply = send(&app.router, invoice(&m[0])).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::CONFLICT, "group_not_active"));

    send(&app.router, empty_request("POST", &format!("/groups/{id}/start"))).await;
    let reply = send(&app.router, empty_request("POST", &format!("/groups/{id}/start"))).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::CONFLICT, "invalid_transition"));

    let stranger = Uuid::new_v4().to_string();
    let reply = send(&app.router, invoice(&stranger)).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::CONFLICT, "not_a_member"));

    let cancelled = send(&app.router, empty_request("POST", &format!("/groups/{id}/cancel"))).await;
    assert_eq!(cancelled.json()["status"], "cancelled");
    let reply = send(&app.router, empty_request("POST", &format!("/groups/{id}/cancel"))).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::CONFLICT, "invalid_transition"));
}

#[tokio::test]
async fn an_unreachable_node_answers_503_on_invoice() {
    let app = app();
    let m = members(2);
    let id = create(&app.router, &m).await["id"].as_str().unwrap().to_owned();
    send(&app.router, empty_request("POST", &format!("/groups/{id}/start"))).await;
    app.node.set_unreachable(true);
    let reply =
        send(&app.router, json_request("POST", &format!("/groups/{id}/invoices"), &json!({ "member": m[0] }))).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::SERVICE_UNAVAILABLE, "unavailable"));
}

#[tokio::test]
async fn payout_destinations_are_set_read_and_cleared_for_members_only() {
    let app = app();
    let m = members(2);
    create(&app.router, &m).await;
    let node = sunusav_core::memory::SimulatedNode::payee_node().to_hex();
    let path = format!("/members/{}/payout-destination", m[0]);
    let set = send(&app.router, json_request("PUT", &path, &json!({ "keysend": node }))).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());
    assert_eq!(set.json()["keysend"], node);
    assert_eq!(send(&app.router, empty_request("GET", &path)).await.json()["keysend"], node);
    // Not a point of the curve; not a member of any group; unknown fields.
    let bad =
        send(&app.router, json_request("PUT", &path, &json!({ "keysend": format!("02{}", "00".repeat(32)) }))).await;
    assert_eq!((bad.status, bad.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_node_key".to_owned()));
    let stranger = format!("/members/{}/payout-destination", Uuid::new_v4());
    let unknown = send(&app.router, json_request("PUT", &stranger, &json!({ "keysend": node }))).await;
    assert_eq!((unknown.status, unknown.code()), (StatusCode::NOT_FOUND, "not_found".to_owned()));
    let extra = send(&app.router, json_request("PUT", &path, &json!({ "keysend": node, "x": 1 }))).await;
    assert_eq!(extra.status, StatusCode::UNPROCESSABLE_ENTITY);
    let cleared = send(&app.router, empty_request("DELETE", &path)).await;
    assert_eq!(cleared.status, StatusCode::NO_CONTENT);
    assert_eq!(send(&app.router, empty_request("GET", &path)).await.json()["keysend"], Value::Null);
}

#[tokio::test]
async fn a_payout_invoice_is_refused_with_a_code_for_each_reason() {
    let app = app();
    let m = members(2);
    let group = create(&app.router, &m).await;
    let id = group["id"].as_str().unwrap().to_owned();
    let path = format!("/groups/{id}/payout-invoice");
    // Not active yet: no pot to come, so nobody is its beneficiary.
    let node = sunusav_core::memory::SimulatedNode::new();
    let invoice = node.mint_payee_invoice(None, std::time::Duration::from_hours(1));
    let early = send(&app.router, as_member_0(&m, json_request("POST", &path, &json!({ "bolt11": invoice })))).await;
    assert_eq!((early.status, early.code()), (StatusCode::FORBIDDEN, "beneficiary_only".to_owned()));
    send(&app.router, empty_request("POST", &format!("/groups/{id}/start"))).await;
    let garbage =
        send(&app.router, as_member_0(&m, json_request("POST", &path, &json!({ "bolt11": "lnbcrt1nope" })))).await;
    assert_eq!((garbage.status, garbage.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_invoice".to_owned()));
    let wrong_amount = node.mint_payee_invoice(Some(sunusav_core::Msat::new(1)), std::time::Duration::from_hours(1));
    let refused =
        send(&app.router, as_member_0(&m, json_request("POST", &path, &json!({ "bolt11": wrong_amount })))).await;
    assert_eq!((refused.status, refused.code()), (StatusCode::UNPROCESSABLE_ENTITY, "wrong_amount".to_owned()));
    let accepted = send(&app.router, as_member_0(&m, json_request("POST", &path, &json!({ "bolt11": invoice })))).await;
    assert_eq!(accepted.status, StatusCode::CREATED, "{}", accepted.text());
    assert_eq!(accepted.json()["cycle"], 1);
    let again = send(&app.router, as_member_0(&m, json_request("POST", &path, &json!({ "bolt11": invoice })))).await;
    assert_eq!((again.status, again.code()), (StatusCode::CONFLICT, "not_payable".to_owned()));
}

fn as_member_0(m: &[String], request: http::Request<axum::body::Body>) -> http::Request<axum::body::Body> {
    as_member(request, &m[0])
}

#[tokio::test]
async fn a_scheduled_group_shows_each_cycles_due_time_and_grace_end() {
    let app = app();
    let m = members(2);
    // A month ahead (a cycle that opens after its calendar due time is due a
    // grace period after it opened), monthly, a day of grace.
    let first_due = u64::try_from(sunusav_axum::clock::now_unix_secs()).unwrap() * 1000 + 30 * 86_400_000;
    let schedule = json!({ "first_due_ms": first_due, "period": { "months": 1 }, "grace_ms": 86_400_000 });
    let body = json!({ "members": m, "contribution_msat": 10_000, "schedule": schedule });
    let reply = send(&app.router, json_request("POST", "/groups", &body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let g = reply.json();
    assert_eq!(g["schedule"], schedule);
    assert!(g.get("cycle_due_ms").is_none(), "no cycle before it starts: {g}");
    let id = g["id"].as_str().unwrap();
    let started = send(&app.router, empty_request("POST", &format!("/groups/{id}/start"))).await.json();
    assert_eq!(started["cycle_due_ms"], first_due);
    assert_eq!(started["cycle_grace_end_ms"], first_due + 86_400_000);
    // Refused schedules: a grace as long as the period, a zero period.
    for bad in [
        json!({ "first_due_ms": 0, "period": { "days": 1 }, "grace_ms": 86_400_000 }),
        json!({ "first_due_ms": 0, "period": { "weeks": 0 } }),
    ] {
        let body = json!({ "members": members(2), "contribution_msat": 10_000, "schedule": bad });
        let reply = send(&app.router, json_request("POST", "/groups", &body)).await;
        assert_eq!((reply.status, reply.code().as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"), "{bad}");
    }
}

#[tokio::test]
async fn a_groups_rules_are_checked_with_a_code_and_shown() {
    let app = app();
    let m = members(3);
    let day = 86_400_000_u64;
    let schedule = json!({ "first_due_ms": 1_900_000_000_000_u64, "period": { "weeks": 1 }, "grace_ms": day });
    let fine = json!({ "fine": { "amount": { "bps": 500 }, "to": "pot" } });
    let refused = [
        (json!({ "late": fine }), "needs_schedule"),
        (json!({ "reminders_ms": [day] }), "needs_schedule"),
        (
            json!({ "schedule": schedule, "late": { "fine": { "amount": { "bps": 0 }, "to": "pot" } } }),
            "fine_out_of_range",
        ),
        // Reminders are checked as the body is read: the message names the field.
        (json!({ "schedule": schedule, "reminders_ms": [day, day] }), "invalid_input"),
        (json!({ "schedule": schedule, "reminders_ms": [40 * day] }), "invalid_input"),
    ];
    for (extra, code) in refused {
        let mut body = json!({ "members": m, "contribution_msat": 10_000 });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let reply = send(&app.router, json_request("POST", "/groups", &body)).await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, code),
            "{body}: {}",
            reply.text()
        );
        if code == "invalid_input" {
            assert!(reply.text().contains("reminders_ms: at most 4 distinct reminders"), "{}", reply.text());
        }
    }
    let body = json!({ "members": m, "contribution_msat": 10_000, "schedule": schedule, "late": fine,
                       "reminders_ms": [3_600_000, day], "payout_order": "draw" });
    let reply = send(&app.router, json_request("POST", "/groups", &body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let g = reply.json();
    assert_eq!((&g["late"], &g["reminders_ms"], &g["payout_order"]), (&fine, &json!([day, 3_600_000]), &json!("draw")));
    assert_eq!(g["late_members"], json!([]));
}

#[tokio::test]
async fn a_drawn_order_publishes_its_commitment_and_each_cycles_reveal_which_recompute_it() {
    let app = app();
    let m = members(4);
    let body = json!({ "members": m, "contribution_msat": 10_000, "payout_order": "draw" });
    let reply = send(&app.router, json_request("POST", "/groups", &body)).await;
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    let order = send(&app.router, empty_request("GET", &format!("/groups/{id}/order"))).await.json();
    assert_eq!((&order["order"], &order["beneficiaries"]), (&json!("draw"), &json!([])), "nothing drawn while forming");
    assert!(order.get("proof").is_none(), "{order}");

    let started = send(&app.router, empty_request("POST", &format!("/groups/{id}/start"))).await.json();
    let order = send(&app.router, empty_request("GET", &format!("/groups/{id}/order"))).await.json();
    let proof: sunusav_core::domain::draw::DrawProof = serde_json::from_value(order["proof"].clone()).unwrap();
    assert_eq!(proof.reveals.len(), 1, "cycle 1's draw only: later ones stay secret");
    let roster: Vec<sunusav_core::MemberId> = m.iter().map(|s| s.parse().unwrap()).collect();
    let recomputed = sunusav_core::domain::draw::verify(&roster, &proof).expect("the proof verifies");
    assert_eq!(recomputed[0].to_string(), started["beneficiary"].as_str().unwrap(), "cycle 1's beneficiary");
    assert_eq!(order["beneficiaries"], json!([started["beneficiary"]]));
    let text = order.to_string();
    assert_eq!(text.matches("reveal\"").count(), 1, "{text}");

    // A fixed order answers the whole listed order, with no proof.
    let fixed = create(&app.router, &m).await;
    let id = fixed["id"].as_str().unwrap();
    let order = send(&app.router, empty_request("GET", &format!("/groups/{id}/order"))).await.json();
    assert_eq!((&order["order"], &order["beneficiaries"]), (&json!("fixed"), &json!(m)));
    assert!(order.get("proof").is_none());
}

#[tokio::test]
async fn members_bid_on_an_auctioned_cycle_sealed_within_the_rules() {
    let app = app();
    let m = members(3);
    let now = u64::try_from(sunusav_axum::clock::now_unix_secs()).unwrap() * 1000;
    let day = 86_400_000_u64;
    let schedule = json!({ "first_due_ms": now + 7 * day, "period": { "weeks": 1 }, "grace_ms": day });
    let auction = json!({ "auction": { "commission_bps": 1000, "max_discount_bps": 3000 } });
    let no_schedule = json!({ "members": m, "contribution_msat": 10_000, "payout_order": auction });
    let reply = send(&app.router, json_request("POST", "/groups", &no_schedule)).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "needs_schedule"));
    let body = json!({ "members": m, "contribution_msat": 10_000, "payout_order": auction, "schedule": schedule });
    let id = send(&app.router, json_request("POST", "/groups", &body)).await.json()["id"].as_str().unwrap().to_owned();
    let bids = format!("/groups/{id}/bids");
    let early = send(
        &app.router,
        as_member(json_request("POST", &bids, &json!({ "member": m[0], "payout_msat": 25_000 })), &m[0]),
    )
    .await;
    assert_eq!((early.status, early.code().as_str()), (StatusCode::CONFLICT, "group_not_active"), "{}", early.text());
    send(&app.router, empty_request("POST", &format!("/groups/{id}/start"))).await;

    // The pot is 30,000 msat; the floor 30 % under it: 21,000.
    let placed = send(
        &app.router,
        as_member(json_request("POST", &bids, &json!({ "member": m[0], "payout_msat": 25_000 })), &m[0]),
    )
    .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text());
    assert_eq!(placed.json()["payout"], 25_000);
    for (payout, code) in [(20_999, "bid_too_low"), (30_001, "bid_over_pot")] {
        let reply = send(
            &app.router,
            as_member(json_request("POST", &bids, &json!({ "member": m[1], "payout_msat": payout })), &m[1]),
        )
        .await;
        assert_eq!((reply.status, reply.code().as_str()), (StatusCode::UNPROCESSABLE_ENTITY, code), "{}", reply.text());
    }
    let for_another = send(
        &app.router,
        as_member(json_request("POST", &bids, &json!({ "member": m[2], "payout_msat": 22_000 })), &m[1]),
    )
    .await;
    assert_eq!((for_another.status, for_another.code().as_str()), (StatusCode::FORBIDDEN, "self_only"));
    let g = send(&app.router, as_member(empty_request("GET", &format!("/groups/{id}")), &m[1])).await;
    assert_eq!(g.json()["auction"], json!({ "open": true, "bidders": 1, "pot_msat": 30_000, "floor_msat": 21_000 }));
    assert!(!g.text().contains("25000"), "bids are sealed: {}", g.text());

    // A fixed group takes no bids.
    let fixed = create(&app.router, &m).await;
    let path = format!("/groups/{}/bids", fixed["id"].as_str().unwrap());
    let request = json_request("POST", &path, &json!({ "member": m[0], "payout_msat": 1 }));
    let reply = send(&app.router, as_member(request, &m[0])).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::CONFLICT, "not_auctioned"), "{}", reply.text());
}
