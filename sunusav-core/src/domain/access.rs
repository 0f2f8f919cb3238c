//! Who may do what: the caller's identity and the group API's rules.
//!
//! The rules are domain rules, decided here from the group and the caller,
//! with no knowledge of how the caller proved who they are (an adapter's
//! business: bearer tokens, sessions, mTLS…):
//!
//! | action | allowed to |
//! | --- | --- |
//! | create a group | an operator (naming any organizer among the members, or none); a member, as the group's organizer and one of its members |
//! | start, cancel a group | its organizer, an operator |
//! | read a group, its ledger | its members, an operator |
//! | issue a contribution invoice | the member who will pay it, for themselves only |
//! | set, clear a payout destination | the member it pays, for themselves only |
//! | read a payout destination | the member it pays, an operator |
//! | submit the invoice a pot is paid to | the beneficiary of that pot |
//!
//! An operator never acts as a member: money a member pays or receives is
//! asked for, or sent where, only by that member.

use serde::{Deserialize, Serialize};

use crate::domain::group::{Group, GroupSpec};
use crate::domain::ids::MemberId;

/// The caller of a use case, as an adapter authenticated them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "role", content = "member", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Caller {
    /// The platform's operator: manages and reads every group.
    Operator,
    /// A member, acting for themselves.
    Member(MemberId),
}

/// Why a caller was refused: a rule of the table in the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    /// Start or cancel by someone who is neither the organizer nor an operator.
    #[error("only the group's organizer or an operator may do this")]
    OrganizerOnly,
    /// A read of a group by someone who is neither a member nor an operator.
    #[error("only the group's members and operators may read it")]
    MembersOnly,
    /// An action for a member by someone else (an operator included).
    #[error("a member's invoices, bids and payout destination are theirs alone")]
    SelfOnly,
    /// The invoice of a pot submitted by someone other than its beneficiary.
    #[error("only the member this pot pays may submit its invoice")]
    BeneficiaryOnly,
    /// A member creating a group they would not organize and belong to.
    #[error("a member creates a group only as its organizer and one of its members")]
    CreateAsOrganizer,
}

impl Denied {
    /// The stable code (an HTTP adapter answers 403 with it).
    pub const fn code(self) -> &'static str {
        match self {
            Self::OrganizerOnly => "organizer_only",
            Self::MembersOnly => "members_only",
            Self::SelfOnly => "self_only",
            Self::BeneficiaryOnly => "beneficiary_only",
            Self::CreateAsOrganizer => "create_as_organizer",
        }
    }
}

impl Caller {
    /// Whether this caller may create a group from `spec`.
    ///
    /// # Errors
    /// [`Denied::CreateAsOrganizer`] for a member who is not the spec's
    /// organizer or not among its members.
    pub fn may_create(self, spec: &GroupSpec) -> Result<(), Denied> {
        match self {
            Self::Operator => Ok(()),
            Self::Member(m) if spec.organizer == Some(m) && spec.members.contains(&m) => Ok(()),
            Self::Member(_) => Err(Denied::CreateAsOrganizer),
        }
    }

    /// Whether this caller may start or cancel `group`.
    ///
    /// # Errors
    /// [`Denied::OrganizerOnly`].
    pub fn may_manage(self, group: &Group) -> Result<(), Denied> {
        match self {
            Self::Operator => Ok(()),
            Self::Member(m) if group.organizer() == Some(m) => Ok(()),
            Self::Member(_) => Err(Denied::OrganizerOnly),
        }
    }

    /// Whether this caller may read `group` (its state, payouts and ledger).
    ///
    /// # Errors
    /// [`Denied::MembersOnly`].
    pub fn may_read(self, group: &Group) -> Result<(), Denied> {
        match self {
            Self::Operator => Ok(()),
            Self::Member(m) if group.is_member(m) => Ok(()),
            Self::Member(_) => Err(Denied::MembersOnly),
        }
    }

    /// Whether this caller may act for `member`: issue their contribution
    /// invoices, set or clear their payout destination. Only `member`
    /// may, an operator not.
    ///
    /// # Errors
    /// [`Denied::SelfOnly`].
    pub fn may_act_for(self, member: MemberId) -> Result<(), Denied> {
        match self {
            Self::Member(m) if m == member => Ok(()),
            Self::Operator | Self::Member(_) => Err(Denied::SelfOnly),
        }
    }

    /// Whether this caller may read `member`'s payout destination: the
    /// member and an operator.
    ///
    /// # Errors
    /// [`Denied::SelfOnly`].
    pub fn may_read_member(self, member: MemberId) -> Result<(), Denied> {
        match self {
            Self::Operator => Ok(()),
            Self::Member(m) if m == member => Ok(()),
            Self::Member(_) => Err(Denied::SelfOnly),
        }
    }

    /// Whether this caller may submit the invoice that `group`'s current pot
    /// is paid to: its beneficiary only.
    ///
    /// # Errors
    /// [`Denied::BeneficiaryOnly`] (also when the group has no current pot).
    pub fn may_submit_payout_invoice(self, group: &Group) -> Result<(), Denied> {
        match (self, group.beneficiary()) {
            (Self::Member(m), Some(b)) if m == b => Ok(()),
            _ => Err(Denied::BeneficiaryOnly),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::GroupId;
    use crate::domain::money::Msat;

    fn members() -> Vec<MemberId> {
        (0..3).map(|_| MemberId::random()).collect()
    }

    fn group(members: &[MemberId], organizer: Option<MemberId>) -> Group {
        let spec = GroupSpec {
            contribution: Msat::new(1_000),
            fee_bps: 0,
            members: members.to_vec(),
            policy: crate::domain::group::GroupPolicy::default(),
            organizer,
            schedule: None,
        };
        Group::new(GroupId::random(), spec).unwrap()
    }

    #[test]
    fn the_organizer_and_operators_manage_a_group_nobody_else_does() {
        let ms = members();
        let g = group(&ms, Some(ms[1]));
        assert_eq!(Caller::Operator.may_manage(&g), Ok(()));
        assert_eq!(Caller::Member(ms[1]).may_manage(&g), Ok(()));
        assert_eq!(Caller::Member(ms[0]).may_manage(&g), Err(Denied::OrganizerOnly));
        assert_eq!(Caller::Member(MemberId::random()).may_manage(&g), Err(Denied::OrganizerOnly));
        let no_organizer = group(&ms, None);
        assert_eq!(Caller::Member(ms[0]).may_manage(&no_organizer), Err(Denied::OrganizerOnly));
        assert_eq!(Caller::Operator.may_manage(&no_organizer), Ok(()));
    }

    #[test]
    fn members_and_operators_read_a_group_outsiders_do_not() {
        let ms = members();
        let g = group(&ms, None);
        assert_eq!(Caller::Operator.may_read(&g), Ok(()));
        for m in &ms {
            assert_eq!(Caller::Member(*m).may_read(&g), Ok(()));
        }
        assert_eq!(Caller::Member(MemberId::random()).may_read(&g), Err(Denied::MembersOnly));
    }

    #[test]
    fn a_member_acts_only_for_themselves_and_an_operator_never_does() {
        let (a, b) = (MemberId::random(), MemberId::random());
        assert_eq!(Caller::Member(a).may_act_for(a), Ok(()));
        assert_eq!(Caller::Member(a).may_act_for(b), Err(Denied::SelfOnly));
        assert_eq!(Caller::Operator.may_act_for(a), Err(Denied::SelfOnly));
        assert_eq!(Caller::Operator.may_read_member(a), Ok(()));
        assert_eq!(Caller::Member(a).may_read_member(a), Ok(()));
        assert_eq!(Caller::Member(b).may_read_member(a), Err(Denied::SelfOnly));
    }

    #[test]
    fn a_member_creates_a_group_only_as_its_organizer_and_member() {
        let ms = members();
        let spec = |organizer| GroupSpec {
            contribution: Msat::new(1_000),
            fee_bps: 0,
            members: ms.clone(),
            policy: crate::domain::group::GroupPolicy::default(),
            organizer,
            schedule: None,
        };
        assert_eq!(Caller::Member(ms[0]).may_create(&spec(Some(ms[0]))), Ok(()));
        assert_eq!(Caller::Member(ms[0]).may_create(&spec(Some(ms[1]))), Err(Denied::CreateAsOrganizer));
        assert_eq!(Caller::Member(ms[0]).may_create(&spec(None)), Err(Denied::CreateAsOrganizer));
        let outsider = MemberId::random();
        assert_eq!(Caller::Member(outsider).may_create(&spec(Some(outsider))), Err(Denied::CreateAsOrganizer));
        assert_eq!(Caller::Operator.may_create(&spec(None)), Ok(()));
        assert_eq!(Caller::Operator.may_create(&spec(Some(ms[2]))), Ok(()));
    }

    #[test]
    fn only_the_current_beneficiary_submits_the_pot_invoice() {
        let ms = members();
        let mut g = group(&ms, Some(ms[0]));
        assert_eq!(Caller::Member(ms[0]).may_submit_payout_invoice(&g), Err(Denied::BeneficiaryOnly));
        g.start().unwrap();
        assert_eq!(Caller::Member(ms[0]).may_submit_payout_invoice(&g), Ok(()));
        assert_eq!(Caller::Member(ms[1]).may_submit_payout_invoice(&g), Err(Denied::BeneficiaryOnly));
        assert_eq!(Caller::Operator.may_submit_payout_invoice(&g), Err(Denied::BeneficiaryOnly));
    }

    #[test]
    fn every_refusal_has_its_own_stable_code() {
        let all = [
            Denied::OrganizerOnly,
            Denied::MembersOnly,
            Denied::SelfOnly,
            Denied::BeneficiaryOnly,
            Denied::CreateAsOrganizer,
        ];
        let codes: std::collections::BTreeSet<_> = all.iter().map(|d| d.code()).collect();
        assert_eq!(codes.len(), all.len());
    }
}
