//! Connection settings: [`RedisConfig`], parsed from a URL or from
//! environment-style variables the caller looks up, or built by hand.
//!
//! TLS (`rediss://`, [`RedisConfig::with_tls`]) needs this crate's `tls`
//! feature (fred's rustls, with the `ring` provider): the server's
//! certificate is verified against the system's roots, or against the CA
//! given with [`RedisConfig::with_tls_ca_pem`], and must name the host
//! connected to.

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

/// Which certificates a TLS connection trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisTls {
    /// The system's root certificates.
    SystemRoots,
    /// Only the CA certificates of this PEM (a private CA, as many managed
    /// Redis services use).
    CaPem(Vec<u8>),
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
    /// TLS, and what it trusts; `None` for plain TCP.
    pub tls: Option<RedisTls>,
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
            .field(
                "tls",
                &self.tls.as_ref().map(|t| if matches!(t, RedisTls::SystemRoots) { "system roots" } else { "CA" }),
            )
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
            tls: None,
        }
    }

    /// Parses a `redis://[user[:password]@]host[:port][/db]` URL (or
    /// `redis-cluster://…?node=host:port` for a cluster); `rediss://` and
    /// `rediss-cluster://` connect over TLS, trusting the system's roots
    /// (feature `tls`).
    pub fn from_url(url: &str) -> Result<Self, ConnectError> {
        let scheme = url.split_once("://").map_or("", |(s, _)| s);
        let tls = match scheme {
            "redis" | "redis-cluster" => false,
            "rediss" | "rediss-cluster" => true,
            _ => {
                return Err(ConnectError::InvalidConfig(format!(
                    "unsupported Redis URL scheme {scheme:?} (redis://, rediss://, redis-cluster:// or rediss-cluster://)"
                )));
            }
        };
        if tls && !cfg!(feature = "tls") {
            return Err(ConnectError::InvalidConfig(
                "rediss:// needs TLS: build sunusav-redis with its `tls` feature".into(),
            ));
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
        cfg.tls = tls.then_some(RedisTls::SystemRoots);
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

    /// Reads settings from variables that `get` looks up (a binary passes
    /// `|k| std::env::var(k).ok()`; this library reads no environment):
    /// `REDIS_CLUSTER_NODES` (a cluster), else `REDIS_URL`, else `REDIS_HOST`
    /// (default `127.0.0.1`) and `REDIS_PORT` (default `6379`);
    /// `REDIS_PASSWORD` sets or overrides the password; `REDIS_TLS_CA_FILE`
    /// (a PEM file, read here) turns TLS on, trusting only its CAs.
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
        if let Some(path) = get("REDIS_TLS_CA_FILE") {
            let pem = std::fs::read(&path)
                .map_err(|e| ConnectError::InvalidConfig(format!("cannot read REDIS_TLS_CA_FILE {path:?}: {e}")))?;
            cfg = cfg.with_tls_ca_pem(pem);
        }
        Ok(cfg)
    }

    /// Connects over TLS, trusting the system's root certificates (feature `tls`).
    #[must_use]
    pub fn with_tls(mut self) -> Self {
        self.tls = Some(RedisTls::SystemRoots);
        self
    }

    /// Connects over TLS, trusting only the CA certificates of this PEM
    /// (feature `tls`).
    #[must_use]
    pub fn with_tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls = Some(RedisTls::CaPem(pem.into()));
        self
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

    pub(crate) fn fred_config(&self) -> Result<Config, ConnectError> {
        let server = match &self.nodes {
            RedisNodes::Standalone { host, port } => ServerConfig::new_centralized(host.clone(), *port),
            RedisNodes::Cluster(nodes) => ServerConfig::new_clustered(nodes.clone()),
        };
        #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
        let mut config = Config {
            fail_fast: true,
            username: self.username.clone(),
            password: self.password.clone(),
            server,
            database: if self.is_cluster() { None } else { self.database },
            ..Config::default()
        };
        match &self.tls {
            None => {}
            #[cfg(feature = "tls")]
            Some(tls) => config.tls = Some(crate::tls::config(tls)?),
            #[cfg(not(feature = "tls"))]
            Some(_) => {
                return Err(ConnectError::InvalidConfig("TLS to Redis needs sunusav-redis's `tls` feature".into()));
            }
        }
        Ok(config)
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
    fn rediss_urls_ask_for_tls_which_needs_the_tls_feature() {
        let parsed = RedisConfig::from_url("rediss://:sup3rsecret@localhost:6380");
        if cfg!(feature = "tls") {
            let cfg = parsed.unwrap();
            assert_eq!(cfg.tls, Some(RedisTls::SystemRoots));
            assert!(cfg.fred_config().is_ok_and(|c| c.uses_tls()));
        } else {
            assert!(matches!(parsed, Err(ConnectError::InvalidConfig(m)) if m.contains("tls")));
        }
        assert_eq!(RedisConfig::from_url("redis://localhost").unwrap().tls, None);
        let missing = RedisConfig::from_lookup(env(&[("REDIS_TLS_CA_FILE", "/nonexistent/ca.pem")]));
        assert!(missing.is_err());
    }

    #[test]
    fn a_ca_that_is_not_pem_is_refused_when_the_client_is_built() {
        let cfg = RedisConfig::standalone("localhost", 6380).with_tls_ca_pem(b"not a certificate".to_vec());
        assert!(matches!(cfg.fred_config(), Err(ConnectError::InvalidConfig(_))));
    }

    #[test]
    fn bad_settings_are_errors_not_panics() {
        assert!(RedisConfig::from_lookup(env(&[("REDIS_PORT", "nope")])).is_err());
        assert!(RedisConfig::from_cluster_nodes("host-without-port").is_err());
        assert!(RedisConfig::from_url("http://nope").is_err());
    }
}
