//! A member's balance in a group: the money a node received that is not (or
//! no longer) a contribution, and what became of it.
//!
//! Every settled payment lands in exactly one place: a contribution, or a
//! credit entry on the payer's balance with its [`LedgerReason`], or both for
//! an overpayment (the contribution, and the rest as `overpaid`). A balance
//! leaves by a debit: applied to a later contribution, or released for a
//! refund by an operator. For every group, at all times:
//!
//! ```text
//! received from the node = contributions in force + balances + released refunds
//! ```
//!
//! where the contributions in force are those not turned back into balance
//! when the group was cancelled.
//!
//! Each entry has a unique key, so recording the same fact twice (a replay,
//! a retry after a crash) is a no-op: `settle:<payment hash>` for a
//! settlement's credit, `cancel:<payment hash>` for a contribution returned
//! by a cancellation, `apply:<group>:<cycle>:<member>` for a balance applied
//! to a contribution, `refund:<group>:<member>:<n>` for a release.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::ids::{GroupId, MemberId, PaymentHash};
use crate::domain::keys::IdempotencyKey;
use crate::domain::money::Msat;

/// Why an entry moved a member's balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LedgerReason {
    /// Credit: paid above the contribution.
    Overpaid,
    /// Credit: a second invoice of a cycle the member had already paid.
    DuplicateInvoice,
    /// Credit: paid after the invoice's cycle moved on, or after the group finished.
    Late,
    /// Credit: paid to a cancelled group, or a contribution of the cycle a
    /// cancellation interrupted.
    GroupCancelled,
    /// Credit: less than the contribution (a provider that reports a partial payment).
    Underpaid,
    /// Debit: applied to the member's contribution to a cycle.
    Applied,
    /// Debit: released for a refund by an operator (the refund is owed).
    RefundReleased,
    /// Credit: a member's share of an auctioned cycle's discount (the
    /// winner took less than the pot).
    Dividend,
    /// Deposit in: the deposit a member of a group under the `cover` policy
    /// paid with their first contribution (held, not spendable).
    Deposit,
    /// Deposit out: the member's held deposit covered their contribution to
    /// a cycle they were late for; the shortfall is their debt.
    Covered,
    /// Balance to deposit: the member's balance repaid their debt (refilled
    /// their deposit).
    DepositRefilled,
    /// Deposit to balance: the group ended (finished or cancelled) and the
    /// member's held deposit came back to their balance.
    DepositReturned,
}

str_enum!(LedgerReason {
    Overpaid => "overpaid",
    DuplicateInvoice => "duplicate_invoice",
    Late => "late",
    GroupCancelled => "group_cancelled",
    Underpaid => "underpaid",
    Applied => "applied",
    RefundReleased => "refund_released",
    Dividend => "dividend",
    Deposit => "deposit",
    Covered => "covered",
    DepositRefilled => "deposit_refilled",
    DepositReturned => "deposit_returned",
});

impl LedgerReason {
    /// Whether the entry takes money off the balance.
    pub const fn is_debit(self) -> bool {
        self.balance_sign() < 0
    }

    /// How the entry moves the member's spendable balance: +1, -1, or 0
    /// for an entry that moves only their held deposit.
    pub const fn balance_sign(self) -> i8 {
        match self {
            Self::Applied | Self::RefundReleased | Self::DepositRefilled => -1,
            Self::Deposit | Self::Covered => 0,
            _ => 1,
        }
    }

    /// How the entry moves the member's held deposit (the `cover` policy):
    /// +1, -1, or 0.
    pub const fn deposit_sign(self) -> i8 {
        match self {
            Self::Deposit | Self::DepositRefilled => 1,
            Self::Covered | Self::DepositReturned => -1,
            _ => 0,
        }
    }
}

/// One movement of a member's balance in a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Unique: the same fact recorded twice is one entry.
    pub key: IdempotencyKey,
    /// The group.
    pub group: GroupId,
    /// The member whose balance moves.
    pub member: MemberId,
    /// The group's cycle when it was recorded.
    pub cycle: u32,
    /// Why.
    pub reason: LedgerReason,
    /// How much (a debit when [`LedgerReason::is_debit`]).
    pub amount: Msat,
    /// The payment behind it: the settlement's, the returned contribution's,
    /// or the contribution a balance paid.
    pub payment_hash: Option<PaymentHash>,
}

impl LedgerEntry {
    /// The credit of a settlement that was not (all) counted as a contribution.
    pub fn settlement(
        group: GroupId,
        member: MemberId,
        cycle: u32,
        hash: PaymentHash,
        reason: LedgerReason,
        amount: Msat,
    ) -> Self {
        Self { key: key(&format!("settle:{hash}")), group, member, cycle, reason, amount, payment_hash: Some(hash) }
    }

    /// A contribution of the cycle a cancellation interrupted, back on the balance.
    pub fn cancelled(group: GroupId, member: MemberId, cycle: u32, hash: PaymentHash, amount: Msat) -> Self {
        Self {
            key: key(&format!("cancel:{hash}")),
            group,
            member,
            cycle,
            reason: LedgerReason::GroupCancelled,
            amount,
            payment_hash: Some(hash),
        }
    }

    /// A balance applied to the member's contribution to `cycle`; the
    /// contribution's payment hash is [`balance_payment_hash`].
    pub fn applied(group: GroupId, member: MemberId, cycle: u32, amount: Msat) -> Self {
        Self {
            key: key(&format!("apply:{group}:{cycle}:{member}")),
            group,
            member,
            cycle,
            reason: LedgerReason::Applied,
            amount,
            payment_hash: Some(balance_payment_hash(group, cycle, member)),
        }
    }

    /// A member's dividend of an auctioned cycle: `dividend:<group>:<cycle>:<member>`.
    pub fn dividend(group: GroupId, member: MemberId, cycle: u32, amount: Msat) -> Self {
        Self {
            key: key(&format!("dividend:{group}:{cycle}:{member}")),
            group,
            member,
            cycle,
            reason: LedgerReason::Dividend,
            amount,
            payment_hash: None,
        }
    }

    /// The deposit paid with the member's first contribution, by the
    /// payment `hash` (or a balance): `deposit:<hash>`.
    pub fn deposit(group: GroupId, member: MemberId, hash: PaymentHash, amount: Msat) -> Self {
        Self {
            key: key(&format!("deposit:{hash}")),
            group,
            member,
            cycle: 1,
            reason: LedgerReason::Deposit,
            amount,
            payment_hash: Some(hash),
        }
    }

    /// The held deposit covering the member's contribution to `cycle`
    /// (whose payment hash is [`cover_payment_hash`]): `cover:<group>:<cycle>:<member>`.
    pub fn covered(group: GroupId, member: MemberId, cycle: u32, amount: Msat) -> Self {
        Self {
            key: key(&format!("cover:{group}:{cycle}:{member}")),
            group,
            member,
            cycle,
            reason: LedgerReason::Covered,
            amount,
            payment_hash: Some(cover_payment_hash(group, cycle, member)),
        }
    }

    /// The `n`-th repayment of the member's debt from their balance:
    /// `refill:<group>:<member>:<n>`.
    pub fn refilled(group: GroupId, member: MemberId, cycle: u32, n: u64, amount: Msat) -> Self {
        Self {
            key: key(&format!("refill:{group}:{member}:{n}")),
            group,
            member,
            cycle,
            reason: LedgerReason::DepositRefilled,
            amount,
            payment_hash: None,
        }
    }

    /// The member's held deposit back on their balance when the group ended:
    /// `deposit_returned:<group>:<member>`.
    pub fn deposit_returned(group: GroupId, member: MemberId, cycle: u32, amount: Msat) -> Self {
        Self {
            key: key(&format!("deposit_returned:{group}:{member}")),
            group,
            member,
            cycle,
            reason: LedgerReason::DepositReturned,
            amount,
            payment_hash: None,
        }
    }

    /// The `n`-th release of a balance for a refund.
    pub fn released(group: GroupId, member: MemberId, cycle: u32, n: u64, amount: Msat) -> Self {
        Self {
            key: key(&format!("refund:{group}:{member}:{n}")),
            group,
            member,
            cycle,
            reason: LedgerReason::RefundReleased,
            amount,
            payment_hash: None,
        }
    }

    /// Whether it records money a node paid us (a settlement's credit), as
    /// opposed to a move of money already held.
    pub fn is_settlement(&self) -> bool {
        self.key.as_str().starts_with("settle:")
    }

    /// Whether it returns a contribution to its payer's balance (a cancellation).
    pub fn returns_contribution(&self) -> bool {
        self.key.as_str().starts_with("cancel:")
    }

    /// The signed effect on the balance, in msat.
    pub fn signed(&self) -> i128 {
        i128::from(self.amount.get()) * i128::from(self.reason.balance_sign())
    }

    /// The signed effect on the held deposit, in msat.
    pub fn deposit_signed(&self) -> i128 {
        i128::from(self.amount.get()) * i128::from(self.reason.deposit_sign())
    }

    /// Whether it records the deposit part of money a node paid us (not a
    /// deposit paid from a balance).
    pub fn is_paid_deposit(&self) -> bool {
        self.reason == LedgerReason::Deposit
            && self.payment_hash.is_some_and(|h| h != balance_payment_hash(self.group, 1, self.member))
    }
}

/// The key of a settlement's credit entry: whether a payment hash was settled
/// into the ledger.
pub fn settlement_key(hash: &PaymentHash) -> IdempotencyKey {
    key(&format!("settle:{hash}"))
}

/// The identity of a contribution paid from a balance: not a Lightning
/// payment, but unique per group, cycle and member, so that applying twice
/// is one contribution.
pub fn balance_payment_hash(group: GroupId, cycle: u32, member: MemberId) -> PaymentHash {
    let mut h = Sha256::new();
    h.update(format!("sunusav:balance-contribution:{group}:{cycle}:{member}").as_bytes());
    PaymentHash::from_bytes(h.finalize().into())
}

/// The identity of a contribution a held deposit paid (the `cover` policy):
/// not a Lightning payment, unique per group, cycle and member.
pub fn cover_payment_hash(group: GroupId, cycle: u32, member: MemberId) -> PaymentHash {
    let mut h = Sha256::new();
    h.update(format!("sunusav:cover-contribution:{group}:{cycle}:{member}").as_bytes());
    PaymentHash::from_bytes(h.finalize().into())
}

/// Each member's held deposit in a group (`cover` policy), from the entries.
pub fn deposits(entries: &[LedgerEntry]) -> std::collections::BTreeMap<MemberId, Msat> {
    let mut held: std::collections::BTreeMap<MemberId, i128> = std::collections::BTreeMap::new();
    for e in entries {
        *held.entry(e.member).or_default() += e.deposit_signed();
    }
    held.into_iter()
        .filter_map(|(m, v)| Some((m, Msat::new(u64::try_from(v).ok()?))))
        .filter(|(_, v)| !v.is_zero())
        .collect()
}

fn key(s: &str) -> IdempotencyKey {
    IdempotencyKey::parse(s).unwrap_or_else(|e| unreachable!("ledger keys are printable and short: {e}"))
}

/// A member's balance in a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// The group.
    pub group: GroupId,
    /// The member.
    pub member: MemberId,
    /// What the member holds there.
    pub amount: Msat,
}

/// The balance that `entries` leave, per member, in order of first entry.
///
/// # Errors
/// When a member's balance would go below zero (a corrupt ledger).
pub fn balances(entries: &[LedgerEntry]) -> Result<Vec<Balance>, &'static str> {
    let mut out: Vec<(GroupId, MemberId, i128)> = Vec::new();
    for e in entries {
        match out.iter_mut().find(|(g, m, _)| *g == e.group && *m == e.member) {
            Some((_, _, sum)) => *sum += e.signed(),
            None => out.push((e.group, e.member, e.signed())),
        }
    }
    out.into_iter()
        .map(|(group, member, sum)| {
            let amount = u64::try_from(sum).map_err(|_| "a balance below zero or over u64")?;
            Ok(Balance { group, member, amount: Msat::new(amount) })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_and_only_applied_and_released_are_debits() {
        for &r in LedgerReason::ALL {
            assert_eq!(LedgerReason::parse(r.as_str()), Some(r));
            assert_eq!(
                r.is_debit(),
                matches!(r, LedgerReason::Applied | LedgerReason::RefundReleased | LedgerReason::DepositRefilled)
            );
        }
    }

    #[test]
    fn the_same_fact_has_the_same_key_and_a_balance_contribution_a_stable_hash() {
        let (g, m, h) = (GroupId::random(), MemberId::random(), PaymentHash::from_bytes([3; 32]));
        let first = LedgerEntry::settlement(g, m, 1, h, LedgerReason::Overpaid, Msat::new(5));
        let second = LedgerEntry::settlement(g, m, 2, h, LedgerReason::Late, Msat::new(7));
        assert_eq!(first.key, second.key, "one settlement, one entry");
        assert_eq!(first.key, settlement_key(&h));
        assert_ne!(LedgerEntry::cancelled(g, m, 1, h, Msat::new(5)).key, first.key);
        assert_eq!(balance_payment_hash(g, 2, m), balance_payment_hash(g, 2, m));
        assert_ne!(balance_payment_hash(g, 2, m), balance_payment_hash(g, 3, m));
    }

    #[test]
    fn balances_sum_credits_less_debits_per_member() {
        let (g, m1, m2) = (GroupId::random(), MemberId::random(), MemberId::random());
        let h = PaymentHash::from_bytes([1; 32]);
        let entries = vec![
            LedgerEntry::settlement(g, m1, 1, h, LedgerReason::Overpaid, Msat::new(10)),
            LedgerEntry::settlement(g, m2, 1, PaymentHash::from_bytes([2; 32]), LedgerReason::Late, Msat::new(4)),
            LedgerEntry::applied(g, m1, 2, Msat::new(6)),
        ];
        let b = balances(&entries).expect("valid");
        assert_eq!(b[0].amount, Msat::new(4));
        assert_eq!(b[1].amount, Msat::new(4));
        let overdrawn = vec![LedgerEntry::applied(g, m1, 2, Msat::new(6))];
        assert!(balances(&overdrawn).is_err());
    }
}
