//! Connection settings: [`RedisConfig`], read from the environment or built by hand.

use std::fmt;
use std::time::Duration;

use fred::types::config::{Config, ReconnectPolicy, ServerConfig};

use crate::error::ConnectError;

/// Where the Redis servers are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisNodes {
    /// One standalone server.
    Standalone {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// A Redis Cluster, reached through any of these seed nodes.
    Cluster(Vec<(String, u16)>),
}

/// How to reach Redis. The password never appears in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// The server(s).
    pub nodes: RedisNodes,
    /// ACL user name, if any.
    pub username: Option<String>,
    password: Option<String>,
    /// Database number (standalone only).
    pub database: Option<u8>,
    /// Timeout of one command (a script call); past it the call is `Unavailable`.
    pub command_timeout: Duration,
    /// Timeout of establishing a connection.
    pub connect_timeout: Duration,
    /// Longest delay between two reconnection attempts (they go on forever).
    pub max_reconnect_delay: Duration,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("nodes", &self.nodes)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("database", &self.database)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_reconnect_delay", &self.max_reconnect_delay)
            .finish()
    }
}

impl RedisConfig {
    /// A standalone server at `host:port`, no password.
    pub fn standalone(host: impl Into<String>, port: u16) -> Self {
        Self::with_nodes(RedisNodes::Standalone { host: host.into(), port })
    }

    /// A cluster reached through these seed nodes.
    pub fn cluster(nodes: Vec<(String, u16)>) -> Self {
        Self::with_nodes(RedisNodes::Cluster(nodes))
    }

    fn with_nodes(nodes: RedisNodes) -> Self {
        Self {
            nodes,
            username: None,
            password: None,
            database: None,
            command_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_reconnect_delay: Duration::from_secs(2),
        }
    }

    /// Parses a `redis://[user[:password]@]host[:port][/db]` URL (or
    /// `redis-cluster://…?node=host:port` for a cluster).
    pub fn from_url(url: &str) -> Result<Self, ConnectError> {
        let scheme = url.split_once("://").map_or("", |(s, _)| s);
        if scheme != "redis" && scheme != "redis-cluster" {
            return Err(ConnectError::InvalidConfig(format!(
                "unsupported Redis URL scheme {scheme:?} (redis:// or redis-cluster://)"
            )));
        }
        let parsed = Config::from_url(url)
            .map_err(|e| ConnectError::InvalidConfig(format!("invalid Redis URL: {}", e.details())))?;
        let nodes = match &parsed.server {
            ServerConfig::Centralized { server } => {
                RedisNodes::Standalone { host: server.host.to_string(), port: server.port }
            }
            ServerConfig::Clustered { hosts, .. } => {
                RedisNodes::Cluster(hosts.iter().map(|s| (s.host.to_string(), s.port)).collect())
            }
            ServerConfig::Sentinel { .. } => {
                return Err(ConnectError::InvalidConfig("Redis Sentinel URLs are not supported".into()));
            }
        };
        let mut cfg = Self::with_nodes(nodes);
        cfg.username = parsed.username;
        cfg.password = parsed.password;
        cfg.database = parsed.database;
        Ok(cfg)
    }

    /// Parses a comma-separated `host:port` list of cluster seed nodes.
    pub fn from_cluster_nodes(list: &str) -> Result<Self, ConnectError> {
        let nodes = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(parse_host_port)
            .collect::<Result<Vec<_>, _>>()?;
        if nodes.is_empty() {
            return Err(ConnectError::InvalidConfig("empty cluster node list".into()));
        }
        Ok(Self::cluster(nodes))
    }

    /// Reads the process environment: `REDIS_CLUSTER_NODES` (a cluster), else
    /// `REDIS_URL`, else `REDIS_HOST` (default `127.0.0.1`) and `REDIS_PORT`
    /// (default `6379`); `REDIS_PASSWORD` sets or overrides the password.
    pub fn from_env() -> Result<Self, ConnectError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// As [`RedisConfig::from_env`], with a custom variable lookup (for tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConnectError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let mut cfg = if let Some(nodes) = get("REDIS_CLUSTER_NODES") {
            Self::from_cluster_nodes(&nodes)?
        } else if let Some(url) = get("REDIS_URL") {
            Self::from_url(&url)?
        } else {
            let host = get("REDIS_HOST").unwrap_or_else(|| "127.0.0.1".into());
            let port = match get("REDIS_PORT") {
                Some(p) => {
                    p.trim().parse().map_err(|_| ConnectError::InvalidConfig(format!("invalid REDIS_PORT {p:?}")))?
                }
                None => 6379,
            };
            Self::standalone(host, port)
        };
        if let Some(pw) = get("REDIS_PASSWORD") {
            cfg.password = Some(pw);
        }
        Ok(cfg)
    }

    /// Sets the password.
    #[must_use]
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Whether a password is set.
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// Whether this is a cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.nodes, RedisNodes::Cluster(_))
    }

    pub(crate) fn fred_config(&self) -> Config {
        let server = match &self.nodes {
            RedisNodes::Standalone { host, port } => ServerConfig::new_centralized(host.clone(), *port),
            RedisNodes::Cluster(nodes) => ServerConfig::new_clustered(nodes.clone()),
        };
        Config {
            fail_fast: true,
            username: self.username.clone(),
            password: self.password.clone(),
            server,
            database: if self.is_cluster() { None } else { self.database },
            ..Config::default()
        }
    }

    pub(crate) fn reconnect_policy(&self) -> ReconnectPolicy {
        let max = u32::try_from(self.max_reconnect_delay.as_millis()).unwrap_or(u32::MAX).max(50);
        // max_attempts 0: reconnect forever.
        ReconnectPolicy::new_exponential(0, 50, max, 2)
    }
}

fn parse_host_port(s: &str) -> Result<(String, u16), ConnectError> {
    let (host, port) =
        s.rsplit_once(':').ok_or_else(|| ConnectError::InvalidConfig(format!("expected host:port, got {s:?}")))?;
    let port = port.parse().map_err(|_| ConnectError::InvalidConfig(format!("invalid port in {s:?}")))?;
    if host.is_empty() {
        return Err(ConnectError::InvalidConfig(format!("empty host in {s:?}")));
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_string())
    }

    #[test]
    fn host_port_and_password_come_from_the_environment() {
        let cfg = RedisConfig::from_lookup(env(&[
            ("REDIS_HOST", "db"),
            ("REDIS_PORT", "6380"),
            ("REDIS_PASSWORD", "hunter22"),
        ]))
        .unwrap();
        assert_eq!(cfg.nodes, RedisNodes::Standalone { host: "db".into(), port: 6380 });
        assert!(cfg.has_password());
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let cfg = RedisConfig::from_url("redis://u:sup3rsecret@localhost:6379/2").unwrap();
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("sup3rsecret"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert_eq!(cfg.database, Some(2));
    }

    #[test]
    fn cluster_nodes_are_parsed_from_a_comma_separated_list() {
        let cfg = RedisConfig::from_lookup(env(&[
            ("REDIS_CLUSTER_NODES", "127.0.0.1:7000, 127.0.0.1:7001"),
            ("REDIS_URL", "redis://x"),
        ]))
        .unwrap();
        assert_eq!(cfg.nodes, RedisNodes::Cluster(vec![("127.0.0.1".into(), 7000), ("127.0.0.1".into(), 7001)]));
    }

    #[test]
    fn bad_settings_are_errors_not_panics() {
        assert!(RedisConfig::from_lookup(env(&[("REDIS_PORT", "nope")])).is_err());
        assert!(RedisConfig::from_cluster_nodes("host-without-port").is_err());
        assert!(RedisConfig::from_url("http://nope").is_err());
    }
}
