//! The demo/load driver: a group's whole life through a running server.
//!
//! Run with: `cargo run -p sunusav-examples --bin sunusav-demo -- --url http://127.0.0.1:3000 --secret <WEBHOOK_HMAC_SECRET>`
//!
//! Exits non-zero when an invariant breaks.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sunusav_examples::demo::{DemoConfig, run};

/// Drives a group's whole life through the HTTP API with signed webhooks.
#[derive(Parser)]
#[command(name = "sunusav-demo", version)]
struct Args {
    /// The server's base URL (repeat for several servers).
    #[arg(long = "url", default_value = "http://127.0.0.1:3000")]
    urls: Vec<String>,
    /// The server's webhook secret (`sha256=` scheme).
    #[arg(long, env = "WEBHOOK_HMAC_SECRET", hide_env_values = true)]
    secret: String,
    /// Members (and cycles).
    #[arg(long, default_value_t = 10)]
    members: usize,
    /// Concurrent webhook senders.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Extra deliveries per invoice (replays and re-signed copies).
    #[arg(long, default_value_t = 2)]
    duplicates: usize,
    /// Forged deliveries per cycle.
    #[arg(long, default_value_t = 5)]
    forgeries: usize,
    /// Seconds to wait for each cycle's payout.
    #[arg(long, default_value_t = 60)]
    cycle_timeout: u64,
    /// The keysend node members are paid at (default: the simulated node's payee).
    #[arg(long)]
    payee_node: Option<String>,
    /// The server's admin token: groups are created as the operator, and
    /// each member acts with a member token issued through it.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
    /// Skips the scheduled groups (a late member under each late policy and
    /// an auctioned cycle, on the server's clock: about ten seconds).
    #[arg(long)]
    no_scheduled: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let a = Args::parse();
    let config = DemoConfig {
        urls: a.urls,
        secret: a.secret,
        members: a.members,
        concurrency: a.concurrency,
        duplicates: a.duplicates,
        forgeries: a.forgeries,
        cycle_timeout: Duration::from_secs(a.cycle_timeout),
        payee_node: a.payee_node.unwrap_or_else(|| DemoConfig::default().payee_node),
        admin_token: Some(a.admin_token),
        scheduled: !a.no_scheduled,
        ..DemoConfig::default()
    };
    match run(&config).await {
        Ok(report) => {
            println!("{report}");
            if report.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => {
            eprintln!("demo failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
