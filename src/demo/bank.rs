//! Banking: each day's takings per location and payment type become one deposit (card
//! and HICAPS settlements the same day, cash and cheques the next business day), and
//! laboratory work and production (fees charged) are totalled per location and month
//! for the lab's invoice and the running costs that follow the practice's activity.
//!
//! A deposit's id is a function of its day, location and payment type, so a payment
//! can carry its `deposit_id` the moment it is generated; days without takings of a
//! type simply leave a gap in the ids.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate};

use super::clock;
use super::practice::Practice;
use super::refdata::{self, PAYMENT_TYPES};
use super::tables::*;

struct Takings {
    location: usize,
    ptype: usize,
    date: NaiveDate,
    cents: i64,
}

#[derive(Default)]
pub(crate) struct Bank {
    deposits: BTreeMap<i64, Takings>,
    lab: BTreeMap<(usize, i32, u32), i64>,
    production: BTreeMap<(usize, i32, u32), i64>,
}

impl Bank {
    /// Adds a payment received on `paid` to its deposit; `None` while not banked yet.
    pub(crate) fn deposit(
        &mut self,
        w: &Practice,
        location: usize,
        ptype: usize,
        paid: NaiveDate,
        cents: i64,
    ) -> Option<i64> {
        let mut date = paid;
        if !PAYMENT_TYPES[ptype].2 {
            date += Duration::days(1);
            while clock::iso_weekday(date) > 5 || clock::is_closed(date) {
                date += Duration::days(1);
            }
        }
        if date >= w.as_of {
            return None;
        }
        let per_day = (w.locations.len() * PAYMENT_TYPES.len()) as i64;
        let id = w.day_index(date) * per_day + (location * PAYMENT_TYPES.len() + ptype) as i64 + 1;
        let entry = self.deposits.entry(id).or_insert(Takings {
            location,
            ptype,
            date,
            cents: 0,
        });
        entry.cents += cents;
        Some(id)
    }

    /// Adds laboratory work done for `location` on `day`.
    pub(crate) fn add_lab_fee(&mut self, location: usize, day: NaiveDate, cents: i64) {
        *self
            .lab
            .entry((location, day.year(), day.month()))
            .or_default() += cents;
    }

    /// Adds fees charged at `location` on `day`.
    pub(crate) fn add_production(&mut self, location: usize, day: NaiveDate, cents: i64) {
        *self
            .production
            .entry((location, day.year(), day.month()))
            .or_default() += cents;
    }

    /// Lab work of `location` in the month of `day`, in cents.
    pub(crate) fn lab_fees(&self, location: usize, day: NaiveDate) -> i64 {
        self.lab
            .get(&(location, day.year(), day.month()))
            .copied()
            .unwrap_or(0)
    }

    /// Fees charged at `location` in the month of `day`, in cents.
    pub(crate) fn production(&self, location: usize, day: NaiveDate) -> i64 {
        self.production
            .get(&(location, day.year(), day.month()))
            .copied()
            .unwrap_or(0)
    }

    /// Writes the deposits, in id order (day, location, payment type).
    pub(crate) fn write_deposits(&self, w: &Practice, out: &mut Out) {
        for (id, t) in &self.deposits {
            let loc = &w.locations[t.location];
            let banked = loc.zone.to_utc(clock::at(t.date, 17 * 60 + 30));
            let reference = format!(
                "{}-{}-{}",
                loc.code,
                t.date.format("%Y%m%d"),
                refdata::PAYMENT_TYPES[t.ptype].1.to_uppercase()
            );
            out.push(
                DEPOSITS,
                vec![
                    int(*id),
                    int(loc.id),
                    int(t.ptype as i64 + 1),
                    date(t.date),
                    money(t.cents),
                    text(reference),
                    int(loc.manager),
                    time(banked),
                    time(banked),
                ],
            );
        }
    }
}
