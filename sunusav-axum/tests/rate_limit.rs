//! The per-client rate limit on the routes anyone can call.

mod common;

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use common::{app, empty_request, send};
use http::StatusCode;
use sunusav_axum::group_router;
use sunusav_axum::layers::RouterLayers as _;
use sunusav_axum::rate_limit::RateLimit;

fn from(addr: &str, path: &str) -> http::Request<axum::body::Body> {
    let mut request = empty_request("GET", path);
    request.extensions_mut().insert(ConnectInfo(addr.parse::<SocketAddr>().expect("address")));
    request
}

#[tokio::test]
async fn a_client_past_its_burst_gets_429_with_retry_after_and_others_are_served() {
    let app = app();
    let limited = group_router(app.state.clone()).with_rate_limit(RateLimit::new(1, 3).expect("limit"));
    let path = format!("/groups/{}", sunusav_core::GroupId::random());
    for _ in 0..3 {
        assert_eq!(send(&limited, from("203.0.113.7:5000", &path)).await.status, StatusCode::NOT_FOUND);
    }
    let refused = send(&limited, from("203.0.113.7:5001", &path)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.text());
    assert_eq!(refused.code(), "rate_limited");
    let retry: u64 = refused.headers["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!(retry >= 1);
    // Another client has its own bucket.
    assert_eq!(send(&limited, from("198.51.100.9:5000", &path)).await.status, StatusCode::NOT_FOUND);
    // A request without a client address (a server that does not provide
    // it: a wiring bug) is never let through unlimited.
    let bare = tower::ServiceExt::oneshot(limited.clone(), empty_request("GET", &path)).await.expect("infallible");
    assert_eq!(bare.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn behind_a_proxy_the_forwarded_client_is_limited() {
    let app = app();
    let limit = RateLimit::new(1, 1).expect("limit").behind_proxy();
    let limited = group_router(app.state.clone()).with_rate_limit(limit);
    let path = format!("/groups/{}", sunusav_core::GroupId::random());
    let forwarded = |client: &str| {
        let mut r = from("10.0.0.1:443", &path);
        r.headers_mut().insert("x-forwarded-for", client.parse().expect("header"));
        r
    };
    assert_eq!(send(&limited, forwarded("203.0.113.7")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(send(&limited, forwarded("203.0.113.7")).await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        send(&limited, forwarded("198.51.100.9")).await.status,
        StatusCode::NOT_FOUND,
        "one proxy, many clients"
    );
    assert!(RateLimit::new(0, 1).is_err() && RateLimit::new(1, 0).is_err());
}
