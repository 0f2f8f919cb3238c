//! The group API: create, start, cancel, issue contribution invoices, read state.

use crate::domain::group::{Group, GroupSpec, Invoice};
use crate::domain::ids::{GroupId, MemberId};
use crate::ports::PaymentAttempt;

use super::{ServiceError, Tontine};

impl Tontine {
    /// Creates a group in `Forming`.
    pub async fn create_group(&self, spec: GroupSpec) -> Result<Group, ServiceError> {
        let group = Group::new(GroupId::random(), spec)?;
        let mut tx = self.store.begin().await?;
        tx.insert_group(&group).await?;
        tx.commit().await?;
        Ok(group)
    }

    /// Starts a group: cycle 1 opens.
    pub async fn start_group(&self, id: GroupId) -> Result<Group, ServiceError> {
        self.change_group(id, Group::start).await
    }

    /// Cancels a group.
    pub async fn cancel_group(&self, id: GroupId) -> Result<Group, ServiceError> {
        self.change_group(id, Group::cancel).await
    }

    async fn change_group(
        &self,
        id: GroupId,
        change: impl FnOnce(&mut Group) -> Result<(), crate::domain::group::GroupError> + Send,
    ) -> Result<Group, ServiceError> {
        let mut tx = self.store.begin().await?;
        tx.lock_group(id).await?;
        let mut group = tx.load_group(id).await?.ok_or(ServiceError::NotFound("group"))?;
        change(&mut group)?;
        tx.save_group(&group).await?;
        tx.commit().await?;
        Ok(group)
    }

    /// Issues a member's contribution invoice for the group's current cycle.
    ///
    /// The node is called outside any transaction; the invoice is recorded under
    /// the group's lock after checking the rules again.
    pub async fn issue_invoice(&self, id: GroupId, member: MemberId) -> Result<Invoice, ServiceError> {
        let group = self.store.group(id).await?.ok_or(ServiceError::NotFound("group"))?;
        group.check_can_invoice(member)?;
        let memo = format!("sunusav {id} cycle {}", group.cycle());
        let created = self.payments.create_invoice(group.contribution(), &memo).await?;
        let mut tx = self.store.begin().await?;
        tx.lock_group(id).await?;
        let group = tx.load_group(id).await?.ok_or(ServiceError::NotFound("group"))?;
        group.check_can_invoice(member)?;
        let invoice = Invoice {
            payment_hash: created.payment_hash,
            group: id,
            cycle: group.cycle(),
            member,
            amount: group.contribution(),
            bolt11: created.bolt11,
        };
        tx.insert_invoice(&invoice).await?;
        tx.commit().await?;
        Ok(invoice)
    }

    /// A group and its payment attempts.
    pub async fn group_view(&self, id: GroupId) -> Result<(Group, Vec<PaymentAttempt>), ServiceError> {
        let group = self.store.group(id).await?.ok_or(ServiceError::NotFound("group"))?;
        let attempts = self.store.payment_attempts(id).await?;
        Ok((group, attempts))
    }
}
