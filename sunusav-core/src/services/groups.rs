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
        group.start_drawn(random_seed())?;
        tx.save_group(&group).await?;
        super::timers::schedule_deadline(&mut *tx, self.timers.is_some(), &group, self.now_ms()).await?;
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
    /// less is replaced).
    pub async fn issue_invoice(&self, id: GroupId, member: MemberId) -> Result<Invoice, ServiceError> {
        let group = self.store.group(id).await?.ok_or(ServiceError::NotFound("group"))?;
        group.check_can_invoice(member)?;
        // What the member owes: the contribution, and their fine when late.
        let owed = group.owed(member);
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
        if let Err(e) = group.check_can_invoice(member) {
            // Not recorded: it must not stay payable.
            money::cancel_at_node(&mut *tx, created.payment_hash).await?;
            tx.commit().await?;
            return Err(e.into());
        }
        if group.owed(member) != owed {
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

/// 32 bytes from the operating system's generator (through two version 4
/// UUIDs: 244 random bits, hashed to 32 bytes).
fn random_seed() -> DrawSeed {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(uuid::Uuid::new_v4().as_bytes());
    h.update(uuid::Uuid::new_v4().as_bytes());
    DrawSeed::from_bytes(h.finalize().into())
}
