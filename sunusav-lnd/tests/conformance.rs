//! The core's payments conformance suite against `LndNode`, talking REST
//! over TLS to the LND stand-in (which is also the suite's script).

use std::sync::Arc;

use sunusav_core::conformance::payments::PaymentsHarness;
use sunusav_lnd::LndNode;
use sunusav_lnd::stand_in::StandIn;

async fn harness() -> PaymentsHarness {
    let lnd = StandIn::start().await.expect("stand-in");
    let node = Arc::new(LndNode::connect(lnd.config()).await.expect("connect"));
    PaymentsHarness { node: node.clone(), events: node, script: Arc::new(lnd) }
}

sunusav_core::payments_conformance_tests!(harness);
