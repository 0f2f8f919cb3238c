//! The group API: create, start, cancel, issue contribution invoices, read state.

use crate::domain::draw::DrawSeed;
use crate::domain::group::{Group, GroupSpec, Invoice, InvoiceState};
use crate::domain::ids::{GroupId, MemberId};
use crate::ports::PaymentAttempt;

use super::{ServiceError, Tontine, money};

impl Tontine {
    /// Creates a group in `Forming`.
    pub async fn create_group(&self, spec: GroupSpec) -> Result<Group, ServiceError> {
        let group = Group::new(GroupId::random(), spec)?;
        let mut tx = self.store.begin().await?;
        tx.insert_group(&group).await?;
        tx.commit().await?;
        Ok(group)
    }

    /// Starts a group: cycle 1 opens. A group whose payout order is drawn
    /// draws it from a random seed the store keeps secret; its commitment
    /// is published from now on ([`Group::draw_proof`]).
    pub async fn start_group(&self, id: GroupId) -> Result<Group, ServiceError> {
        let mut tx = self.store.begin().await?;
        tx.lock_group(id).await?;
        let mut group = tx.load_group(id).await?.ok_or(ServiceError::NotFound("group"))?;
        group.start_drawn(DrawSeed::from_bytes(super::random_bytes()))?;
        group.open_cycle_at(self.now_ms());
        tx.save_group(&group).await?;
        super::timers::schedule_cycle_timers(&mut *tx, self.timers.is_some(), &group, self.now_ms()).await?;
        tx.commit().await?;
        Ok(group)
    }

    /// Cancels a group. The contributions of a cycle still collecting go
    /// back to their payers' balances (cancelling never strands money), and
    /// the cycle's open invoices are cancelled.
    pub async fn cancel_group(&self, id: GroupId) -> Result<Group, ServiceError> {
        let mut tx = self.store.begin().await?;
        tx.lock_group(id).await?;
        let mut group = tx.load_group(id).await?.ok_or(ServiceError::NotFound("group"))?;
        let before = group.clone();
        group.cancel()?;
        super::money::refund_cancelled_cycle(&mut *tx, &before).await?;
        super::money::return_deposits(&mut *tx, &group).await?;
        tx.save_group(&group).await?;
        tx.commit().await?;
        Ok(group)
    }

    /// Issues a member's contribution invoice for the group's current cycle,
    /// or returns the one still open and unexpired: one open invoice per
    /// group, cycle and member, however many requests race.
    ///
    /// The node is called outside any transaction; the invoice is recorded
    /// under the group's lock after checking the rules again. A request that
    /// lost the race returns the winner's invoice and cancels its own at the
    /// node (from the outbox); an expired invoice is replaced, and cancelled.
    /// The invoice asks what the member owes: the contribution, and the
    /// fine of a member late under the `fine` policy (an open invoice for
    /// less is replaced), and the deposit with the first contribution under
    /// the `cover` policy. Under `cover`, a member whose contribution their
    /// deposit covered is invoiced their debt (the payment lands on their
    /// balance, which repays it).
    pub async fn issue_invoice(&self, id: GroupId, member: MemberId) -> Result<Invoice, ServiceError> {
        let group = self.store.group(id).await?.ok_or(ServiceError::NotFound("group"))?;
        let entries = if is_cover(&group) { self.store.ledger(id).await? } else { Vec::new() };
        let owed = invoice_amount(&group, member, &entries)?;
        let open = self.store.open_invoice(id, group.cycle(), member).await?;
        if let Some(open) = open.filter(|i| i.is_live(self.now_ms()) && i.amount == owed) {
            return Ok(open);
        }
        let memo = format!("sunusav {id} cycle {}", group.cycle());
        let created = self.payments.create_invoice(owed, &memo, self.invoice_expiry).await?;
        let expiry_ms = u64::try_from(self.invoice_expiry.as_millis()).unwrap_or(u64::MAX);
        let mut tx = self.store.begin().await?;
        tx.lock_group(id).await?;
        let group = tx.load_group(id).await?.ok_or(ServiceError::NotFound("group"))?;
        let entries = if is_cover(&group) { tx.group_ledger(id).await? } else { Vec::new() };
        let now_owed = match invoice_amount(&group, member, &entries) {
            Ok(amount) => amount,
            Err(e) => {
                // Not recorded: it must not stay payable.
                money::cancel_at_node(&mut *tx, created.payment_hash).await?;
                tx.commit().await?;
                return Err(e);
            }
        };
        if now_owed != owed {
            // The deadline fined the member meanwhile: this invoice asks too little.
            money::cancel_at_node(&mut *tx, created.payment_hash).await?;
            tx.commit().await?;
            return Err(ServiceError::RetryLater("the amount owed changed while the invoice was made".into()));
        }
        let now = self.now_ms();
        if let Some(open) = tx.open_invoice(id, group.cycle(), member).await? {
            if open.is_live(now) && open.amount == owed {
                money::cancel_at_node(&mut *tx, created.payment_hash).await?;
                tx.commit().await?;
                return Ok(open);
            }
            tx.set_invoice_state(&open.payment_hash, InvoiceState::Cancelled).await?;
            money::cancel_at_node(&mut *tx, open.payment_hash).await?;
        }
        let invoice = Invoice {
            payment_hash: created.payment_hash,
            group: id,
            cycle: group.cycle(),
            member,
            amount: owed,
            bolt11: created.bolt11,
            expires_at_ms: now.saturating_add(expiry_ms),
            state: InvoiceState::Open,
        };
        tx.insert_invoice(&invoice).await?;
        tx.commit().await?;
        Ok(invoice)
    }

    /// Places (or replaces) `member`'s sealed bid on the current cycle's pot
    /// of an auctioned group: the lowest payout they accept. Bidding closes
    /// when the cycle is due.
    ///
    /// # Errors
    /// `NotFound`, and [`crate::domain::group::BidError`] with the rule's code.
    pub async fn place_bid(
        &self,
        id: GroupId,
        member: MemberId,
        payout: crate::domain::money::Msat,
    ) -> Result<crate::domain::auction::Bid, ServiceError> {
        let mut tx = self.store.begin().await?;
        tx.lock_group(id).await?;
        let mut group = tx.load_group(id).await?.ok_or(ServiceError::NotFound("group"))?;
        let bid = crate::domain::auction::Bid { member, payout, at_ms: self.now_ms() };
        group.place_bid(bid)?;
        tx.save_group(&group).await?;
        tx.commit().await?;
        Ok(bid)
    }

    /// A group and its payment attempts.
    pub async fn group_view(&self, id: GroupId) -> Result<(Group, Vec<PaymentAttempt>), ServiceError> {
        let group = self.store.group(id).await?.ok_or(ServiceError::NotFound("group"))?;
        let attempts = self.store.payment_attempts(id).await?;
        Ok((group, attempts))
    }
}

fn is_cover(group: &Group) -> bool {
    matches!(group.policy().late, crate::domain::rules::LatePolicy::Cover(_))
}

/// What to invoice `member`: what they owe for the current cycle; under the
/// `cover` policy, their debt once their contribution is paid.
fn invoice_amount(
    group: &Group,
    member: MemberId,
    entries: &[crate::domain::ledger::LedgerEntry],
) -> Result<crate::domain::money::Msat, ServiceError> {
    match group.check_can_invoice(member) {
        Ok(()) => Ok(group.owed(member)),
        // Paid (or everyone paid): a debt is still invoiced.
        Err(
            e @ (crate::domain::group::ContributionError::AlreadyContributed
            | crate::domain::group::ContributionError::CycleClosed(_)),
        ) if is_cover(group) => {
            let debt = money::debt_of(entries, member);
            if debt.is_zero() { Err(e.into()) } else { Ok(debt) }
        }
        Err(e) => Err(e.into()),
    }
}
