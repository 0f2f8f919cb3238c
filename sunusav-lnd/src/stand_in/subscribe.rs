//! `GET /v1/invoices/subscribe` (`SubscribeInvoices`): the invoices settled
//! after `settle_index` (none for 0), then every added and settled one,
//! live, until the client leaves or the stream is cut.

use std::sync::Arc;

use super::respond::{self, Reply};
use super::server::Shared;
use super::state::RpcErr;

/// Serves one subscription; `cut` cuts it after that many lines.
pub async fn subscribe(shared: &Arc<Shared>, query: Option<&str>, cut: Option<usize>) -> Result<Reply, std::io::Error> {
    let mut settle_index = 0u64;
    for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let parsed = v.parse::<u64>();
        match (k, parsed) {
            ("settle_index", Ok(n)) => settle_index = n,
            ("add_index", Ok(_)) => {}
            _ => return Ok(respond::unary_error(&RpcErr::new(3, &format!("invalid query parameter {k:?}")))),
        }
    }
    // The backlog and the live feed are taken under one lock: no gap, no double.
    let (backlog, mut live) = {
        let st = shared.lock();
        (st.settled_since(settle_index), st.invoice_events.subscribe())
    };
    let mut cut_all = shared.cut_subscriptions.subscribe();
    let (mut w, reply) = respond::stream();
    w.cut_after(cut);
    tokio::spawn(async move {
        let Some(mut w) = w.start() else { return };
        for inv in backlog {
            let Some(next) = w.line(respond::result_line(&inv)).await else { return };
            w = next;
        }
        loop {
            tokio::select! {
                ev = live.recv() => match ev {
                    Ok(inv) => {
                        let Some(next) = w.line(respond::result_line(&inv)).await else { return };
                        w = next;
                    }
                    Err(_) => return w.cut(),
                },
                _ = cut_all.changed() => return w.cut(),
            }
        }
    });
    reply.ready().await
}
