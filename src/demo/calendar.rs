//! The appointment book: which 15-minute slots each practitioner has taken on each day.
//!
//! One `u64` per practitioner and day (48 slots, 07:00–19:00). A booking goes on the
//! first day, at or after the wanted date, that the practitioner works (per their
//! weekly template), the practice is open, and a long enough run of free slots exists
//! outside the 12:30–13:30 lunch break; so no practitioner is ever double-booked.

use chrono::{Duration, NaiveDate};
use rand::Rng;

use super::clock;
use super::fake::Dice;
use super::practice::Practice;

/// Lunch break on weekdays: slots 22..26 (12:30–13:30).
const LUNCH: u64 = 0b1111 << 22;
/// How many days past the wanted date a booking may go.
const SEARCH_DAYS: i64 = 42;

/// Part of the day a patient prefers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimePref {
    Any,
    Morning,
    /// After school or work: 15:00 onwards.
    Late,
    /// Any time, on the first day with room (emergencies).
    Urgent,
}

impl TimePref {
    fn mask(self) -> u64 {
        match self {
            TimePref::Any | TimePref::Urgent => u64::MAX,
            TimePref::Morning => (1 << 22) - 1,
            TimePref::Late => !((1u64 << 32) - 1),
        }
    }
}

pub(crate) struct Calendar {
    days: usize,
    busy: Vec<u64>,
}

fn run_of(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

impl Calendar {
    pub(crate) fn new(w: &Practice) -> Calendar {
        let days = (w.horizon - w.start).num_days().max(0) as usize + 1;
        Calendar {
            days,
            busy: vec![0; days * w.practitioners.len()],
        }
    }

    fn cell(&mut self, practitioner: usize, day: i64) -> Option<&mut u64> {
        if day < 0 || day as usize >= self.days {
            return None;
        }
        self.busy.get_mut(practitioner * self.days + day as usize)
    }

    /// Reserves `slots` consecutive slots for `practitioner` on the first suitable day
    /// on or after `wanted` and before the booking horizon; returns the day and the
    /// first slot.
    pub(crate) fn book(
        &mut self,
        w: &Practice,
        practitioner: usize,
        wanted: NaiveDate,
        slots: u32,
        pref: TimePref,
        rng: &mut impl Rng,
    ) -> Option<(NaiveDate, u32)> {
        let hours = w.practitioners[practitioner].hours;
        // Start on a random working day of the wanted week, so that wanted dates on
        // days off do not all pile up on the next working day (Mondays).
        let works =
            |o: i64| hours[clock::iso_weekday(wanted + Duration::days(o)) as usize - 1].is_some();
        let week: Vec<i64> = (0..7).filter(|&o| works(o)).collect();
        let first = if week.is_empty() || pref == TimePref::Urgent {
            0
        } else {
            week[rng.gen_range(0..week.len())]
        };
        for offset in first..first + SEARCH_DAYS {
            let day = wanted + Duration::days(offset);
            if day >= w.horizon {
                return None;
            }
            let weekday = clock::iso_weekday(day) as usize - 1;
            let Some((from, to)) = hours[weekday] else {
                continue;
            };
            if clock::is_closed(day)
                || (offset > first && pref != TimePref::Urgent && rng.chance(0.25))
            {
                continue;
            }
            let mut open = run_of(to) & !run_of(from);
            if weekday < 5 {
                open &= !LUNCH;
            }
            let index = w.day_index(day);
            let Some(busy) = self.cell(practitioner, index) else {
                continue;
            };
            let free = open & !*busy;
            let mut starts = free;
            for k in 1..slots {
                starts &= free >> k;
            }
            if starts == 0 {
                continue;
            }
            let preferred = starts & pref.mask();
            let pool = if preferred != 0 { preferred } else { starts };
            let pick = rng.gen_range(0..pool.count_ones());
            let slot = nth_set_bit(pool, pick);
            *busy |= run_of(slots) << slot;
            return Some((day, slot));
        }
        None
    }
}

fn nth_set_bit(mut bits: u64, n: u32) -> u32 {
    for _ in 0..n {
        bits &= bits - 1;
    }
    bits.trailing_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_helpers() {
        assert_eq!(run_of(3), 0b111);
        assert_eq!(nth_set_bit(0b1011_0000, 0), 4);
        assert_eq!(nth_set_bit(0b1011_0000, 2), 7);
        assert_eq!(TimePref::Morning.mask() & (1 << 22), 0);
    }
}
