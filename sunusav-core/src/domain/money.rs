//! Money: Lightning millisatoshis with checked arithmetic. No floats anywhere.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount of millisatoshis (1 sat = 1,000 msat).
///
/// All arithmetic is checked: an overflow is `None`, never a wrap or a panic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Msat(u64);

/// Basis points in one whole (100 %).
pub const BPS_PER_WHOLE: u16 = 10_000;

impl Msat {
    /// Zero millisatoshis.
    pub const ZERO: Self = Self(0);

    /// An amount of `msat` millisatoshis.
    pub const fn new(msat: u64) -> Self {
        Self(msat)
    }

    /// The amount in millisatoshis.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// `self + rhs`, or `None` on overflow.
    pub const fn checked_add(self, rhs: Self) -> Option<Self> {
        match self.0.checked_add(rhs.0) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }

    /// `self - rhs`, or `None` when `rhs > self`.
    pub const fn checked_sub(self, rhs: Self) -> Option<Self> {
        match self.0.checked_sub(rhs.0) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }

    /// `self × n`, or `None` on overflow.
    pub const fn checked_mul(self, n: u64) -> Option<Self> {
        match self.0.checked_mul(n) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }

    /// The share of `self` given by `bps` basis points, rounded down.
    ///
    /// Returns `None` when `bps` exceeds 10,000 (more than the whole).
    pub fn basis_points(self, bps: u16) -> Option<Self> {
        if bps > BPS_PER_WHOLE {
            return None;
        }
        let share = u128::from(self.0) * u128::from(bps) / u128::from(BPS_PER_WHOLE);
        // share <= self.0 because bps <= 10_000, so it always fits.
        u64::try_from(share).ok().map(Self)
    }

    /// Whether the amount is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Msat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} msat", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_is_checked_at_the_edges() {
        assert_eq!(Msat::new(u64::MAX).checked_add(Msat::new(1)), None);
        assert_eq!(Msat::new(1).checked_sub(Msat::new(2)), None);
        assert_eq!(Msat::new(u64::MAX).checked_mul(2), None);
        assert_eq!(Msat::new(3).checked_mul(4), Some(Msat::new(12)));
        assert_eq!(Msat::new(5).checked_sub(Msat::new(2)), Some(Msat::new(3)));
    }

    #[test]
    fn basis_points_round_down_and_refuse_more_than_the_whole() {
        assert_eq!(Msat::new(10_000).basis_points(150), Some(Msat::new(150)));
        assert_eq!(Msat::new(999).basis_points(100), Some(Msat::new(9)));
        assert_eq!(Msat::new(u64::MAX).basis_points(10_000), Some(Msat::new(u64::MAX)));
        assert_eq!(Msat::new(1).basis_points(10_001), None);
    }
}
