//! The Lua scripts: loaded once with `SCRIPT LOAD` (on every primary of a
//! cluster), called with `EVALSHA`, reloaded when a server answers `NOSCRIPT`
//! (after a restart or a failover).

use fred::clients::Client;
use fred::error::Error as FredError;
use fred::interfaces::LuaInterface;
use fred::types::scripts::Script;
use fred::types::{FromValue, Value};

const COMMON: &str = include_str!("lua/common.lua");
/// `add_job`, placed after [`COMMON`] in the scripts that add jobs.
const JOB: &str = include_str!("lua/job.lua");

/// One script of the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Enqueue,
    Step,
    Fail,
    Heartbeat,
    Recover,
    Admin,
    Schedule,
}

impl Op {
    const ALL: [Self; 7] =
        [Self::Enqueue, Self::Step, Self::Fail, Self::Heartbeat, Self::Recover, Self::Admin, Self::Schedule];

    /// The helpers placed between [`COMMON`] and the body.
    fn helpers(self) -> &'static str {
        match self {
            Self::Enqueue | Self::Schedule => JOB,
            _ => "",
        }
    }

    fn body(self) -> &'static str {
        match self {
            Self::Enqueue => include_str!("lua/enqueue.lua"),
            Self::Step => include_str!("lua/step.lua"),
            Self::Fail => include_str!("lua/fail.lua"),
            Self::Heartbeat => include_str!("lua/heartbeat.lua"),
            Self::Recover => include_str!("lua/recover.lua"),
            Self::Admin => include_str!("lua/admin.lua"),
            Self::Schedule => include_str!("lua/schedule.lua"),
        }
    }
}

/// The common helpers then each script, each with a name, as loaded (for tests).
#[cfg(test)]
pub(crate) fn sources() -> Vec<(String, &'static str)> {
    let mut out = vec![("common".to_string(), COMMON), ("job".to_string(), JOB)];
    out.extend(Op::ALL.iter().map(|op| (format!("{op:?}").to_lowercase(), op.body())));
    out
}

/// The compiled set of scripts (their SHA-1 digests and sources).
#[derive(Debug, Clone)]
pub(crate) struct Scripts {
    scripts: Vec<Script>,
    cluster: bool,
}

impl Scripts {
    pub(crate) fn new(cluster: bool) -> Self {
        let scripts =
            Op::ALL.iter().map(|op| Script::from_lua(format!("{COMMON}\n{}\n{}", op.helpers(), op.body()))).collect();
        Self { scripts, cluster }
    }

    fn script(&self, op: Op) -> &Script {
        let i = Op::ALL.iter().position(|o| *o == op).unwrap_or(0);
        &self.scripts[i]
    }

    /// Loads every script (on every primary of a cluster).
    pub(crate) async fn load_all(&self, client: &Client) -> Result<(), FredError> {
        for s in &self.scripts {
            self.load(client, s).await?;
        }
        Ok(())
    }

    async fn load(&self, client: &Client, s: &Script) -> Result<(), FredError> {
        let lua = s.lua().cloned().unwrap_or_default();
        if self.cluster {
            client.script_load_cluster::<Value, _>(lua).await?;
        } else {
            client.script_load::<Value, _>(lua).await?;
        }
        Ok(())
    }

    /// Calls a script by SHA on the queue's base key, reloading it once on `NOSCRIPT`.
    pub(crate) async fn call<R: FromValue>(
        &self,
        client: &Client,
        op: Op,
        base_key: &str,
        args: Vec<Value>,
    ) -> Result<R, FredError> {
        let s = self.script(op);
        match client.evalsha::<R, _, _, _>(s.sha1().clone(), base_key, args.clone()).await {
            Err(e) if e.details().contains("NOSCRIPT") => {
                tracing::info!(?op, "script missing on the server (restart or failover): reloading");
                self.load(client, s).await?;
                client.evalsha(s.sha1().clone(), base_key, args).await
            }
            other => other,
        }
    }
}
