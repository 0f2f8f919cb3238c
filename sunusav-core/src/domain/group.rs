//! The group aggregate and its pure rules.
//!
//! A group collects one contribution from every member per cycle; cycle `k` pays
//! the pot to the `k`-th member in payout order. Everything here is pure: no IO,
//! no clock. Every rule returns an outcome or a typed error and leaves the group
//! unchanged on error.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::auction::{AuctionError, AuctionResult, Bid, check_bid};
use crate::domain::draw::{DrawChain, DrawError, DrawProof, DrawSeed, remaining};
use crate::domain::ids::{GroupId, MemberId, PaymentHash};
use crate::domain::keys::IdempotencyKey;
use crate::domain::ledger::LedgerReason;
use crate::domain::money::{BPS_PER_WHOLE, Msat};
use crate::domain::rules::{FineTo, LatePolicy, PayoutOrder, Reminders, RulesError};
use crate::domain::schedule::Schedule;

/// The most members one group may have.
pub const MAX_MEMBERS: usize = 1_000;

/// The largest pot of one cycle, in msat: the most a signed 64-bit column
/// holds, so that every store keeps every amount a group can produce
/// (about 92 million bitcoin: no real group comes near).
pub const MAX_POT: u64 = u64::MAX >> 1;

/// Lifecycle of a group: `Forming → Active → Finished`, or `Cancelled`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupStatus {
    /// Created, not started: no invoice can be issued yet.
    Forming,
    /// Collecting and paying out cycle after cycle.
    Active,
    /// Every member has received the pot once.
    Finished,
    /// Stopped by an operator before it finished.
    Cancelled,
}

/// Status of the current cycle: `Collecting → Completing → PaidOut`, or `PayoutFailed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CycleStatus {
    /// Waiting for contributions.
    Collecting,
    /// Every member paid; the payout is due.
    Completing,
    /// The payout of the last cycle succeeded (the group is finished).
    PaidOut,
    /// The payout is dead (retries exhausted or a permanent failure): an operator acts.
    PayoutFailed,
}

str_enum!(GroupStatus { Forming => "forming", Active => "active", Finished => "finished", Cancelled => "cancelled" });
str_enum!(CycleStatus {
    Collecting => "collecting",
    Completing => "completing",
    PaidOut => "paid_out",
    PayoutFailed => "payout_failed",
});

/// What it takes to create a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSpec {
    /// What each member pays per cycle.
    pub contribution: Msat,
    /// The platform's fee on each pot, in basis points (0..=10,000).
    #[serde(default)]
    pub fee_bps: u16,
    /// Members in payout order: cycle `k` pays `members[k - 1]`.
    pub members: Vec<MemberId>,
    /// The rules the group chose (defaults when absent).
    #[serde(default)]
    pub policy: GroupPolicy,
    /// The member who organizes the group (starts and cancels it, with an
    /// operator), one of its members; none for a group only operators manage.
    #[serde(default)]
    pub organizer: Option<MemberId>,
    /// The group's calendar: when each cycle is due and its grace period
    /// ends; none for a group that runs at its members' pace.
    #[serde(default)]
    pub schedule: Option<Schedule>,
}

/// Rules a group chooses when it is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupPolicy {
    /// Whether a member's balance (an overpayment, a late or duplicate
    /// payment, ...) pays their next contribution as soon as it covers one.
    /// On by default; when off, balances wait for an operator to release
    /// them for refund.
    pub apply_balance: bool,
    /// What happens to a member who has not paid when a cycle's grace
    /// period ends (a scheduled group): `wait` by default.
    pub late: LatePolicy,
    /// When members who have not paid are reminded before a cycle is due
    /// (a scheduled group): none by default.
    pub reminders_ms: Reminders,
    /// How each cycle's beneficiary is chosen: the listed order by default.
    pub order: PayoutOrder,
}

impl Default for GroupPolicy {
    fn default() -> Self {
        Self { apply_balance: true, late: LatePolicy::Wait, reminders_ms: Reminders::NONE, order: PayoutOrder::Fixed }
    }
}

/// Why a group cannot be created or change state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// Fewer than two members.
    #[error("a group needs at least two members")]
    TooFewMembers,
    /// More than [`MAX_MEMBERS`].
    #[error("a group has at most {MAX_MEMBERS} members")]
    TooManyMembers,
    /// A member appears twice.
    #[error("member {0} appears twice")]
    DuplicateMember(MemberId),
    /// The contribution is zero.
    #[error("the contribution must be more than zero")]
    ZeroContribution,
    /// The fee is 100 % or more: the beneficiary would receive nothing.
    #[error("the fee is under 10000 basis points: the beneficiary must receive something")]
    FeeTooHigh,
    /// contribution × members is over [`MAX_POT`].
    #[error("the pot (contribution × members) is over {MAX_POT} msat")]
    PotOverflow,
    /// The transition is not allowed from the group's status.
    #[error("the group is {0:?}")]
    InvalidTransition(GroupStatus),
    /// The organizer is not one of the group's members.
    #[error("the organizer must be one of the group's members")]
    OrganizerNotMember,
    /// The late policy or the reminders cannot be used.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// A group whose order is drawn starts with a seed ([`Group::start_drawn`]).
    #[error("a group whose payout order is drawn needs a seed to start")]
    SeedRequired,
    /// The draw cannot be made (a corrupt seed or roster).
    #[error(transparent)]
    Draw(#[from] DrawError),
    /// Stored state is inconsistent (a corrupt row).
    #[error("inconsistent group state: {0}")]
    Corrupt(&'static str),
}

/// Why a bid is refused. The group is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BidError {
    /// The group's payout order is not an auction.
    #[error("the group's payout order is not auctioned")]
    NotAuctioned,
    /// The group is not active.
    #[error("the group is not active ({0:?})")]
    GroupNotActive(GroupStatus),
    /// The cycle is due (or its auction closed, or its pot is on its way).
    #[error("bidding on this cycle is closed")]
    BiddingClosed,
    /// The bid breaks the auction's rules.
    #[error(transparent)]
    Rule(#[from] AuctionError),
}

impl BidError {
    /// A stable machine-readable code.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::NotAuctioned => "not_auctioned",
            Self::GroupNotActive(_) => "group_not_active",
            Self::BiddingClosed => "bidding_closed",
            Self::Rule(e) => e.code(),
        }
    }
}

/// An invoice issued for one member's contribution to one cycle of one group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// The Lightning payment hash (the contribution's identity).
    pub payment_hash: PaymentHash,
    /// The group.
    pub group: GroupId,
    /// The cycle the contribution counts for.
    pub cycle: u32,
    /// The member who pays.
    pub member: MemberId,
    /// The amount asked.
    pub amount: Msat,
    /// The BOLT 11 payment request handed to the member.
    pub bolt11: String,
    /// When the node stops accepting payment of it (unix ms).
    pub expires_at_ms: u64,
    /// Open, settled or cancelled.
    pub state: InvoiceState,
}

/// Where an invoice stands. At most one invoice is open per group, cycle
/// and member: issuing again returns it while it is unexpired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceState {
    /// Payable (until it expires).
    Open,
    /// The node reported it paid.
    Settled,
    /// Replaced, expired, or its cycle closed or its group was cancelled:
    /// cancelled at the node through the outbox.
    Cancelled,
}

str_enum!(InvoiceState { Open => "open", Settled => "settled", Cancelled => "cancelled" });

impl Invoice {
    /// Open and not expired at `now_ms`: issuing again returns it.
    pub const fn is_live(&self, now_ms: u64) -> bool {
        matches!(self.state, InvoiceState::Open) && now_ms < self.expires_at_ms
    }
}

/// Why a contribution is refused. The group is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContributionError {
    /// The group is not active.
    #[error("the group is not active ({0:?})")]
    GroupNotActive(GroupStatus),
    /// The invoice names another group.
    #[error("the invoice belongs to another group")]
    WrongGroup,
    /// The member is not in the group.
    #[error("not a member of the group")]
    NotAMember,
    /// The invoice is for another cycle than the current one.
    #[error("the invoice is for cycle {got}, the group is in cycle {expected}")]
    WrongCycle {
        /// The current cycle.
        expected: u32,
        /// The invoice's cycle.
        got: u32,
    },
    /// The amount paid is not the contribution.
    #[error("paid {got}, the contribution is {expected}")]
    WrongAmount {
        /// The contribution.
        expected: Msat,
        /// What was paid.
        got: Msat,
    },
    /// The member already contributed to this cycle with another invoice.
    #[error("already contributed to this cycle with another invoice")]
    AlreadyContributed,
    /// The cycle is not collecting (its payout is due or failed).
    #[error("the cycle is not collecting ({0:?})")]
    CycleClosed(CycleStatus),
}

impl ContributionError {
    /// A stable machine-readable code.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::GroupNotActive(_) => "group_not_active",
            Self::WrongGroup => "wrong_group",
            Self::NotAMember => "not_a_member",
            Self::WrongCycle { .. } => "wrong_cycle",
            Self::WrongAmount { .. } => "wrong_amount",
            Self::AlreadyContributed => "already_contributed",
            Self::CycleClosed(_) => "cycle_closed",
        }
    }
}

/// The payout that a completed cycle owes: one per cycle, exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutDue {
    /// The group.
    pub group: GroupId,
    /// The completed cycle.
    pub cycle: u32,
    /// Who receives the pot: the `cycle`-th member in payout order.
    pub beneficiary: MemberId,
    /// The pot less the fee.
    pub amount: Msat,
    /// The platform's fee kept from the pot.
    pub fee: Msat,
    /// `payout:<group>:<cycle>`.
    pub key: IdempotencyKey,
    /// An auctioned cycle's dividends: the other members' shares of the
    /// discount, credited to their balances when the cycle completes.
    #[serde(default)]
    pub dividends: Vec<(MemberId, Msat)>,
}

/// The effect of a settled contribution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContributionOutcome {
    /// Recorded; the cycle still waits for others.
    Recorded,
    /// Recorded, and it was the last one: the payout is due.
    CycleComplete(PayoutDue),
    /// The same payment hash was already recorded: no effect.
    Replay,
}

/// Where a settled payment landed ([`Group::settle`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// Counted as the member's contribution to the current cycle; an amount
    /// paid above the contribution goes to the member's balance (`overpaid`).
    Contribution {
        /// What the contribution did to the cycle.
        outcome: ContributionOutcome,
        /// Paid above the contribution: credited to the balance.
        overpaid: Msat,
    },
    /// Not counted: the whole amount goes to the member's balance.
    Credit {
        /// Why.
        reason: LedgerReason,
        /// The amount paid.
        amount: Msat,
    },
}

/// The effect of a recorded payout success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayoutApplied {
    /// The next cycle opened.
    NextCycle(u32),
    /// That was the last cycle: the group is finished.
    Finished,
    /// This cycle's success was already recorded: no effect.
    AlreadyApplied,
}

/// A tontine group: the aggregate that the store loads under the group's lock.
#[derive(Clone, Debug)]
pub struct Group {
    id: GroupId,
    contribution: Msat,
    fee_bps: u16,
    members: Vec<MemberId>,
    status: GroupStatus,
    cycle: u32,
    cycle_status: CycleStatus,
    paid: BTreeMap<MemberId, PaymentHash>,
    policy: GroupPolicy,
    organizer: Option<MemberId>,
    schedule: Option<Schedule>,
    /// The members told late in the current cycle, each with the fine they
    /// owe on top of the contribution (zero under `wait`).
    late: BTreeMap<MemberId, Msat>,
    /// Beneficiaries in cycle order: the members for a fixed order; for a
    /// drawn one, computed from the draw when the group starts (empty
    /// before). Never shown past the current cycle.
    order: Vec<MemberId>,
    /// The draw's hash chain (its seed is secret), from the start of a
    /// group whose order is drawn.
    draw: Option<DrawChain>,
    /// The current cycle's sealed bids, the latest of each member (an
    /// auctioned order).
    bids: BTreeMap<MemberId, Bid>,
    /// When the current cycle opened (unix ms), as the service saw it: a
    /// cycle that opens after its calendar due time is due a grace period
    /// after it opens ([`Group::cycle_due_ms`]).
    opened_ms: Option<u64>,
}

impl PartialEq for Group {
    fn eq(&self, other: &Self) -> bool {
        // The draw is a function of its seed: equal orders and commitments
        // are equal draws.
        self.id == other.id
            && self.contribution == other.contribution
            && self.fee_bps == other.fee_bps
            && self.members == other.members
            && self.status == other.status
            && self.cycle == other.cycle
            && self.cycle_status == other.cycle_status
            && self.paid == other.paid
            && self.policy == other.policy
            && self.organizer == other.organizer
            && self.schedule == other.schedule
            && self.late == other.late
            && self.order == other.order
            && self.bids == other.bids
            && self.opened_ms == other.opened_ms
            && self.draw.as_ref().map(DrawChain::commitment) == other.draw.as_ref().map(DrawChain::commitment)
    }
}

impl Eq for Group {}

impl Group {
    /// A new group in `Forming`.
    pub fn new(id: GroupId, spec: GroupSpec) -> Result<Self, GroupError> {
        let n = spec.members.len();
        if n < 2 {
            return Err(GroupError::TooFewMembers);
        }
        if n > MAX_MEMBERS {
            return Err(GroupError::TooManyMembers);
        }
        let mut seen = std::collections::BTreeSet::new();
        for m in &spec.members {
            if !seen.insert(*m) {
                return Err(GroupError::DuplicateMember(*m));
            }
        }
        if spec.organizer.is_some_and(|o| !seen.contains(&o)) {
            return Err(GroupError::OrganizerNotMember);
        }
        if spec.contribution.is_zero() {
            return Err(GroupError::ZeroContribution);
        }
        if spec.fee_bps >= BPS_PER_WHOLE {
            return Err(GroupError::FeeTooHigh);
        }
        let pot = spec.contribution.checked_mul(n as u64).ok_or(GroupError::PotOverflow)?;
        if pot.get() > MAX_POT {
            return Err(GroupError::PotOverflow);
        }
        spec.policy.late.check()?;
        if matches!(spec.policy.late, LatePolicy::Cover(_)) && spec.policy.late.deposit() < spec.contribution {
            return Err(RulesError::DepositTooSmall.into());
        }
        let auctioned = matches!(spec.policy.order, PayoutOrder::Auction(_));
        if spec.schedule.is_none()
            && (spec.policy.late != LatePolicy::Wait || !spec.policy.reminders_ms.is_empty() || auctioned)
        {
            return Err(RulesError::NeedsSchedule.into());
        }
        // Every member fined: the pot and the fines still fit.
        let fines = spec.policy.late.fine(spec.contribution).checked_mul(n as u64).ok_or(GroupError::PotOverflow)?;
        let deposits = spec.policy.late.deposit().checked_mul(n as u64).ok_or(GroupError::PotOverflow)?;
        if pot.checked_add(fines).and_then(|p| p.checked_add(deposits)).is_none_or(|all| all.get() > MAX_POT) {
            return Err(GroupError::PotOverflow);
        }
        let order = match spec.policy.order {
            PayoutOrder::Fixed => spec.members.clone(),
            PayoutOrder::Draw | PayoutOrder::Auction(_) => Vec::new(),
        };
        Ok(Self {
            order,
            draw: None,
            bids: BTreeMap::new(),
            opened_ms: None,
            id,
            contribution: spec.contribution,
            fee_bps: spec.fee_bps,
            members: spec.members,
            policy: spec.policy,
            organizer: spec.organizer,
            schedule: spec.schedule,
            status: GroupStatus::Forming,
            cycle: 0,
            cycle_status: CycleStatus::Collecting,
            paid: BTreeMap::new(),
            late: BTreeMap::new(),
        })
    }

    /// Rebuilds a group from stored state, checking its invariants.
    #[allow(clippy::too_many_arguments)]
    pub fn restore(
        id: GroupId,
        spec: GroupSpec,
        status: GroupStatus,
        cycle: u32,
        cycle_status: CycleStatus,
        paid: BTreeMap<MemberId, PaymentHash>,
    ) -> Result<Self, GroupError> {
        let mut g = Self::new(id, spec)?;
        let n = g.cycle_count();
        let in_range = match status {
            GroupStatus::Forming => cycle == 0,
            GroupStatus::Active | GroupStatus::Finished => (1..=n).contains(&cycle),
            GroupStatus::Cancelled => cycle <= n,
        };
        if !in_range {
            return Err(GroupError::Corrupt("cycle out of range"));
        }
        if paid.keys().any(|m| !g.members.contains(m)) || paid.len() > g.members.len() {
            return Err(GroupError::Corrupt("contribution from a non-member"));
        }
        g.status = status;
        g.cycle = cycle;
        g.cycle_status = cycle_status;
        g.paid = paid;
        Ok(g)
    }

    /// Restores the draw of a started group whose order is drawn, from its
    /// stored seed.
    ///
    /// # Errors
    /// `Corrupt` for a seed on a group whose order is fixed, or none on a
    /// started group whose order is drawn.
    pub fn with_draw_seed(mut self, seed: Option<DrawSeed>) -> Result<Self, GroupError> {
        match (self.policy.order, seed) {
            (PayoutOrder::Fixed | PayoutOrder::Auction(_), None) => Ok(self),
            // Not started (forming, or cancelled before it started): no draw yet.
            (PayoutOrder::Draw, None) if self.cycle == 0 => Ok(self),
            (PayoutOrder::Draw, Some(seed)) if self.cycle > 0 => {
                self.set_draw(seed)?;
                Ok(self)
            }
            _ => Err(GroupError::Corrupt("a draw seed that does not fit the group's order")),
        }
    }

    /// Restores an auctioned group's winners so far (in cycle order) and
    /// the current cycle's bids, from stored state.
    ///
    /// # Errors
    /// `Corrupt` for winners or bids that do not fit the group.
    pub fn with_auction(mut self, winners: Vec<MemberId>, bids: Vec<Bid>) -> Result<Self, GroupError> {
        if !matches!(self.policy.order, PayoutOrder::Auction(_)) {
            return if winners.is_empty() && bids.is_empty() {
                Ok(self)
            } else {
                Err(GroupError::Corrupt("bids or auction winners on a group that is not auctioned"))
            };
        }
        let distinct: std::collections::BTreeSet<_> = winners.iter().collect();
        let cycle = usize::try_from(self.cycle).unwrap_or(usize::MAX);
        if distinct.len() != winners.len() || winners.len() > cycle || winners.iter().any(|w| !self.is_member(*w)) {
            return Err(GroupError::Corrupt("auction winners"));
        }
        if bids.iter().any(|b| !self.is_member(b.member)) {
            return Err(GroupError::Corrupt("a bid from a non-member"));
        }
        self.order = winners;
        self.bids = bids.into_iter().map(|b| (b.member, b)).collect();
        Ok(self)
    }

    fn set_draw(&mut self, seed: DrawSeed) -> Result<(), GroupError> {
        let chain = DrawChain::new(seed, self.members.len())?;
        let proof = chain.proof(&self.members, self.cycle_count())?;
        self.order = proof.reveals.into_iter().map(|r| r.beneficiary).collect();
        self.draw = Some(chain);
        Ok(())
    }

    /// Restores the members told late in the current cycle, with their
    /// fines, from stored state.
    ///
    /// # Errors
    /// `Corrupt` for a non-member, or a fine the group's policy cannot give.
    pub fn with_late(mut self, late: BTreeMap<MemberId, Msat>) -> Result<Self, GroupError> {
        let fine = self.policy.late.fine(self.contribution);
        if late.iter().any(|(m, f)| !self.is_member(*m) || (*f != fine && !f.is_zero())) {
            return Err(GroupError::Corrupt("a late member's fine"));
        }
        self.late = late;
        Ok(self)
    }

    /// The group's id.
    pub const fn id(&self) -> GroupId {
        self.id
    }
    /// The member who organizes the group, if one does.
    pub const fn organizer(&self) -> Option<MemberId> {
        self.organizer
    }
    /// The group's calendar, if it has one.
    pub const fn schedule(&self) -> Option<Schedule> {
        self.schedule
    }
    /// When the current cycle is due (unix ms): none without a schedule or
    /// before the group starts. It is the calendar's due time, unless the
    /// cycle opened after it (the previous cycle's payout came late, or the
    /// group started late): then it is due a grace period after it opened,
    /// so that its members (and an auction's bidders) always get at least
    /// the group's grace period before the due time and another before
    /// they are late.
    pub fn cycle_due_ms(&self) -> Option<u64> {
        let calendar = self.schedule?.due_ms(self.cycle)?;
        match self.opened_ms {
            Some(opened) if opened > calendar => opened.checked_add(self.schedule?.grace_ms()),
            _ => Some(calendar),
        }
    }
    /// When the current cycle's grace period ends (unix ms): a grace period
    /// after its due time.
    pub fn cycle_grace_end_ms(&self) -> Option<u64> {
        self.cycle_due_ms()?.checked_add(self.schedule?.grace_ms())
    }
    /// When the current cycle opened (unix ms), if recorded.
    pub const fn cycle_opened_ms(&self) -> Option<u64> {
        self.opened_ms
    }
    /// Records when the current cycle opened (the service's clock, right
    /// after [`Group::start_drawn`] or a payout that opened the next cycle).
    pub const fn open_cycle_at(&mut self, now_ms: u64) {
        self.opened_ms = Some(now_ms);
    }
    /// Restores when the current cycle opened, from stored state.
    #[must_use]
    pub const fn with_cycle_opened(mut self, opened_ms: Option<u64>) -> Self {
        self.opened_ms = opened_ms;
        self
    }
    /// What each member pays per cycle.
    pub const fn contribution(&self) -> Msat {
        self.contribution
    }
    /// The fee in basis points.
    pub const fn fee_bps(&self) -> u16 {
        self.fee_bps
    }
    /// The members, as listed when the group was created: the payout
    /// order when it is fixed.
    pub fn members(&self) -> &[MemberId] {
        &self.members
    }
    /// The beneficiaries of cycles 1 to the current one, in order (the
    /// later ones of a drawn order are not known yet; the fixed order's are
    /// [`Group::members`]).
    pub fn payout_order(&self) -> &[MemberId] {
        let known = usize::try_from(self.cycle).unwrap_or(usize::MAX).min(self.order.len());
        &self.order[..known]
    }
    /// The draw's proof through the current cycle (the commitment alone
    /// before cycle 1): `None` when the order is fixed or not drawn yet.
    pub fn draw_proof(&self) -> Option<DrawProof> {
        self.draw.as_ref()?.proof(&self.members, self.cycle).ok()
    }
    /// The secret seed of the draw, for the store to keep; `None` when the
    /// order is fixed or not drawn yet. Never shown to anyone.
    pub fn draw_seed(&self) -> Option<&DrawSeed> {
        self.draw.as_ref().map(DrawChain::seed)
    }
    /// The current cycle's sealed bids (an auctioned order), for the store:
    /// never shown to members before the close.
    pub fn bids(&self) -> impl Iterator<Item = &Bid> {
        self.bids.values()
    }
    /// Whether the current cycle's auction takes bids: an auctioned group,
    /// active, its cycle collecting and its winner not chosen yet.
    pub fn auction_open(&self) -> bool {
        matches!(self.policy.order, PayoutOrder::Auction(_))
            && self.status == GroupStatus::Active
            && self.cycle_status == CycleStatus::Collecting
            && self.order.len() < usize::try_from(self.cycle).unwrap_or(0)
    }
    /// The pot the current cycle's auction is for: the contributions less
    /// the platform's fee (fines to the pot come on top of the winner's bid).
    pub fn auction_pot(&self) -> Msat {
        let pot = self.contribution.checked_mul(self.members.len() as u64).unwrap_or(Msat::ZERO);
        let fee = pot.basis_points(self.fee_bps).unwrap_or(Msat::ZERO);
        pot.checked_sub(fee).unwrap_or(Msat::ZERO)
    }
    /// The members who have not received the pot before the current cycle.
    pub fn eligible(&self) -> Vec<MemberId> {
        let before = usize::try_from(self.cycle.saturating_sub(1)).unwrap_or(0).min(self.order.len());
        remaining(&self.members, &self.order[..before])
    }
    /// The result of the current cycle's auction, once closed (recomputed
    /// from the stored bids: the close is a pure function of them).
    pub fn auction_result(&self) -> Option<AuctionResult> {
        let PayoutOrder::Auction(rules) = self.policy.order else { return None };
        if self.order.len() < usize::try_from(self.cycle).ok()? {
            return None;
        }
        let bids: Vec<Bid> = self.bids.values().copied().collect();
        crate::domain::auction::close(rules, self.auction_pot(), &self.members, &self.eligible(), &bids).ok()
    }

    /// Places (or replaces) `bid` on the current cycle's pot: the bidder
    /// has not received the pot, the bid is within the rules, and bidding
    /// is open (before the cycle is due, and before the close).
    ///
    /// # Errors
    /// [`BidError`] with the rule's code; the group is unchanged.
    pub fn place_bid(&mut self, bid: Bid) -> Result<(), BidError> {
        let PayoutOrder::Auction(rules) = self.policy.order else { return Err(BidError::NotAuctioned) };
        if self.status != GroupStatus::Active {
            return Err(BidError::GroupNotActive(self.status));
        }
        let due = self.cycle_due_ms().unwrap_or(0);
        if !self.auction_open() || bid.at_ms >= due {
            return Err(BidError::BiddingClosed);
        }
        check_bid(rules, self.auction_pot(), &self.eligible(), &bid)?;
        self.bids.insert(bid.member, bid);
        Ok(())
    }

    /// Closes the current cycle's auction (its due time came): the winner
    /// becomes the cycle's beneficiary. Returns the payout due when every
    /// member has paid already (the cycle completes now); `None` when the
    /// auction was closed before or the cycle still collects.
    ///
    /// # Errors
    /// `InvalidTransition` when the group does not auction, or is not active.
    pub fn close_auction(&mut self) -> Result<Option<PayoutDue>, GroupError> {
        let PayoutOrder::Auction(rules) = self.policy.order else {
            return Err(GroupError::InvalidTransition(self.status));
        };
        if !self.auction_open() {
            return Ok(None);
        }
        let bids: Vec<Bid> = self.bids.values().copied().collect();
        let result = crate::domain::auction::close(rules, self.auction_pot(), &self.members, &self.eligible(), &bids)
            .map_err(|_| GroupError::Corrupt("a stored bid the rules refuse"))?;
        self.order.push(result.winner);
        if self.paid.len() < self.members.len() {
            return Ok(None);
        }
        self.cycle_status = CycleStatus::Completing;
        Ok(self.payout_due())
    }
    /// The group's status.
    pub const fn status(&self) -> GroupStatus {
        self.status
    }
    /// The current cycle (0 while forming, then 1..=N).
    pub const fn cycle(&self) -> u32 {
        self.cycle
    }
    /// The current cycle's status.
    pub const fn cycle_status(&self) -> CycleStatus {
        self.cycle_status
    }
    /// Contributions recorded for the current cycle.
    pub fn paid(&self) -> &BTreeMap<MemberId, PaymentHash> {
        &self.paid
    }
    /// The members told late in the current cycle, with the fine each owes
    /// (zero under `wait`).
    pub fn late(&self) -> &BTreeMap<MemberId, Msat> {
        &self.late
    }
    /// What `member` owes for the current cycle: the contribution, and a
    /// fine when they were late under the `fine` policy.
    pub fn owed(&self, member: MemberId) -> Msat {
        let fine = self.late.get(&member).copied().unwrap_or(Msat::ZERO);
        let owed = self.contribution.checked_add(fine).unwrap_or(self.contribution);
        owed.checked_add(self.deposit_due()).unwrap_or(owed)
    }
    /// The deposit asked with each member's contribution to the current
    /// cycle: the `cover` policy's, in cycle 1; zero otherwise.
    pub fn deposit_due(&self) -> Msat {
        if self.cycle == 1 { self.policy.late.deposit() } else { Msat::ZERO }
    }
    /// The spec this group was created from.
    pub fn spec(&self) -> GroupSpec {
        GroupSpec {
            contribution: self.contribution,
            fee_bps: self.fee_bps,
            members: self.members.clone(),
            policy: self.policy,
            organizer: self.organizer,
            schedule: self.schedule,
        }
    }
    /// The rules the group chose.
    pub const fn policy(&self) -> GroupPolicy {
        self.policy
    }
    /// Number of cycles: one per member.
    pub fn cycle_count(&self) -> u32 {
        u32::try_from(self.members.len()).unwrap_or(u32::MAX)
    }
    /// Whether `m` is a member.
    pub fn is_member(&self, m: MemberId) -> bool {
        self.members.contains(&m)
    }

    /// The beneficiary of the current cycle, when there is one.
    pub fn beneficiary(&self) -> Option<MemberId> {
        let idx = usize::try_from(self.cycle.checked_sub(1)?).ok()?;
        self.order.get(idx).copied()
    }

    /// The pot of the current cycle less the fee, and the fee. The fines
    /// of the cycle's late members go to the pot or to the fee, as the
    /// group's late policy says (a fine is paid with its contribution, so a
    /// completed cycle has them all).
    pub fn payout_amounts(&self) -> (Msat, Msat) {
        let pot = self.contribution.checked_mul(self.members.len() as u64).unwrap_or(Msat::ZERO);
        let fee = pot.basis_points(self.fee_bps).unwrap_or(Msat::ZERO);
        let fines = self.late.values().fold(Msat::ZERO, |sum, f| sum.checked_add(*f).unwrap_or(sum));
        let mut net = pot.checked_sub(fee).unwrap_or(Msat::ZERO);
        let mut fee = fee;
        if let Some(won) = self.auction_result() {
            // The winner's bid; the commission is the organizer's, kept with
            // the fee; the dividends go to the other members' balances.
            net = won.payout;
            fee = fee.checked_add(won.commission).unwrap_or(fee);
        }
        match self.policy.late.fines_to() {
            Some(FineTo::Pot) => (net.checked_add(fines).unwrap_or(net), fee),
            Some(FineTo::Organizer) => (net, fee.checked_add(fines).unwrap_or(fee)),
            None => (net, fee),
        }
    }

    /// The current cycle's grace period ended at `grace_end_ms` (`now`, as
    /// the deadline's timer saw it): every member who has not paid is late,
    /// and under the `fine` policy owes the fine on top of the contribution.
    /// Returns the members newly told late, each with their fine; a member
    /// already told is not told again (a deadline that fires twice does
    /// nothing more). Nothing happens unless the cycle is collecting.
    pub fn mark_late(&mut self) -> Vec<(MemberId, Msat)> {
        if self.status != GroupStatus::Active || self.cycle_status != CycleStatus::Collecting {
            return Vec::new();
        }
        let fine = self.policy.late.fine(self.contribution);
        let mut told = Vec::new();
        for m in &self.members {
            if !self.paid.contains_key(m) && !self.late.contains_key(m) {
                self.late.insert(*m, fine);
                told.push((*m, fine));
            }
        }
        told
    }

    /// `Forming → Active`, opening cycle 1, for a group whose order is
    /// fixed.
    ///
    /// # Errors
    /// `InvalidTransition` unless forming; `SeedRequired` when the order is drawn.
    pub fn start(&mut self) -> Result<(), GroupError> {
        if self.status != GroupStatus::Forming {
            return Err(GroupError::InvalidTransition(self.status));
        }
        if self.policy.order == PayoutOrder::Draw {
            return Err(GroupError::SeedRequired);
        }
        self.open_first_cycle();
        Ok(())
    }

    /// `Forming → Active`, opening cycle 1; when the order is drawn, the
    /// draw is made from `seed` (a fixed order ignores it). The caller
    /// draws the seed at random and the store keeps it secret.
    ///
    /// # Errors
    /// `InvalidTransition` unless forming.
    pub fn start_drawn(&mut self, seed: DrawSeed) -> Result<(), GroupError> {
        if self.status != GroupStatus::Forming {
            return Err(GroupError::InvalidTransition(self.status));
        }
        if self.policy.order == PayoutOrder::Draw {
            self.set_draw(seed)?;
        }
        self.open_first_cycle();
        Ok(())
    }

    fn open_first_cycle(&mut self) {
        self.status = GroupStatus::Active;
        self.cycle = 1;
        self.cycle_status = CycleStatus::Collecting;
    }

    /// `Forming | Active → Cancelled`.
    pub fn cancel(&mut self) -> Result<(), GroupError> {
        match self.status {
            GroupStatus::Forming | GroupStatus::Active => {
                self.status = GroupStatus::Cancelled;
                Ok(())
            }
            s => Err(GroupError::InvalidTransition(s)),
        }
    }

    /// Checks that `member` may be issued an invoice for the current cycle.
    pub fn check_can_invoice(&self, member: MemberId) -> Result<(), ContributionError> {
        if self.status != GroupStatus::Active {
            return Err(ContributionError::GroupNotActive(self.status));
        }
        if !self.is_member(member) {
            return Err(ContributionError::NotAMember);
        }
        if self.cycle_status != CycleStatus::Collecting {
            return Err(ContributionError::CycleClosed(self.cycle_status));
        }
        if self.paid.contains_key(&member) {
            return Err(ContributionError::AlreadyContributed);
        }
        Ok(())
    }

    /// Records the settled payment of `invoice` for `paid` millisatoshis.
    ///
    /// The same payment hash twice is a [`ContributionOutcome::Replay`] with no
    /// effect. The last contribution of a cycle yields exactly one [`PayoutDue`].
    /// Replays of earlier cycles' hashes are detected by the store, which keeps
    /// every contribution (the aggregate only holds the current cycle's).
    pub fn record_contribution(
        &mut self,
        invoice: &Invoice,
        paid: Msat,
    ) -> Result<ContributionOutcome, ContributionError> {
        if invoice.group != self.id {
            return Err(ContributionError::WrongGroup);
        }
        if invoice.cycle == self.cycle && self.paid.get(&invoice.member) == Some(&invoice.payment_hash) {
            return Ok(ContributionOutcome::Replay);
        }
        if self.status != GroupStatus::Active {
            return Err(ContributionError::GroupNotActive(self.status));
        }
        if !self.is_member(invoice.member) {
            return Err(ContributionError::NotAMember);
        }
        if invoice.cycle != self.cycle {
            return Err(ContributionError::WrongCycle { expected: self.cycle, got: invoice.cycle });
        }
        if self.paid.contains_key(&invoice.member) {
            return Err(ContributionError::AlreadyContributed);
        }
        if self.cycle_status != CycleStatus::Collecting {
            return Err(ContributionError::CycleClosed(self.cycle_status));
        }
        let owed = self.owed(invoice.member);
        if paid != owed || invoice.amount != owed {
            return Err(ContributionError::WrongAmount { expected: owed, got: paid });
        }
        self.paid.insert(invoice.member, invoice.payment_hash);
        // An auctioned cycle completes at its close when everyone paid before it.
        if self.paid.len() < self.members.len() || self.beneficiary().is_none() {
            return Ok(ContributionOutcome::Recorded);
        }
        self.cycle_status = CycleStatus::Completing;
        Ok(ContributionOutcome::CycleComplete(
            self.payout_due().ok_or(ContributionError::CycleClosed(self.cycle_status))?,
        ))
    }

    /// Decides where a settled payment of `invoice` for `paid` lands: in a
    /// contribution (recorded here), or on the member's balance in the group
    /// with its reason, or both (the contribution part of an overpayment, the
    /// rest on the balance). Nothing a node reports is dropped.
    ///
    /// The caller has checked that the payment hash was never settled before
    /// (the store keeps every settlement).
    ///
    /// # Errors
    /// `WrongGroup` or `NotAMember` for an invoice that cannot be this
    /// group's (a corrupt store): nothing is decided.
    pub fn settle(&mut self, invoice: &Invoice, paid: Msat) -> Result<Settlement, ContributionError> {
        if invoice.group != self.id {
            return Err(ContributionError::WrongGroup);
        }
        if !self.is_member(invoice.member) {
            return Err(ContributionError::NotAMember);
        }
        let credit = |reason| Ok(Settlement::Credit { reason, amount: paid });
        match self.status {
            GroupStatus::Active => {}
            GroupStatus::Cancelled => return credit(LedgerReason::GroupCancelled),
            GroupStatus::Forming | GroupStatus::Finished => return credit(LedgerReason::Late),
        }
        if invoice.cycle != self.cycle {
            return credit(LedgerReason::Late);
        }
        if self.paid.contains_key(&invoice.member) {
            return credit(LedgerReason::DuplicateInvoice);
        }
        if self.cycle_status != CycleStatus::Collecting {
            // Every member paid this cycle already.
            return credit(LedgerReason::DuplicateInvoice);
        }
        // A late member under the `fine` policy owes the fine too: an
        // invoice issued before the deadline no longer covers the cycle.
        let owed = self.owed(invoice.member);
        if paid < owed {
            return credit(LedgerReason::Underpaid);
        }
        let overpaid = paid.checked_sub(owed).unwrap_or(Msat::ZERO);
        let counted = Invoice { amount: owed, ..invoice.clone() };
        let outcome = self.record_contribution(&counted, owed)?;
        Ok(Settlement::Contribution { outcome, overpaid })
    }

    /// Whether `member` still owes the current cycle and it collects: a
    /// balance may be applied to it.
    pub fn owes(&self, member: MemberId) -> bool {
        self.status == GroupStatus::Active
            && self.cycle_status == CycleStatus::Collecting
            && self.is_member(member)
            && !self.paid.contains_key(&member)
    }

    /// The payout the current cycle owes, when it is `Completing`.
    pub fn payout_due(&self) -> Option<PayoutDue> {
        if self.cycle_status != CycleStatus::Completing {
            return None;
        }
        let (amount, fee) = self.payout_amounts();
        Some(PayoutDue {
            group: self.id,
            cycle: self.cycle,
            beneficiary: self.beneficiary()?,
            amount,
            fee,
            key: IdempotencyKey::payout(self.id, self.cycle),
            dividends: self.auction_result().map(|r| r.dividends).unwrap_or_default(),
        })
    }

    /// Records that the payout of `cycle` succeeded: opens the next cycle or finishes.
    ///
    /// Idempotent: a cycle already paid answers [`PayoutApplied::AlreadyApplied`].
    pub fn record_payout_success(&mut self, cycle: u32) -> Result<PayoutApplied, GroupError> {
        if cycle < self.cycle || (cycle == self.cycle && self.cycle_status == CycleStatus::PaidOut) {
            return Ok(PayoutApplied::AlreadyApplied);
        }
        if cycle != self.cycle
            || !matches!(self.cycle_status, CycleStatus::Completing | CycleStatus::PayoutFailed)
            || !matches!(self.status, GroupStatus::Active | GroupStatus::Cancelled)
        {
            return Err(GroupError::InvalidTransition(self.status));
        }
        // A payout that already left the node is recorded even on a cancelled group.
        if self.cycle >= self.cycle_count() {
            self.cycle_status = CycleStatus::PaidOut;
            if self.status == GroupStatus::Active {
                self.status = GroupStatus::Finished;
            }
            return Ok(PayoutApplied::Finished);
        }
        self.cycle += 1;
        self.cycle_status = CycleStatus::Collecting;
        self.paid.clear();
        self.late.clear();
        self.bids.clear();
        self.opened_ms = None;
        Ok(PayoutApplied::NextCycle(self.cycle))
    }

    /// Records that the payout of `cycle` is dead: `Completing → PayoutFailed`.
    pub fn record_payout_failure(&mut self, cycle: u32) -> Result<(), GroupError> {
        if cycle != self.cycle {
            return Err(GroupError::InvalidTransition(self.status));
        }
        match self.cycle_status {
            CycleStatus::Completing | CycleStatus::PayoutFailed => {
                self.cycle_status = CycleStatus::PayoutFailed;
                Ok(())
            }
            _ => Err(GroupError::InvalidTransition(self.status)),
        }
    }

    /// An operator retries a failed payout: `PayoutFailed → Completing`.
    pub fn retry_payout(&mut self) -> Result<PayoutDue, GroupError> {
        if self.cycle_status != CycleStatus::PayoutFailed {
            return Err(GroupError::InvalidTransition(self.status));
        }
        self.cycle_status = CycleStatus::Completing;
        self.payout_due().ok_or(GroupError::Corrupt("no beneficiary"))
    }
}
