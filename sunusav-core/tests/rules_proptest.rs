//! Property tests of the pure rules over a group's whole life: any order,
//! interleaving and duplication of settlement events.

use std::collections::{BTreeMap, HashSet, VecDeque};

use proptest::prelude::*;
use sunusav_core::{
    ContributionError, ContributionOutcome, Group, GroupId, GroupSpec, GroupStatus, Invoice, InvoiceState, MemberId,
    Msat, PaymentHash, PayoutApplied, PayoutDue,
};
use uuid::Uuid;

#[derive(Clone, Debug)]
struct Event {
    invoice: Invoice,
    paid: Msat,
    valid: bool,
}

fn hash(tag: u64, a: u64, b: u64) -> PaymentHash {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&tag.to_be_bytes());
    bytes[8..16].copy_from_slice(&a.to_be_bytes());
    bytes[16..24].copy_from_slice(&b.to_be_bytes());
    PaymentHash::from_bytes(bytes)
}

fn member(i: u64) -> MemberId {
    MemberId::from_uuid(Uuid::from_u64_pair(7, i))
}

/// Every valid settlement of the group's life, plus invalid ones.
fn events(group: &Group) -> Vec<Event> {
    let n = group.cycle_count();
    let mut out = Vec::new();
    for cycle in 1..=n {
        for (i, m) in group.members().iter().enumerate() {
            let i = i as u64;
            let inv = |h: PaymentHash, member: MemberId, cycle: u32| Invoice {
                payment_hash: h,
                group: group.id(),
                cycle,
                member,
                amount: group.contribution(),
                bolt11: String::new(),
                expires_at_ms: u64::MAX,
                state: InvoiceState::Open,
            };
            out.push(Event {
                invoice: inv(hash(1, cycle.into(), i), *m, cycle),
                paid: group.contribution(),
                valid: true,
            });
            // Wrong amount, with its own invoice.
            let short = Msat::new(group.contribution().get() - 1);
            out.push(Event { invoice: inv(hash(2, cycle.into(), i), *m, cycle), paid: short, valid: false });
            // A second invoice of the same member and cycle: whichever of the two
            // settles first counts, the other is refused.
            out.push(Event {
                invoice: inv(hash(3, cycle.into(), i), *m, cycle),
                paid: group.contribution(),
                valid: true,
            });
        }
        // Not a member.
        out.push(Event {
            invoice: Invoice {
                payment_hash: hash(4, cycle.into(), 0),
                group: group.id(),
                cycle,
                member: member(999),
                amount: group.contribution(),
                bolt11: String::new(),
                expires_at_ms: u64::MAX,
                state: InvoiceState::Open,
            },
            paid: group.contribution(),
            valid: false,
        });
    }
    // A cycle that never exists.
    out.push(Event {
        invoice: Invoice {
            payment_hash: hash(5, 0, 0),
            group: group.id(),
            cycle: n + 1,
            member: group.members()[0],
            amount: group.contribution(),
            bolt11: String::new(),
            expires_at_ms: u64::MAX,
            state: InvoiceState::Open,
        },
        paid: group.contribution(),
        valid: false,
    });
    // Another group's invoice.
    out.push(Event {
        invoice: Invoice {
            payment_hash: hash(6, 0, 0),
            group: GroupId::random(),
            cycle: 1,
            member: group.members()[0],
            amount: group.contribution(),
            bolt11: String::new(),
            expires_at_ms: u64::MAX,
            state: InvoiceState::Open,
        },
        paid: group.contribution(),
        valid: false,
    });
    out
}

fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let j = usize::try_from(seed % (i as u64 + 1)).unwrap();
        v.swap(i, j);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn any_delivery_order_pays_each_cycle_exactly_once(
        n in 2u64..=6,
        contribution in 2u64..=1_000_000,
        fee_bps in prop_oneof![Just(0u16), Just(9_999u16), 0u16..10_000],
        seed in any::<u64>().prop_filter("non-zero", |s| *s != 0),
        copies in 1usize..=3,
        payout_every in 1u64..=5,
    ) {
        let members: Vec<MemberId> = (0..n).map(member).collect();
        let spec = GroupSpec { contribution: Msat::new(contribution), fee_bps, members: members.clone(), policy: sunusav_core::GroupPolicy::default(), organizer: None, schedule: None };
        let mut group = Group::new(GroupId::random(), spec).unwrap();
        group.start().unwrap();

        let mut all: Vec<Event> = events(&group).into_iter().flat_map(|e| std::iter::repeat_n(e, copies)).collect();
        shuffle(&mut all, seed);
        let mut pending: VecDeque<Event> = all.into();
        let mut ledger: HashSet<PaymentHash> = HashSet::new();
        let mut slots: HashSet<(u32, MemberId)> = HashSet::new();
        let mut payouts: Vec<PayoutDue> = Vec::new();
        let mut due: Option<u32> = None;
        let mut step = 0u64;

        while let Some(ev) = pending.pop_front() {
            step += 1;
            prop_assert!(step < 100_000, "no progress");
            // The payout worker records success at its own pace, sometimes twice.
            if let Some(cycle) = due
                && step.is_multiple_of(payout_every)
            {
                let applied = group.record_payout_success(cycle).unwrap();
                prop_assert!(matches!(applied, PayoutApplied::NextCycle(_) | PayoutApplied::Finished));
                prop_assert_eq!(group.record_payout_success(cycle).unwrap(), PayoutApplied::AlreadyApplied);
                due = None;
            }
            // The store's ledger catches replays of any cycle.
            if ledger.contains(&ev.invoice.payment_hash) {
                continue;
            }
            let before = group.clone();
            match group.record_contribution(&ev.invoice, ev.paid) {
                Ok(ContributionOutcome::Recorded) => {
                    prop_assert!(ev.valid, "an invalid event was recorded: {ev:?}");
                    ledger.insert(ev.invoice.payment_hash);
                    prop_assert!(slots.insert((ev.invoice.cycle, ev.invoice.member)), "two contributions in one slot");
                }
                Ok(ContributionOutcome::CycleComplete(p)) => {
                    prop_assert!(ev.valid);
                    ledger.insert(ev.invoice.payment_hash);
                    prop_assert!(slots.insert((ev.invoice.cycle, ev.invoice.member)), "two contributions in one slot");
                    prop_assert_eq!(due, None, "two payouts due at once");
                    due = Some(p.cycle);
                    payouts.push(p);
                }
                Ok(ContributionOutcome::Replay) => {
                    prop_assert!(ledger.contains(&ev.invoice.payment_hash) || group.paid().values().any(|h| *h == ev.invoice.payment_hash));
                }
                Err(e) => {
                    prop_assert_eq!(&group, &before, "a refused event changed the group");
                    // A valid event that came too early is delivered again later,
                    // as the queue's retry would.
                    let early = matches!(e, ContributionError::WrongCycle { expected, got } if got > expected)
                        || matches!(e, ContributionError::CycleClosed(_));
                    let slot_taken = slots.contains(&(ev.invoice.cycle, ev.invoice.member));
                    if ev.valid && slot_taken {
                        // The member's other invoice counted: this one never will.
                    } else if ev.valid && early {
                        pending.push_back(ev);
                    } else {
                        prop_assert!(!ev.valid, "a valid event was refused for good: {e:?}");
                    }
                }
            }
            if pending.is_empty()
                && let Some(cycle) = due.take()
            {
                group.record_payout_success(cycle).unwrap();
            }
        }

        prop_assert_eq!(group.status(), GroupStatus::Finished);
        prop_assert_eq!(payouts.len() as u64, n);
        let cycles: Vec<u32> = payouts.iter().map(|p| p.cycle).collect();
        prop_assert_eq!(cycles, (1..=u32::try_from(n).unwrap()).collect::<Vec<_>>());
        let beneficiaries: Vec<MemberId> = payouts.iter().map(|p| p.beneficiary).collect();
        prop_assert_eq!(beneficiaries, members);
        let paid_out: u64 = payouts.iter().map(|p| p.amount.get()).sum();
        let fees: u64 = payouts.iter().map(|p| p.fee.get()).sum();
        let contributed: u64 = n * n * contribution;
        prop_assert_eq!(paid_out + fees, contributed);
        prop_assert_eq!(ledger.len() as u64, n * n, "exactly one contribution per member per cycle");
        prop_assert_eq!(slots.len() as u64, n * n);
        let keys: BTreeMap<_, _> = payouts.iter().map(|p| (p.key.clone(), p.cycle)).collect();
        prop_assert_eq!(keys.len() as u64, n, "payout keys are distinct");
    }
}

#[test]
fn group_rules_refuse_bad_specs() {
    let m = member(1);
    let spec = |members: Vec<MemberId>, c: u64, fee: u16| GroupSpec {
        contribution: Msat::new(c),
        fee_bps: fee,
        members,
        policy: sunusav_core::GroupPolicy::default(),
        organizer: None,
        schedule: None,
    };
    let id = GroupId::random();
    assert_eq!(Group::new(id, spec(vec![m], 1, 0)).unwrap_err(), sunusav_core::GroupError::TooFewMembers);
    assert_eq!(Group::new(id, spec(vec![m, m], 1, 0)).unwrap_err(), sunusav_core::GroupError::DuplicateMember(m));
    assert_eq!(Group::new(id, spec(vec![m, member(2)], 0, 0)).unwrap_err(), sunusav_core::GroupError::ZeroContribution);
    assert_eq!(Group::new(id, spec(vec![m, member(2)], 1, 10_001)).unwrap_err(), sunusav_core::GroupError::FeeTooHigh);
    // A fee of 100 % leaves the beneficiary nothing: refused, not left to fail
    // at the last contribution of the cycle.
    assert_eq!(Group::new(id, spec(vec![m, member(2)], 1, 10_000)).unwrap_err(), sunusav_core::GroupError::FeeTooHigh);
    let g = Group::new(id, spec(vec![m, member(2)], 1, 9_999)).unwrap();
    assert_eq!(g.payout_amounts(), (Msat::new(1), Msat::new(1)), "the smallest pot still pays 1 msat");
    assert_eq!(
        Group::new(id, spec(vec![m, member(2)], u64::MAX, 0)).unwrap_err(),
        sunusav_core::GroupError::PotOverflow
    );
    // Every store keeps amounts as signed 64-bit: a pot over i64::MAX is refused
    // here rather than by the database at the last contribution.
    let half = sunusav_core::domain::group::MAX_POT / 2;
    assert!(Group::new(id, spec(vec![m, member(2)], half, 0)).is_ok());
    assert_eq!(
        Group::new(id, spec(vec![m, member(2)], half + 1, 0)).unwrap_err(),
        sunusav_core::GroupError::PotOverflow
    );
}

#[test]
fn a_forming_group_takes_no_contribution_and_fees_are_kept() {
    let members = vec![member(1), member(2), member(3)];
    let mut g = Group::new(
        GroupId::random(),
        GroupSpec {
            contribution: Msat::new(1_000),
            fee_bps: 250,
            members: members.clone(),
            policy: sunusav_core::GroupPolicy::default(),
            organizer: None,
            schedule: None,
        },
    )
    .unwrap();
    let inv = Invoice {
        payment_hash: hash(9, 0, 0),
        group: g.id(),
        cycle: 0,
        member: members[0],
        amount: Msat::new(1_000),
        bolt11: String::new(),
        expires_at_ms: u64::MAX,
        state: InvoiceState::Open,
    };
    assert_eq!(
        g.record_contribution(&inv, Msat::new(1_000)),
        Err(ContributionError::GroupNotActive(GroupStatus::Forming))
    );
    g.start().unwrap();
    assert_eq!(g.payout_amounts(), (Msat::new(2_925), Msat::new(75)));
    assert_eq!(g.beneficiary(), Some(members[0]));
}
