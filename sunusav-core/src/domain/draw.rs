//! A drawn payout order that members can check: a commit / reveal hash chain.
//!
//! A group whose payout order is drawn publishes, when it starts, a
//! commitment; each cycle's beneficiary is drawn when the cycle opens, and
//! the draw reveals what is needed to check it without revealing the draws
//! still to come.
//!
//! For a group of `n` members and a secret [`DrawSeed`]:
//!
//! ```text
//! r_n     = SHA-256("sunusav:draw:v1:" || seed)
//! r_(k-1) = SHA-256(r_k)                      for k = n .. 1
//! commitment = r_0
//! ```
//!
//! Cycle `k` reveals `r_k`. Anyone can hash it down to the commitment, and
//! no one can compute `r_(k+1) .. r_n` from it (that would invert SHA-256).
//! The beneficiary of cycle `k` is drawn from `r_k` among the members who
//! have not received the pot yet, in roster order ([`draw_beneficiary`]).
//!
//! What this proves: once the commitment is published, the order is fixed;
//! the operator cannot change a later draw, and a member cannot learn one
//! early. What it does not prove: that the seed was chosen at random. The
//! operator who picks the seed knows the whole order before committing to it.
//!
//! Pure: the seed is passed in; there is no randomness source here.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::domain::group::MAX_MEMBERS;
use crate::domain::ids::MemberId;

/// The prefix hashed with the seed into the last link `r_n` (the version of
/// the scheme: a change of algorithm is a new prefix).
const SEED_PREFIX: &[u8] = b"sunusav:draw:v1:";

/// The fewest members a drawn group has.
pub const MIN_MEMBERS: usize = 2;

/// The secret a draw's chain is made from: 32 bytes, drawn at random by the
/// caller and kept secret until the group's last cycle.
///
/// `Debug` does not print it, and it has no `Display` nor `Serialize`: a seed
/// leaves this type only through [`DrawSeed::expose_bytes`].
#[derive(Clone)]
pub struct DrawSeed([u8; 32]);

impl DrawSeed {
    /// Wraps 32 secret bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The secret bytes (to store them; the name shows the call site handles a secret).
    pub const fn expose_bytes(&self) -> [u8; 32] {
        self.0
    }
}

impl fmt::Debug for DrawSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DrawSeed(<redacted>)")
    }
}

/// A public 32-byte value of the chain (the commitment or a reveal), written
/// as 64 lower-case hexadecimal characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest32([u8; 32]);

impl Digest32 {
    /// Wraps 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The SHA-256 of these 32 bytes: the previous link of the chain.
    #[must_use]
    pub fn hashed(&self) -> Self {
        Self(Sha256::digest(self.0).into())
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl FromStr for Digest32 {
    type Err = DrawError;

    /// Parses 64 hexadecimal characters (either case).
    fn from_str(s: &str) -> Result<Self, DrawError> {
        if s.len() != 64 {
            return Err(DrawError::InvalidDigest);
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| DrawError::InvalidDigest)?;
        Ok(Self(out))
    }
}

impl fmt::Display for Digest32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest32({})", self.to_hex())
    }
}

impl Serialize for Digest32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Digest32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a chain cannot be made or a proof does not check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DrawError {
    /// Fewer than [`MIN_MEMBERS`] members.
    #[error("a drawn group needs at least {MIN_MEMBERS} members")]
    TooFewMembers,
    /// More than [`MAX_MEMBERS`] members.
    #[error("a drawn group has at most {MAX_MEMBERS} members")]
    TooManyMembers,
    /// A member appears twice in the roster.
    #[error("member {0} appears twice in the roster")]
    DuplicateMember(MemberId),
    /// The roster is not the size the chain was made for.
    #[error("the chain was made for {chain} members, the roster has {roster}")]
    RosterMismatch {
        /// The chain's number of members.
        chain: usize,
        /// The roster's.
        roster: usize,
    },
    /// A cycle of zero, or past the group's last cycle.
    #[error("cycle {0} is not a cycle of this group")]
    CycleOutOfRange(u32),
    /// A proof's reveals are not cycles 1, 2, … in order.
    #[error("expected the reveal of cycle {expected}, found cycle {found}")]
    RevealOutOfOrder {
        /// The cycle expected at this place.
        expected: u32,
        /// The cycle found.
        found: u32,
    },
    /// A cycle's reveal does not hash to the previous one (cycle 1's to the commitment).
    #[error("the reveal of cycle {0} does not hash to the previous link")]
    BrokenChain(u32),
    /// A cycle's stated beneficiary is not the one its reveal draws.
    #[error("the beneficiary of cycle {0} is not the one drawn")]
    WrongBeneficiary(u32),
    /// Not 64 hexadecimal characters.
    #[error("a digest is 64 hexadecimal characters")]
    InvalidDigest,
}

impl DrawError {
    /// The stable code (the API's error code).
    pub const fn code(self) -> &'static str {
        match self {
            Self::TooFewMembers => "too_few_members",
            Self::TooManyMembers => "too_many_members",
            Self::DuplicateMember(_) => "duplicate_member",
            Self::RosterMismatch { .. } => "roster_mismatch",
            Self::CycleOutOfRange(_) => "cycle_out_of_range",
            Self::RevealOutOfOrder { .. } => "reveal_out_of_order",
            Self::BrokenChain(_) => "broken_chain",
            Self::WrongBeneficiary(_) => "wrong_beneficiary",
            Self::InvalidDigest => "invalid_digest",
        }
    }
}

/// One cycle's draw, as published: its reveal and the beneficiary it draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reveal {
    /// The cycle (1-based).
    pub cycle: u32,
    /// `r_cycle`.
    pub reveal: Digest32,
    /// The member it draws.
    pub beneficiary: MemberId,
}

/// What a member needs to check the draws so far: the commitment published
/// at the start and the reveals of cycles 1..=m, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrawProof {
    /// `r_0`, published when the group started.
    pub commitment: Digest32,
    /// Cycles 1..=m, in order.
    pub reveals: Vec<Reveal>,
}

/// A group's draw chain: the seed and the number of members it was made for.
#[derive(Clone, Debug)]
pub struct DrawChain {
    seed: DrawSeed,
    members: usize,
    commitment: Digest32,
}

impl DrawChain {
    /// The chain of a group of `members` members (2 to [`MAX_MEMBERS`]).
    pub fn new(seed: DrawSeed, members: usize) -> Result<Self, DrawError> {
        check_size(members)?;
        let commitment = hash_times(last_link(&seed), members);
        Ok(Self { seed, members, commitment })
    }

    /// The secret seed (for the store to keep).
    pub const fn seed(&self) -> &DrawSeed {
        &self.seed
    }

    /// The number of members (and cycles).
    pub const fn members(&self) -> usize {
        self.members
    }

    /// `r_0`: what the group publishes when it starts.
    pub const fn commitment(&self) -> Digest32 {
        self.commitment
    }

    /// `r_cycle`, for a cycle in `1..=members`; `None` otherwise.
    pub fn reveal(&self, cycle: u32) -> Option<Digest32> {
        let k = usize::try_from(cycle).ok().filter(|k| (1..=self.members).contains(k))?;
        Some(hash_times(last_link(&self.seed), self.members - k))
    }

    /// The proof of the draws of cycles `1..=through_cycle` over `roster`
    /// (all members, in their listed order); `through_cycle` 0 gives the
    /// commitment alone.
    pub fn proof(&self, roster: &[MemberId], through_cycle: u32) -> Result<DrawProof, DrawError> {
        check_roster(roster)?;
        if roster.len() != self.members {
            return Err(DrawError::RosterMismatch { chain: self.members, roster: roster.len() });
        }
        let through = usize::try_from(through_cycle).map_err(|_| DrawError::CycleOutOfRange(through_cycle))?;
        if through > self.members {
            return Err(DrawError::CycleOutOfRange(through_cycle));
        }
        let links = links(&self.seed, self.members);
        let mut remaining = roster.to_vec();
        let mut reveals = Vec::with_capacity(through);
        for (cycle, reveal) in (1..=through_cycle).zip(links.iter().skip(1)) {
            let beneficiary = take_drawn(reveal, &mut remaining).ok_or(DrawError::CycleOutOfRange(cycle))?;
            reveals.push(Reveal { cycle, reveal: *reveal, beneficiary });
        }
        Ok(DrawProof { commitment: self.commitment, reveals })
    }
}

/// Checks `proof` against `roster` (all members, in their listed order) and
/// returns the beneficiaries of its cycles, in order, recomputed.
///
/// Refuses reveals that are not cycles 1..=m in order, a reveal that does not
/// hash to the previous one (cycle 1's to the commitment), and a stated
/// beneficiary that is not the one drawn.
pub fn verify(roster: &[MemberId], proof: &DrawProof) -> Result<Vec<MemberId>, DrawError> {
    check_roster(roster)?;
    if proof.reveals.len() > roster.len() {
        // Cycle numbers are checked below; this one is past the last.
        return Err(DrawError::CycleOutOfRange(u32::try_from(roster.len() + 1).unwrap_or(u32::MAX)));
    }
    let mut previous = proof.commitment;
    let mut remaining = roster.to_vec();
    let mut order = Vec::with_capacity(proof.reveals.len());
    for (expected, r) in (1..=u32::MAX).zip(&proof.reveals) {
        if r.cycle != expected {
            return Err(DrawError::RevealOutOfOrder { expected, found: r.cycle });
        }
        if r.reveal.hashed() != previous {
            return Err(DrawError::BrokenChain(r.cycle));
        }
        let drawn = take_drawn(&r.reveal, &mut remaining).ok_or(DrawError::CycleOutOfRange(r.cycle))?;
        if drawn != r.beneficiary {
            return Err(DrawError::WrongBeneficiary(r.cycle));
        }
        order.push(drawn);
        previous = r.reveal;
    }
    Ok(order)
}

/// The members who have not received the pot: `roster` minus `drawn`, in roster order.
pub fn remaining(roster: &[MemberId], drawn: &[MemberId]) -> Vec<MemberId> {
    roster.iter().copied().filter(|m| !drawn.contains(m)).collect()
}

/// The member a cycle's reveal draws among `remaining` (in roster order);
/// `None` when `remaining` is empty.
///
/// Uniform, by rejection sampling: with `len = remaining.len()` and
/// `limit = len × ⌊u64::MAX / len⌋` (the largest multiple of `len` not over
/// `u64::MAX`), for counters `c = 0, 1, 2, …` take
/// `x = u64::from_be_bytes(SHA-256(reveal || c as u32 big-endian)[0..8])`
/// and accept the first `x < limit`; the index is `x % len`. Each index has
/// exactly `limit / len` accepted values of `x`, so each is equally likely.
/// A counter is rejected with a probability under `len / 2^64`; if all
/// 2^32 were (never, in practice), the result is `None`.
pub fn draw_beneficiary(reveal: &Digest32, remaining: &[MemberId]) -> Option<MemberId> {
    // usize → u64 is lossless on every supported platform.
    let len = remaining.len() as u64;
    if len == 0 {
        return None;
    }
    let limit = u64::MAX / len * len;
    (0..=u32::MAX).find_map(|c| {
        let h: [u8; 32] = Sha256::new().chain_update(reveal.0).chain_update(c.to_be_bytes()).finalize().into();
        let mut first = [0u8; 8];
        first.copy_from_slice(&h[..8]);
        let x = u64::from_be_bytes(first);
        if x >= limit {
            return None;
        }
        remaining.get(usize::try_from(x % len).ok()?).copied()
    })
}

/// Draws from `remaining` and removes the member drawn, keeping roster order.
fn take_drawn(reveal: &Digest32, remaining: &mut Vec<MemberId>) -> Option<MemberId> {
    let drawn = draw_beneficiary(reveal, remaining)?;
    remaining.retain(|m| *m != drawn);
    Some(drawn)
}

/// `r_n = SHA-256("sunusav:draw:v1:" || seed)`.
fn last_link(seed: &DrawSeed) -> Digest32 {
    Digest32(Sha256::new().chain_update(SEED_PREFIX).chain_update(seed.0).finalize().into())
}

/// `link` hashed `times` times.
fn hash_times(link: Digest32, times: usize) -> Digest32 {
    (0..times).fold(link, |d, _| d.hashed())
}

/// `[r_0, r_1, …, r_n]`, hashed down from `r_n`.
fn links(seed: &DrawSeed, n: usize) -> Vec<Digest32> {
    let mut link = last_link(seed);
    let mut chain = Vec::with_capacity(n + 1);
    chain.push(link);
    for _ in 0..n {
        link = link.hashed();
        chain.push(link);
    }
    chain.reverse();
    chain
}

const fn check_size(members: usize) -> Result<(), DrawError> {
    if members < MIN_MEMBERS {
        return Err(DrawError::TooFewMembers);
    }
    if members > MAX_MEMBERS {
        return Err(DrawError::TooManyMembers);
    }
    Ok(())
}

fn check_roster(roster: &[MemberId]) -> Result<(), DrawError> {
    check_size(roster.len())?;
    let mut seen = std::collections::BTreeSet::new();
    match roster.iter().find(|m| !seen.insert(**m)) {
        Some(m) => Err(DrawError::DuplicateMember(*m)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn roster(n: u128) -> Vec<MemberId> {
        (1..=n).map(|i| MemberId::from_uuid(Uuid::from_u128(i))).collect()
    }

    fn seed(i: u64) -> DrawSeed {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&i.to_be_bytes());
        DrawSeed::from_bytes(bytes)
    }

    fn sorted(mut v: Vec<MemberId>) -> Vec<MemberId> {
        v.sort();
        v
    }

    #[test]
    fn each_link_hashes_to_the_previous_and_cycle_one_to_the_commitment() {
        let chain = DrawChain::new(seed(1), 6).unwrap();
        assert_eq!(chain.reveal(1).unwrap().hashed(), chain.commitment());
        for k in 2..=6 {
            assert_eq!(chain.reveal(k).unwrap().hashed(), chain.reveal(k - 1).unwrap());
        }
        assert_eq!(chain.reveal(0), None);
        assert_eq!(chain.reveal(7), None);
        let mut last = SEED_PREFIX.to_vec();
        last.extend_from_slice(&seed(1).expose_bytes());
        assert_eq!(chain.reveal(6).unwrap().as_bytes(), &<[u8; 32]>::from(Sha256::digest(&last)));
    }

    #[test]
    fn a_fixed_seed_draws_a_fixed_order() {
        // Computed once by an independent implementation of the algorithm in
        // the module docs: a change here is a change of algorithm.
        let members = roster(5);
        let chain = DrawChain::new(DrawSeed::from_bytes([7; 32]), 5).unwrap();
        assert_eq!(chain.commitment().to_hex(), "4ef88efd81c986825ed95f9849c594bc76337190115a1e7dc73da3ec3291f309");
        assert_eq!(
            chain.reveal(1).unwrap().to_hex(),
            "29abbb7291440b25434cc54ad386df2762b6e1fe36c4e64e6599a550ff3deb09"
        );
        let order = verify(&members, &chain.proof(&members, 5).unwrap()).unwrap();
        let expected: Vec<MemberId> = [4, 0, 1, 3, 2].iter().map(|i| members[*i]).collect();
        assert_eq!(order, expected);
    }

    #[test]
    fn a_proof_verifies_and_gives_back_the_order_drawn_so_far() {
        let members = roster(8);
        let chain = DrawChain::new(seed(2), 8).unwrap();
        let full = verify(&members, &chain.proof(&members, 8).unwrap()).unwrap();
        assert_eq!(sorted(full.clone()), members, "a permutation of the roster");
        for m in 0..=8u32 {
            let proof = chain.proof(&members, m).unwrap();
            assert_eq!(proof.commitment, chain.commitment());
            let order = verify(&members, &proof).unwrap();
            assert_eq!(order, full[..m as usize], "a prefix does not depend on later cycles");
            for r in &proof.reveals {
                let drawn = &order[..r.cycle as usize - 1];
                assert_eq!(draw_beneficiary(&r.reveal, &remaining(&members, drawn)), Some(r.beneficiary));
            }
        }
    }

    #[test]
    fn a_tampered_proof_is_refused() {
        let members = roster(5);
        let chain = DrawChain::new(seed(3), 5).unwrap();
        let proof = chain.proof(&members, 4).unwrap();
        let other = DrawChain::new(seed(4), 5).unwrap();

        let mut p = proof.clone();
        p.commitment = other.commitment();
        assert_eq!(verify(&members, &p), Err(DrawError::BrokenChain(1)));

        for (k, cycle) in (0..4).zip(1..) {
            let mut p = proof.clone();
            p.reveals[k].reveal = other.reveal(cycle).unwrap();
            assert_eq!(verify(&members, &p), Err(DrawError::BrokenChain(cycle)));

            let mut p = proof.clone();
            let wrong = members.iter().find(|m| **m != p.reveals[k].beneficiary).copied().unwrap();
            p.reveals[k].beneficiary = wrong;
            assert_eq!(verify(&members, &p), Err(DrawError::WrongBeneficiary(cycle)));
        }

        let mut p = proof.clone();
        p.reveals.swap(1, 2);
        assert_eq!(verify(&members, &p), Err(DrawError::RevealOutOfOrder { expected: 2, found: 3 }));
        let (c1, c2) = (p.reveals[1].cycle, p.reveals[2].cycle);
        (p.reveals[1].cycle, p.reveals[2].cycle) = (c2, c1);
        assert_eq!(verify(&members, &p), Err(DrawError::BrokenChain(2)), "renumbered, the chain still breaks");

        let mut p = proof.clone();
        p.reveals.remove(0);
        assert_eq!(verify(&members, &p), Err(DrawError::RevealOutOfOrder { expected: 1, found: 2 }));

        let mut reordered = members.clone();
        reordered.swap(0, 4);
        reordered.swap(1, 3);
        let wrong_roster = verify(&reordered, &proof);
        assert!(matches!(wrong_roster, Err(DrawError::WrongBeneficiary(_))), "{wrong_roster:?}");
    }

    #[test]
    fn sizes_cycles_and_rosters_out_of_range_are_refused_with_a_code() {
        assert_eq!(DrawChain::new(seed(0), 1).map_err(DrawError::code).err(), Some("too_few_members"));
        assert_eq!(DrawChain::new(seed(0), MAX_MEMBERS + 1).err(), Some(DrawError::TooManyMembers));
        assert!(DrawChain::new(seed(0), MAX_MEMBERS).is_ok());
        let members = roster(4);
        let chain = DrawChain::new(seed(0), 4).unwrap();
        assert_eq!(chain.proof(&members, 5), Err(DrawError::CycleOutOfRange(5)));
        assert_eq!(chain.proof(&members[..3], 1), Err(DrawError::RosterMismatch { chain: 4, roster: 3 }));
        let dup = vec![members[0], members[1], members[2], members[0]];
        assert_eq!(chain.proof(&dup, 1), Err(DrawError::DuplicateMember(members[0])));
        assert_eq!(verify(&dup, &chain.proof(&members, 1).unwrap()).map_err(DrawError::code), Err("duplicate_member"));

        let mut long = chain.proof(&members, 4).unwrap();
        let extra = Reveal { cycle: 5, reveal: chain.commitment(), beneficiary: members[0] };
        long.reveals.push(extra);
        assert_eq!(verify(&members, &long), Err(DrawError::CycleOutOfRange(5)));
    }

    #[test]
    fn drawing_from_nobody_is_none_and_from_one_member_is_that_member() {
        let r = DrawChain::new(seed(5), 2).unwrap().commitment();
        assert_eq!(draw_beneficiary(&r, &[]), None);
        let m = MemberId::random();
        assert_eq!(draw_beneficiary(&r, &[m]), Some(m));
    }

    #[test]
    fn each_of_three_members_wins_cycle_one_about_a_third_of_the_time() {
        // Deterministic seeds: expected 1,000 each, standard deviation about 26.
        let members = roster(3);
        let mut wins = [0u32; 3];
        for i in 0..3_000 {
            let reveal = DrawChain::new(seed(i), 3).unwrap().reveal(1).unwrap();
            let winner = draw_beneficiary(&reveal, &members).unwrap();
            wins[members.iter().position(|m| *m == winner).unwrap()] += 1;
        }
        assert!(wins.iter().all(|w| (800..=1_200).contains(w)), "{wins:?}");
    }

    #[test]
    fn the_seed_is_redacted_and_digests_are_hex_in_json() {
        assert_eq!(format!("{:?}", DrawSeed::from_bytes([9; 32])), "DrawSeed(<redacted>)");
        let chain = DrawChain::new(DrawSeed::from_bytes([9; 32]), 2).unwrap();
        assert!(!format!("{chain:?}").contains("9, 9"), "{chain:?}");

        let members = roster(2);
        let proof = chain.proof(&members, 1).unwrap();
        let json = serde_json::to_string(&proof).unwrap();
        let hex = chain.commitment().to_hex();
        assert!(json.starts_with(&format!(r#"{{"commitment":"{hex}","reveals":[{{"cycle":1,"reveal":""#)), "{json}");
        assert_eq!(serde_json::from_str::<DrawProof>(&json).unwrap(), proof);

        assert_eq!(hex.parse::<Digest32>(), Ok(chain.commitment()));
        assert_eq!(hex.to_uppercase().parse::<Digest32>(), Ok(chain.commitment()));
        assert_eq!(hex[..62].parse::<Digest32>(), Err(DrawError::InvalidDigest));
        assert_eq!("zz".repeat(32).parse::<Digest32>().map_err(DrawError::code), Err("invalid_digest"));
        assert!(serde_json::from_str::<Digest32>(r#""abcd""#).is_err());
    }

    proptest::proptest! {
        /// For any seed and size, the full order is a permutation of the
        /// roster, verifies, and agrees with the chain's reveals.
        #[test]
        fn every_full_order_is_a_permutation_and_verifies(
            bytes in proptest::prelude::any::<[u8; 32]>(),
            n in 2..50usize,
            base in proptest::prelude::any::<u64>(),
        ) {
            let members: Vec<MemberId> =
                (0..n as u128).map(|i| MemberId::from_uuid(Uuid::from_u128((u128::from(base) << 64) | i))).collect();
            let chain = DrawChain::new(DrawSeed::from_bytes(bytes), n).unwrap();
            let proof = chain.proof(&members, u32::try_from(n).unwrap()).unwrap();
            let order = verify(&members, &proof).unwrap();
            proptest::prop_assert_eq!(sorted(order), sorted(members));
            for r in &proof.reveals {
                proptest::prop_assert_eq!(chain.reveal(r.cycle), Some(r.reveal));
            }
        }
    }
}
