//! TLS trusts only the configured certificate, the macaroon is checked and
//! never printed, and a connection that fails sends nothing.

use sunusav_lnd::LndNode;
use sunusav_lnd::stand_in::StandIn;
use sunusav_lnd::transport::CallError;

#[tokio::test]
async fn a_wrong_certificate_fails_the_handshake_before_a_byte_is_sent() {
    let lnd = StandIn::start().await.unwrap();
    let other = StandIn::other_certificate().unwrap();
    let node = LndNode::connect(lnd.config_with_cert(&other).unwrap()).await.expect("connect reads files only");

    let err = node.rest().get_info().await.expect_err("a certificate that is not LND's");

    assert!(matches!(err, CallError::NotSent(_)), "{err}");
    assert_eq!(lnd.requests(), 0, "no request reached the server");
}

#[tokio::test]
async fn the_configured_certificate_is_trusted_though_it_is_a_ca_certificate() {
    let lnd = StandIn::start().await.unwrap();
    let node = LndNode::connect(lnd.config()).await.unwrap();
    node.rest().get_info().await.expect("LND's self-signed CA-flagged certificate is accepted when pinned");
}

#[tokio::test]
async fn a_wrong_macaroon_is_refused_as_lnd_refuses_it() {
    let lnd = StandIn::start().await.unwrap();
    let node = LndNode::connect(lnd.config_with_macaroon(&[0x02, 0x01, 0x03]).unwrap()).await.unwrap();

    let err = node.rest().get_info().await.expect_err("wrong macaroon");

    assert!(err.is_rpc(2, "verification failed"), "{err}");
}

#[tokio::test]
async fn the_macaroon_never_appears_in_debug_output() {
    let lnd = StandIn::start().await.unwrap();
    let config = lnd.config();
    let macaroon = std::fs::read(config.macaroon_path()).unwrap();
    assert!(lnd.is_macaroon(&macaroon));
    let node = LndNode::connect(config.clone()).await.unwrap();

    let shown = format!("{node:?} {node:#?} {config:?} {:?}", node.rest().get_info().await);

    for needle in [hex::encode(&macaroon), hex::encode_upper(&macaroon)] {
        assert!(!shown.contains(&needle), "the macaroon appears in {shown}");
    }
}

#[tokio::test]
async fn a_missing_macaroon_file_is_an_error_naming_the_file_not_a_panic() {
    let lnd = StandIn::start().await.unwrap();
    let config = sunusav_lnd::LndConfig::new(lnd.url(), "no-such.macaroon", "no-such.cert");
    let err = LndNode::connect(config).await.expect_err("missing file");
    assert!(err.to_string().contains("no-such.macaroon"), "{err}");
    let bad_url =
        sunusav_lnd::LndConfig::new("http://plain", lnd.config().macaroon_path(), lnd.config().tls_cert_path());
    assert!(LndNode::connect(bad_url).await.is_err(), "https only");
}
