//! [`Schedule`]: a group's calendar. When each cycle is due and when its
//! grace period ends, from the first due time and a period of days, weeks or
//! calendar months.
//!
//! Pure: times are Unix milliseconds in UTC, passed in; there is no clock
//! here. Calendar months keep the first due time's day of the month and clamp
//! it to the month's last day (a group due on January 31 is due on February
//! 28, or 29 in a leap year, then March 31): each due date is computed from
//! the first one, never from the previous, so a short month does not move
//! every later date. The time of day is kept.

use serde::{Deserialize, Serialize};

/// Milliseconds in a day.
const DAY_MS: u64 = 86_400_000;
/// The latest first due time accepted: the start of year 10,000 (UTC).
pub const MAX_TIME_MS: u64 = 253_402_300_800_000;
/// The longest period accepted, in days, weeks or months.
pub const MAX_PERIOD: u16 = 366;

/// How far apart two cycles' due times are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Every `n` days.
    Days(u16),
    /// Every `n` weeks.
    Weeks(u16),
    /// Every `n` calendar months, on the first due time's day of the month
    /// (clamped to the month's last day).
    Months(u16),
}

impl Period {
    const fn count(self) -> u16 {
        match self {
            Self::Days(n) | Self::Weeks(n) | Self::Months(n) => n,
        }
    }

    /// The shortest this period can be, in milliseconds (a month of 28 days).
    const fn shortest_ms(self) -> u64 {
        let n = self.count() as u64;
        match self {
            Self::Days(_) => n * DAY_MS,
            Self::Weeks(_) => n * 7 * DAY_MS,
            Self::Months(_) => n * 28 * DAY_MS,
        }
    }
}

/// Why a schedule cannot be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// A period of zero, or over [`MAX_PERIOD`] units.
    #[error("a period is 1 to {MAX_PERIOD} days, weeks or months")]
    PeriodOutOfRange,
    /// A first due time after [`MAX_TIME_MS`].
    #[error("the first due time is out of range")]
    TimeOutOfRange,
    /// A grace period as long as the shortest period, or longer: a cycle's
    /// grace would end after the next cycle is due.
    #[error("the grace period must be shorter than the period")]
    GraceTooLong,
}

impl ScheduleError {
    /// The stable code (the API's error code).
    pub const fn code(self) -> &'static str {
        match self {
            Self::PeriodOutOfRange => "period_out_of_range",
            Self::TimeOutOfRange => "time_out_of_range",
            Self::GraceTooLong => "grace_too_long",
        }
    }
}

/// A group's calendar: cycle 1 is due at `first_due_ms`, each next one a
/// period later; a cycle's grace period ends `grace_ms` after it is due.
/// Deserializing checks it as [`Schedule::new`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawSchedule")]
pub struct Schedule {
    first_due_ms: u64,
    period: Period,
    grace_ms: u64,
}

/// A schedule as written, before its checks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    first_due_ms: u64,
    period: Period,
    #[serde(default)]
    grace_ms: u64,
}

impl TryFrom<RawSchedule> for Schedule {
    type Error = ScheduleError;

    fn try_from(raw: RawSchedule) -> Result<Self, ScheduleError> {
        Self::new(raw.first_due_ms, raw.period, raw.grace_ms)
    }
}

impl Schedule {
    /// A schedule, checked: a period of 1 to [`MAX_PERIOD`] units, a first
    /// due time before year 10,000, a grace period shorter than the period.
    pub const fn new(first_due_ms: u64, period: Period, grace_ms: u64) -> Result<Self, ScheduleError> {
        if period.count() == 0 || period.count() > MAX_PERIOD {
            return Err(ScheduleError::PeriodOutOfRange);
        }
        if first_due_ms > MAX_TIME_MS {
            return Err(ScheduleError::TimeOutOfRange);
        }
        if grace_ms >= period.shortest_ms() {
            return Err(ScheduleError::GraceTooLong);
        }
        Ok(Self { first_due_ms, period, grace_ms })
    }

    /// When cycle 1 is due.
    pub const fn first_due_ms(&self) -> u64 {
        self.first_due_ms
    }
    /// The period.
    pub const fn period(&self) -> Period {
        self.period
    }
    /// The grace period, in milliseconds.
    pub const fn grace_ms(&self) -> u64 {
        self.grace_ms
    }

    /// When `cycle` (1-based) is due; `None` for cycle 0 and for a cycle
    /// due after [`MAX_TIME_MS`] plus one period (never a real group's).
    pub fn due_ms(&self, cycle: u32) -> Option<u64> {
        let steps = u64::from(cycle.checked_sub(1)?);
        let n = u64::from(self.period.count());
        let due = match self.period {
            Period::Days(_) => self.first_due_ms.checked_add(steps.checked_mul(n * DAY_MS)?)?,
            Period::Weeks(_) => self.first_due_ms.checked_add(steps.checked_mul(n * 7 * DAY_MS)?)?,
            // 10,000 years of months at most: no overflow below.
            Period::Months(_) => add_months(self.first_due_ms, steps.checked_mul(n).filter(|m| *m <= 120_000)?),
        };
        (due <= MAX_TIME_MS + self.period.shortest_ms() * 2).then_some(due)
    }

    /// When `cycle`'s grace period ends; `None` for cycle 0.
    pub fn grace_end_ms(&self, cycle: u32) -> Option<u64> {
        self.due_ms(cycle).map(|due| due + self.grace_ms)
    }
}

/// Adds `months` calendar months to a UTC time, clamping the day of the month.
fn add_months(at_ms: u64, months: u64) -> u64 {
    let (days, in_day) = (at_ms / DAY_MS, at_ms % DAY_MS);
    let (year, month, day) = civil_from_days(days);
    let index = year * 12 + u64::from(month - 1) + months;
    let (year, month) = (index / 12, u8::try_from(index % 12).unwrap_or(0) + 1);
    let day = day.min(days_in_month(year, month));
    days_from_civil(year, month, day) * DAY_MS + in_day
}

const fn is_leap(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

const fn days_in_month(year: u64, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date on or after it
/// (H. Hinnant's `days_from_civil`, for non-negative days).
fn days_from_civil(year: u64, month: u8, day: u8) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let m = u64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + u64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u8, u8) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u8::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u8::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix ms of a UTC date and time.
    fn at(year: u64, month: u8, day: u8, hour: u64) -> u64 {
        days_from_civil(year, month, day) * DAY_MS + hour * 3_600_000
    }

    #[test]
    fn the_civil_conversions_agree_with_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        // 2025-01-31T00:00:00Z = 1738281600 s.
        assert_eq!(at(2025, 1, 31, 0), 1_738_281_600_000);
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        for d in (0..200_000).step_by(7) {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d, "day {d}");
        }
    }

    #[test]
    fn months_keep_the_day_and_clamp_it_to_short_months() {
        let s = Schedule::new(at(2025, 1, 31, 18), Period::Months(1), 3 * 3_600_000).unwrap();
        let due: Vec<u64> = (1..=5).filter_map(|c| s.due_ms(c)).collect();
        assert_eq!(
            due,
            vec![
                at(2025, 1, 31, 18),
                at(2025, 2, 28, 18),
                at(2025, 3, 31, 18),
                at(2025, 4, 30, 18),
                at(2025, 5, 31, 18)
            ]
        );
        assert_eq!(s.grace_end_ms(2), Some(at(2025, 2, 28, 21)));
        let leap = Schedule::new(at(2023, 12, 31, 0), Period::Months(2), 0).unwrap();
        assert_eq!(leap.due_ms(2), Some(at(2024, 2, 29, 0)));
        assert_eq!(leap.due_ms(7), Some(at(2024, 12, 31, 0)));
        let yearly = Schedule::new(at(2024, 2, 29, 0), Period::Months(12), 0).unwrap();
        assert_eq!(yearly.due_ms(2), Some(at(2025, 2, 28, 0)));
        assert_eq!(yearly.due_ms(5), Some(at(2028, 2, 29, 0)));
    }

    #[test]
    fn days_and_weeks_are_exact() {
        let s = Schedule::new(at(2025, 3, 1, 9), Period::Weeks(2), DAY_MS).unwrap();
        assert_eq!(s.due_ms(0), None);
        assert_eq!(s.due_ms(1), Some(at(2025, 3, 1, 9)));
        assert_eq!(s.due_ms(3), Some(at(2025, 3, 29, 9)));
        assert_eq!(s.grace_end_ms(3), Some(at(2025, 3, 30, 9)));
        let d = Schedule::new(0, Period::Days(3), 0).unwrap();
        assert_eq!(d.due_ms(4), Some(9 * DAY_MS));
    }

    #[test]
    fn json_round_trips_and_is_checked() {
        let s = Schedule::new(at(2025, 1, 31, 18), Period::Months(1), 3_600_000).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"first_due_ms":1738346400000,"period":{"months":1},"grace_ms":3600000}"#);
        assert_eq!(serde_json::from_str::<Schedule>(&json).unwrap(), s);
        let bad = r#"{"first_due_ms":0,"period":{"days":1},"grace_ms":86400000}"#;
        let err = serde_json::from_str::<Schedule>(bad).unwrap_err().to_string();
        assert!(err.contains("grace period must be shorter"), "{err}");
        assert!(serde_json::from_str::<Schedule>(r#"{"first_due_ms":0,"period":{"fortnights":1}}"#).is_err());
    }

    #[test]
    fn far_cycles_are_none_not_an_overflow() {
        for period in [Period::Days(MAX_PERIOD), Period::Weeks(MAX_PERIOD), Period::Months(MAX_PERIOD)] {
            let s = Schedule::new(MAX_TIME_MS, period, 0).unwrap();
            assert_eq!(s.due_ms(1), Some(MAX_TIME_MS));
            assert_eq!(s.due_ms(u32::MAX), None, "{period:?}");
        }
    }

    proptest::proptest! {
        /// Due times increase, each grace period ends before the next cycle
        /// is due, and months keep the first day of the month (clamped).
        #[test]
        fn due_times_increase_and_graces_never_overlap(
            first in 0..4_102_444_800_000u64, // before 2100
            unit in 0..3u8,
            n in 1..=24u16,
            grace_share in 0..1_000u64,
            cycles in 2..60u32,
        ) {
            let period = match unit { 0 => Period::Days(n), 1 => Period::Weeks(n), _ => Period::Months(n) };
            let grace = period.shortest_ms() * grace_share / 1_000;
            let s = Schedule::new(first, period, grace).unwrap();
            let (_, _, first_day) = civil_from_days(first / DAY_MS);
            for c in 1..cycles {
                let (due, next) = (s.due_ms(c).unwrap(), s.due_ms(c + 1).unwrap());
                proptest::prop_assert!(due < next);
                proptest::prop_assert!(s.grace_end_ms(c).unwrap() < next);
                proptest::prop_assert_eq!(due % DAY_MS, first % DAY_MS, "the time of day is kept");
                if let Period::Months(_) = period {
                    let (y, m, d) = civil_from_days(due / DAY_MS);
                    proptest::prop_assert_eq!(d, first_day.min(days_in_month(y, m)));
                }
            }
        }
    }

    #[test]
    fn bad_schedules_are_refused_with_a_code() {
        assert_eq!(Schedule::new(0, Period::Days(0), 0), Err(ScheduleError::PeriodOutOfRange));
        assert_eq!(Schedule::new(0, Period::Months(MAX_PERIOD + 1), 0), Err(ScheduleError::PeriodOutOfRange));
        assert_eq!(Schedule::new(MAX_TIME_MS + 1, Period::Days(1), 0), Err(ScheduleError::TimeOutOfRange));
        assert_eq!(Schedule::new(0, Period::Days(1), DAY_MS), Err(ScheduleError::GraceTooLong));
        assert_eq!(
            Schedule::new(0, Period::Months(1), 28 * DAY_MS).map_err(ScheduleError::code),
            Err("grace_too_long")
        );
        assert!(Schedule::new(0, Period::Months(1), 28 * DAY_MS - 1).is_ok());
    }
}
