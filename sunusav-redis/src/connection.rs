//! [`RedisConnection`]: one shared client (plus a pool of blocking clients) that creates queues.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::ClientLike;
use fred::types::Builder;
use fred::types::config::{Blocking, Config};
use sunusav_core::ports::queue::QueueConfig;

use crate::config::RedisConfig;
use crate::error::ConnectError;
use crate::queue::RedisQueue;
use crate::scripts::Scripts;

/// Idle blocking clients kept for reuse.
const MAX_IDLE_BLOCKING: usize = 64;

/// A connection to Redis (standalone or cluster) shared by any number of queues.
///
/// Non-blocking commands of every queue share one multiplexed, pipelined
/// client. Blocking waits (`BLPOP` in [`sunusav_core::ports::Consumer::reserve_wait`])
/// run on dedicated clients from a small pool, since a client queues every
/// command behind a blocking one. Clients reconnect by themselves, forever,
/// with exponential delays; calls made while Redis is down fail with
/// `QueueError::Unavailable` after the command timeout.
#[derive(Clone)]
pub struct RedisConnection {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) scripts: Scripts,
    pub(crate) config: RedisConfig,
    idle_blocking: Mutex<Vec<Client>>,
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnection").field("config", &self.shared.config).finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// Connects and loads the scripts.
    ///
    /// # Errors
    /// `Redis` when the server cannot be reached (within the connect timeout),
    /// refuses the credentials or the scripts.
    pub async fn connect(config: RedisConfig) -> Result<Self, ConnectError> {
        let client = build_client(&config, config.fred_config())?;
        connect_client(&client, &config).await?;
        let scripts = Scripts::new(config.is_cluster());
        scripts.load_all(&client).await.map_err(ConnectError::Redis)?;
        Ok(Self { shared: Arc::new(Shared { client, scripts, config, idle_blocking: Mutex::new(Vec::new()) }) })
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

    /// Closes the shared client and idle blocking clients.
    pub async fn close(&self) {
        let idle = std::mem::take(&mut *self.shared.idle_blocking.lock().unwrap_or_else(PoisonError::into_inner));
        for c in idle {
            let _ = c.quit().await;
        }
        let _ = self.shared.client.quit().await;
    }
}

impl Shared {
    /// Takes an idle blocking client or connects a new one.
    pub(crate) async fn take_blocking(&self) -> Result<Client, fred::error::Error> {
        let idle = self.idle_blocking.lock().unwrap_or_else(PoisonError::into_inner).pop();
        if let Some(c) = idle {
            return Ok(c);
        }
        let mut cfg = self.config.fred_config();
        cfg.blocking = Blocking::Interrupt;
        let client = build_client(&self.config, cfg).map_err(|e| match e {
            ConnectError::Redis(e) => e,
            ConnectError::InvalidConfig(m) => fred::error::Error::new(fred::error::ErrorKind::Config, m),
        })?;
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

fn build_client(config: &RedisConfig, fred_config: Config) -> Result<Client, ConnectError> {
    Builder::from_config(fred_config)
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
