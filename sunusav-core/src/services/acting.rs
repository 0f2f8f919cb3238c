//! The group API as one caller: each use case checks the caller against the
//! rules of [`access`](crate::domain::access) before it runs.
//!
//! [`Tontine::acting_as`] is what an adapter facing callers uses (the HTTP
//! group API does); the methods of [`Tontine`] itself are the trusted
//! surface, for code that has already decided (workers, an operator's
//! console, a host's own jobs).
//!
//! A rule is checked against the group as stored, read before the use case
//! runs: the facts the rules use (a group's members and organizer, a pot's
//! beneficiary for its cycle) never change once written, so the check cannot
//! be invalidated by the time the change runs under the group's lock. A
//! group that does not exist answers `NotFound` before any rule is checked.

use crate::domain::access::Caller;
use crate::domain::group::{Group, GroupSpec, Invoice};
use crate::domain::ids::{GroupId, MemberId};
use crate::domain::keys::IdempotencyKey;
use crate::domain::payout::PayoutDestination;
use crate::ports::PaymentAttempt;

use super::{AcceptedInvoice, GroupLedger, ServiceError, Tontine};

/// The group API on behalf of one caller ([`Tontine::acting_as`]).
#[derive(Clone, Copy, Debug)]
pub struct Acting<'a> {
    tontine: &'a Tontine,
    caller: Caller,
}

impl Tontine {
    /// The group API on behalf of `caller`: every use case is refused with
    /// [`ServiceError::Forbidden`] where the caller may not run it.
    pub const fn acting_as(&self, caller: Caller) -> Acting<'_> {
        Acting { tontine: self, caller }
    }
}

impl Acting<'_> {
    /// The caller.
    pub const fn caller(&self) -> Caller {
        self.caller
    }

    async fn group(&self, id: GroupId) -> Result<Group, ServiceError> {
        self.tontine.store.group(id).await?.ok_or(ServiceError::NotFound("group"))
    }

    /// [`Tontine::create_group`]; a member creates a group only as its
    /// organizer and one of its members.
    ///
    /// # Errors
    /// `Forbidden(CreateAsOrganizer)`, and those of [`Tontine::create_group`].
    pub async fn create_group(&self, spec: GroupSpec) -> Result<Group, ServiceError> {
        self.caller.may_create(&spec)?;
        self.tontine.create_group(spec).await
    }

    /// [`Tontine::start_group`], by the group's organizer or an operator.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden(OrganizerOnly)`, and those of [`Tontine::start_group`].
    pub async fn start_group(&self, id: GroupId) -> Result<Group, ServiceError> {
        self.caller.may_manage(&self.group(id).await?)?;
        self.tontine.start_group(id).await
    }

    /// [`Tontine::cancel_group`], by the group's organizer or an operator.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden(OrganizerOnly)`, and those of [`Tontine::cancel_group`].
    pub async fn cancel_group(&self, id: GroupId) -> Result<Group, ServiceError> {
        self.caller.may_manage(&self.group(id).await?)?;
        self.tontine.cancel_group(id).await
    }

    /// [`Tontine::issue_invoice`], by the member who will pay, for themselves.
    ///
    /// # Errors
    /// `Forbidden(SelfOnly)` (checked first: whether a group exists is not
    /// told to someone acting for another), and those of [`Tontine::issue_invoice`].
    pub async fn issue_invoice(&self, id: GroupId, member: MemberId) -> Result<Invoice, ServiceError> {
        self.caller.may_act_for(member)?;
        self.tontine.issue_invoice(id, member).await
    }

    /// [`Tontine::place_bid`], by the bidding member, for themselves.
    ///
    /// # Errors
    /// `Forbidden(SelfOnly)`, and those of [`Tontine::place_bid`].
    pub async fn place_bid(
        &self,
        id: GroupId,
        member: MemberId,
        payout: crate::domain::money::Msat,
    ) -> Result<crate::domain::auction::Bid, ServiceError> {
        self.caller.may_act_for(member)?;
        self.tontine.place_bid(id, member, payout).await
    }

    /// [`Tontine::group_view`], for the group's members and operators.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden(MembersOnly)`.
    pub async fn group_view(&self, id: GroupId) -> Result<(Group, Vec<PaymentAttempt>), ServiceError> {
        let group = self.group(id).await?;
        self.caller.may_read(&group)?;
        let attempts = self.tontine.store.payment_attempts(id).await?;
        Ok((group, attempts))
    }

    /// [`Tontine::group_ledger`], for the group's members and operators.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden(MembersOnly)`.
    pub async fn group_ledger(&self, id: GroupId) -> Result<GroupLedger, ServiceError> {
        self.caller.may_read(&self.group(id).await?)?;
        self.tontine.group_ledger(id).await
    }

    /// [`Tontine::set_payout_destination`], by the member it pays only.
    ///
    /// # Errors
    /// `Forbidden(SelfOnly)`, and those of [`Tontine::set_payout_destination`].
    pub async fn set_payout_destination(
        &self,
        member: MemberId,
        destination: Option<PayoutDestination>,
    ) -> Result<Vec<IdempotencyKey>, ServiceError> {
        self.caller.may_act_for(member)?;
        self.tontine.set_payout_destination(member, destination).await
    }

    /// [`Tontine::payout_destination`], for the member and operators.
    ///
    /// # Errors
    /// `Forbidden(SelfOnly)`.
    pub async fn payout_destination(&self, member: MemberId) -> Result<Option<PayoutDestination>, ServiceError> {
        self.caller.may_read_member(member)?;
        self.tontine.payout_destination(member).await
    }

    /// [`Tontine::submit_payout_invoice`], by the beneficiary of the
    /// group's current pot.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden(BeneficiaryOnly)` (also when the group has no
    /// current pot: before it starts), and those of
    /// [`Tontine::submit_payout_invoice`].
    pub async fn submit_payout_invoice(&self, id: GroupId, bolt11: &str) -> Result<AcceptedInvoice, ServiceError> {
        // Checked under the group's lock, on the cycle the invoice is
        // recorded for: a pot that moved on meanwhile is another member's.
        self.tontine.submit_payout_invoice_as(id, bolt11, Some(self.caller)).await
    }
}
