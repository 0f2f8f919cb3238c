//! [`RedisConnection`]: one shared client (plus a pool of blocking clients) that creates queues.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::ClientLike;
use fred::types::Builder;
use fred::types::config::Blocking;
use sunusav_core::ports::queue::QueueConfig;

use crate::config::RedisConfig;
use crate::error::ConnectError;
use crate::queue::RedisQueue;
use crate::scripts::Scripts;

/// Idle blocking clients kept for reuse.
const MAX_IDLE_BLOCKING: usize = 64;

/// How long a blocking wait's reply may take past the wait, when the client
/// has no default command timeout.
const FALLBACK_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to Redis (standalone or cluster) shared by any number of queues.
///
/// Non-blocking commands of every queue share one multiplexed, pipelined
/// client. Blocking waits (`BLPOP` in [`sunusav_core::ports::Consumer::reserve_wait`])
/// run on dedicated clients from a small pool, since a client queues every
/// command behind a blocking one. Clients reconnect by themselves, forever,
/// with exponential delays; calls made while Redis is down fail with
/// `QueueError::Unavailable` after the command timeout.
///
/// Build it from a [`RedisConfig`] ([`RedisConnection::connect`]) or from a
/// host's own `fred` client ([`RedisConnection::from_client`]); blocking
/// clients are made with the shared client's settings, TLS included.
#[derive(Clone)]
pub struct RedisConnection {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) scripts: Scripts,
    /// How long a blocking wait's reply may take past the wait.
    pub(crate) command_timeout: Duration,
    /// The settings it was connected with; `None` for a host's client.
    config: Option<RedisConfig>,
    idle_blocking: Mutex<Vec<Client>>,
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // fred's own `Config` would print a password: only ours, redacted.
        let mut d = f.debug_struct("RedisConnection");
        match &self.shared.config {
            Some(config) => d.field("config", config),
            None => d.field("client", &"the host's"),
        };
        d.finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// Connects and loads the scripts.
    ///
    /// # Errors
    /// `Redis` when the server cannot be reached (within the connect timeout),
    /// refuses the credentials or the scripts.
    pub async fn connect(config: RedisConfig) -> Result<Self, ConnectError> {
        let client = build_client(&config)?;
        connect_client(&client, &config).await?;
        Self::with_client(client, Some(config)).await
    }

    /// Shares a host's `fred` client, already connected (`init`): the queues
    /// run their scripts on it and make their blocking clients with its
    /// settings (servers, credentials, TLS, timeouts, reconnection policy).
    /// [`RedisConnection::close`] leaves it open: it stays the host's.
    ///
    /// A script in flight when a connection drops should not be sent again:
    /// build the client with `ConnectionConfig::max_command_attempts = 1`
    /// (as [`RedisConnection::connect`] does), so that the caller sees
    /// `Unavailable` and decides.
    ///
    /// # Errors
    /// `Redis` when the scripts cannot be loaded (the client is not connected,
    /// or Redis refuses them).
    pub async fn from_client(client: Client) -> Result<Self, ConnectError> {
        Self::with_client(client, None).await
    }

    async fn with_client(client: Client, config: Option<RedisConfig>) -> Result<Self, ConnectError> {
        let scripts = Scripts::new(client.is_clustered());
        scripts.load_all(&client).await.map_err(ConnectError::Redis)?;
        let timeout = client.perf_config().default_command_timeout;
        let command_timeout = if timeout.is_zero() { FALLBACK_COMMAND_TIMEOUT } else { timeout };
        Ok(Self {
            shared: Arc::new(Shared {
                client,
                scripts,
                command_timeout,
                config,
                idle_blocking: Mutex::new(Vec::new()),
            }),
        })
    }

    /// A queue named `name` whose keys start with `{prefix:name}`.
    ///
    /// # Errors
    /// `InvalidConfig` when the name or prefix is empty or holds `{`, `}` or
    /// a non-printable character.
    pub fn queue(&self, name: &str, prefix: &str, config: QueueConfig) -> Result<RedisQueue, ConnectError> {
        for (what, s) in [("queue name", name), ("key prefix", prefix)] {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_graphic() && b != b'{' && b != b'}') {
                return Err(ConnectError::InvalidConfig(format!(
                    "{what} {s:?} must be non-empty printable ASCII without braces"
                )));
            }
        }
        Ok(RedisQueue::new(self.clone(), name, prefix, config))
    }

    /// The shared (non-blocking) client, for diagnostics.
    pub fn client(&self) -> &Client {
        &self.shared.client
    }

    /// Closes the idle blocking clients, and the shared client unless it is
    /// a host's ([`RedisConnection::from_client`]).
    pub async fn close(&self) {
        let idle = std::mem::take(&mut *self.shared.idle_blocking.lock().unwrap_or_else(PoisonError::into_inner));
        for c in idle {
            let _ = c.quit().await;
        }
        if self.shared.config.is_some() {
            let _ = self.shared.client.quit().await;
        }
    }
}

impl Shared {
    /// Takes an idle blocking client or connects a new one.
    pub(crate) async fn take_blocking(&self) -> Result<Client, fred::error::Error> {
        let idle = self.idle_blocking.lock().unwrap_or_else(PoisonError::into_inner).pop();
        if let Some(c) = idle {
            return Ok(c);
        }
        // The shared client's settings, with blocking commands interrupted
        // when another command is sent.
        let mut config = self.client.client_config();
        config.blocking = Blocking::Interrupt;
        let mut builder = Builder::from_config(config);
        builder.set_connection_config(self.client.connection_config().clone());
        builder.set_performance_config(self.client.perf_config());
        if let Some(policy) = self.client.client_reconnect_policy() {
            builder.set_policy(policy);
        }
        let client = builder.build()?;
        client.init().await?;
        Ok(client)
    }

    /// Returns a blocking client after a completed command.
    pub(crate) fn give_back_blocking(&self, client: Client) {
        let mut idle = self.idle_blocking.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_BLOCKING {
            idle.push(client);
            return;
        }
        drop(idle);
        tokio::spawn(async move {
            let _ = client.quit().await;
        });
    }
}

fn build_client(config: &RedisConfig) -> Result<Client, ConnectError> {
    Builder::from_config(config.fred_config()?)
        .with_connection_config(|c| {
            c.connection_timeout = config.connect_timeout;
            c.internal_command_timeout = config.connect_timeout;
            // A script in flight when the connection drops is not re-sent: the
            // caller sees `Unavailable` and decides (a reserve is safe to retry).
            c.max_command_attempts = 1;
        })
        .with_performance_config(|p| {
            p.default_command_timeout = config.command_timeout;
        })
        .set_policy(config.reconnect_policy())
        .build()
        .map_err(ConnectError::Redis)
}

async fn connect_client(client: &Client, config: &RedisConfig) -> Result<(), ConnectError> {
    let wait = config.connect_timeout + Duration::from_secs(1);
    match tokio::time::timeout(wait, client.init()).await {
        Ok(Ok(_handle)) => Ok(()),
        Ok(Err(e)) => Err(ConnectError::Redis(e)),
        Err(_) => {
            let _ = client.quit().await;
            Err(ConnectError::Redis(fred::error::Error::new(fred::error::ErrorKind::Timeout, "connect timed out")))
        }
    }
}
