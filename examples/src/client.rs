//! A small HTTP/1.1 client over hyper, for the demo driver and the tests.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Several servers behind one client: requests go round-robin; one that
/// cannot connect, or is answered 503 (a dependency down, nothing accepted),
/// is tried again on the next server, as a webhook sender retries.
#[derive(Clone, Debug)]
pub struct Servers {
    clients: Vec<HttpClient>,
    next: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    patience: Duration,
    tokens: TokenCache,
}

/// Member tokens already issued, by member id (shared by clones).
type TokenCache = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>;

/// A bearer token, redacted in `Debug`.
#[derive(Clone)]
struct Bearer(std::sync::Arc<str>);

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bearer(<redacted>)")
    }
}

/// Issues (or takes from `cache`) member `member`'s token through `admin`
/// (a client holding the admin token): `POST /admin/members/{member}/token`.
async fn member_token(admin: &HttpClient, cache: &TokenCache, member: &str) -> anyhow::Result<String> {
    if let Some(token) = cache.lock().map_err(|_| anyhow::anyhow!("token cache poisoned"))?.get(member) {
        return Ok(token.clone());
    }
    let r = admin.send(Method::POST, &format!("/admin/members/{member}/token"), &[], Bytes::new()).await?;
    anyhow::ensure!(r.status == StatusCode::CREATED, "issuing a member token answered {}", r.status);
    let token = r.json()["token"].as_str().context("no token in the answer")?.to_owned();
    cache.lock().map_err(|_| anyhow::anyhow!("token cache poisoned"))?.insert(member.to_owned(), token.clone());
    Ok(token)
}

impl Servers {
    /// Clients for each base URL (at least one).
    pub fn new(urls: &[String]) -> Self {
        Self {
            clients: urls.iter().map(HttpClient::new).collect(),
            next: std::sync::Arc::default(),
            patience: Duration::from_secs(30),
            tokens: TokenCache::default(),
        }
    }

    /// These clients, sending `Authorization: Bearer <token>` (the admin
    /// token: the operator on the group API, and the issuer of member tokens).
    #[must_use]
    pub fn with_bearer(mut self, token: &str) -> Self {
        self.clients = self.clients.into_iter().map(|c| c.with_bearer(token)).collect();
        self
    }

    /// These clients acting as member `member`, with a member token issued
    /// through this client's (admin) bearer token by any server that
    /// answers (the servers share their admin token, so each accepts it);
    /// cached per member.
    ///
    /// # Errors
    /// When the token cannot be issued.
    pub async fn as_member(&self, member: &str) -> anyhow::Result<Self> {
        let cached = self.tokens.lock().map_err(|_| anyhow::anyhow!("token cache poisoned"))?.get(member).cloned();
        let token = if let Some(token) = cached {
            token
        } else {
            let r = self.send(Method::POST, &format!("/admin/members/{member}/token"), &[], Bytes::new()).await?;
            anyhow::ensure!(r.status == StatusCode::CREATED, "issuing a member token answered {}", r.status);
            let token = r.json()["token"].as_str().context("no token in the answer")?.to_owned();
            self.tokens
                .lock()
                .map_err(|_| anyhow::anyhow!("token cache poisoned"))?
                .insert(member.to_owned(), token.clone());
            token
        };
        Ok(Self {
            clients: self.clients.iter().map(|c| c.clone().with_bearer(&token)).collect(),
            next: std::sync::Arc::clone(&self.next),
            patience: self.patience,
            tokens: std::sync::Arc::clone(&self.tokens),
        })
    }

    /// Sends to the next server, failing over to the others on a connection error.
    ///
    /// # Errors
    /// When no server answers.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> anyhow::Result<Response> {
        let n = self.clients.len().max(1);
        let start = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + self.patience;
        let mut pause = Duration::from_millis(50);
        let mut i = 0;
        // A server restarting comes back within the patience: keep trying.
        loop {
            let c = &self.clients[(start + i) % n];
            i += 1;
            match c.send(method.clone(), path, headers, body.clone()).await {
                Ok(r) if r.status != StatusCode::SERVICE_UNAVAILABLE => return Ok(r),
                Ok(r) if tokio::time::Instant::now() >= deadline => return Ok(r),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Ok(_) | Err(_) => {
                    if i % n == 0 {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(1));
                    }
                }
            }
        }
    }

    /// `GET path`.
    ///
    /// # Errors
    /// When no server answers.
    pub async fn get(&self, path: &str) -> anyhow::Result<Response> {
        self.send(Method::GET, path, &[], Bytes::new()).await
    }

    /// `POST path` with a JSON body.
    ///
    /// # Errors
    /// When no server answers.
    pub async fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<Response> {
        let bytes = Bytes::from(serde_json::to_vec(body)?);
        self.send(Method::POST, path, &[("content-type", "application/json")], bytes).await
    }

    /// `PUT path` with a JSON body.
    ///
    /// # Errors
    /// When no server answers.
    pub async fn put_json(&self, path: &str, body: &Value) -> anyhow::Result<Response> {
        let bytes = Bytes::from(serde_json::to_vec(body)?);
        self.send(Method::PUT, path, &[("content-type", "application/json")], bytes).await
    }
}

/// A client bound to one base URL (`http://127.0.0.1:3000`). Cheap to clone.
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
    base: String,
    timeout: Duration,
    bearer: Option<Bearer>,
    tokens: TokenCache,
}

/// A response: status and body bytes.
#[derive(Clone, Debug)]
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// The body.
    pub body: Bytes,
}

impl Response {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

impl HttpClient {
    /// A client for `base`, keeping connections alive, with a 30 s timeout per request.
    pub fn new(base: impl Into<String>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let inner = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(256).build(connector);
        Self {
            inner,
            base: base.into().trim_end_matches('/').to_owned(),
            timeout: Duration::from_secs(30),
            bearer: None,
            tokens: TokenCache::default(),
        }
    }

    /// This client, sending `Authorization: Bearer <token>` with every request.
    #[must_use]
    pub fn with_bearer(mut self, token: &str) -> Self {
        self.bearer = Some(Bearer(token.into()));
        self
    }

    /// This client acting as member `member`: a member token issued through
    /// this client's (admin) bearer token, cached per member.
    ///
    /// # Errors
    /// When the token cannot be issued.
    pub async fn as_member(&self, member: &str) -> anyhow::Result<Self> {
        let token = member_token(self, &self.tokens, member).await?;
        Ok(self.clone().with_bearer(&token))
    }

    /// Sends one request.
    ///
    /// # Errors
    /// When the connection fails or the request times out.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> anyhow::Result<Response> {
        let mut req = Request::builder().method(method).uri(format!("{}{path}", self.base));
        if let Some(Bearer(token)) = &self.bearer {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body.into())).context("building request")?;
        let res = tokio::time::timeout(self.timeout, self.inner.request(req))
            .await
            .context("request timed out")?
            .context("request failed")?;
        let status = res.status();
        let body = res.into_body().collect().await.context("reading body")?.to_bytes();
        Ok(Response { status, body })
    }

    /// `GET path`.
    ///
    /// # Errors
    /// As [`HttpClient::send`].
    pub async fn get(&self, path: &str) -> anyhow::Result<Response> {
        self.send(Method::GET, path, &[], Bytes::new()).await
    }

    /// `POST path` with a JSON body.
    ///
    /// # Errors
    /// As [`HttpClient::send`].
    pub async fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<Response> {
        let bytes = serde_json::to_vec(body)?;
        self.send(Method::POST, path, &[("content-type", "application/json")], bytes).await
    }

    /// `PUT path` with a JSON body.
    ///
    /// # Errors
    /// As [`HttpClient::send`].
    pub async fn put_json(&self, path: &str, body: &Value) -> anyhow::Result<Response> {
        let bytes = serde_json::to_vec(body)?;
        self.send(Method::PUT, path, &[("content-type", "application/json")], bytes).await
    }

    /// Gives each member a keysend destination (`node`, 66 hex characters).
    ///
    /// # Errors
    /// When the server cannot be reached or refuses one.
    pub async fn set_destinations(&self, members: &[String], node: &str) -> anyhow::Result<()> {
        for m in members {
            let r = self
                .as_member(m)
                .await?
                .put_json(&format!("/members/{m}/payout-destination"), &serde_json::json!({ "keysend": node }))
                .await?;
            anyhow::ensure!(
                r.status.is_success(),
                "set destination answered {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
        Ok(())
    }
}
