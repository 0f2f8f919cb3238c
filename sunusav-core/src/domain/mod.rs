//! The domain: pure types and rules, no IO and no clock.
//!
//! - [`access`]: who may do what: the caller (operator or member) and the group API's rules.
//! - [`money`]: [`Msat`](money::Msat), millisatoshis with checked arithmetic.
//! - [`ids`]: group, member and payment-hash identifiers.
//! - [`keys`]: idempotency keys (job ids, attempt keys) and lock keys.
//! - [`group`]: the group aggregate and its contribution and payout rules.
//! - [`attempt`]: a payout's payment attempt and its lifecycle.
//! - [`ledger`]: members' balances: money received that is not a contribution.
//! - [`outcome`]: what became of a webhook delivery.
//! - [`delivery`]: the body digest that tells a replayed delivery from a conflicting one.
//! - [`payout`]: payout destinations, BOLT 11 invoices, keysend preimages, fee and time limits.
//! - [`schedule`]: a group's calendar: due times, grace periods, calendar months.
//! - [`rules`]: a scheduled group's rules: the late policy (wait or a fine) and reminders.
//! - [`draw`]: a drawn payout order that members can check: a commit / reveal hash chain.
//! - [`auction`]: a sealed-bid auction of a cycle's pot, its winner and the dividends.

/// Implements `as_str` and `parse` for a fieldless enum from one table of
/// stable names, so that the name of each variant is written once.
macro_rules! str_enum {
    ($ty:ty { $($variant:ident => $s:literal),* $(,)? }) => {
        impl $ty {
            /// The stable lower-case name (the database and API value).
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $s),* }
            }

            /// Parses the stable name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$variant),)* _ => None }
            }

            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod access;
pub mod attempt;
pub mod auction;
pub mod delivery;
pub mod draw;
pub mod group;
pub mod ids;
pub mod keys;
pub mod ledger;
pub mod money;
pub mod outcome;
pub mod payout;
pub mod rules;
pub mod schedule;
