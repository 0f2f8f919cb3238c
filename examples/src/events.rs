//! Domain events to `EVENTS_WEBHOOK_URL`, as Standard Webhooks: a POST of
//! the event's JSON with `webhook-id` (the event's id, the receiver's dedup
//! key), `webhook-timestamp` and `webhook-signature` (`v1,<base64
//! HMAC-SHA256>` under `EVENTS_WEBHOOK_SECRET`). A 2xx answer delivers it;
//! anything else, a timeout or a refused connection is retried by the events
//! queue with backoff, then dead-lettered for an operator.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sunusav_core::runtime::{EventSubscriber, SubscriberError};
use sunusav_core::services::DomainEvent;
use sunusav_core::webhook::Secret;

/// Delivers events to one HTTP endpoint. `Debug` shows the URL, never the secret.
#[derive(Clone)]
pub struct HttpSubscriber {
    client: Client<HttpConnector, Full<Bytes>>,
    url: http::Uri,
    secret: Secret,
    timeout: Duration,
}

impl HttpSubscriber {
    /// A subscriber posting to `url` (`http://…`), signing with `secret`.
    ///
    /// # Errors
    /// A URL that is not `http://host[:port]/path`.
    pub fn new(url: &str, secret: Secret) -> anyhow::Result<Self> {
        let uri: http::Uri = url.parse().map_err(|e| anyhow::anyhow!("EVENTS_WEBHOOK_URL: {e}"))?;
        anyhow::ensure!(
            uri.scheme_str() == Some("http") && uri.host().is_some(),
            "EVENTS_WEBHOOK_URL must be http://host[:port]/path (https: put a TLS-terminating proxy in front)"
        );
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self { client, url: uri, secret, timeout: Duration::from_secs(10) })
    }
}

impl std::fmt::Debug for HttpSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSubscriber").field("url", &self.url).finish_non_exhaustive()
    }
}

#[async_trait]
impl EventSubscriber for HttpSubscriber {
    async fn deliver(&self, event: &DomainEvent, body: &[u8]) -> Result<(), SubscriberError> {
        let timestamp = sunusav_axum::clock::now_unix_secs();
        let signature = self.secret.sign_standard_webhooks(&event.id, timestamp, body);
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", event.id.as_str())
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| SubscriberError::Refused(format!("building the request: {e}")))?;
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| SubscriberError::Retry(format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| SubscriberError::Retry(format!("request failed: {e}")))?;
        let status = response.status();
        // Read (and drop) the body so that the connection is reused.
        let _ = tokio::time::timeout(self.timeout, response.into_body().collect()).await;
        if status.is_success() {
            tracing::debug!(event = %event.id, "event delivered");
            Ok(())
        } else {
            Err(SubscriberError::Retry(format!("the subscriber answered {status}")))
        }
    }
}
