//! The practice as the generator sees it while writing history: locations, the people
//! who work there and their weekly hours, the fee schedules, and the time frame.

use chrono::{NaiveDate, NaiveDateTime};

use super::clock::{self, Zone};

/// The appointment grid starts at 07:00; its 48 slots of 15 minutes reach 19:00.
pub(crate) const GRID_START_MINUTES: i64 = 7 * 60;
pub(crate) const SLOT_MINUTES: i64 = 15;

/// What a practitioner does, as stored in `practitioners.specialty`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Specialty {
    Dentist,
    Hygienist,
    Oht,
    Orthodontist,
    Endodontist,
    Periodontist,
    OralSurgeon,
}

impl Specialty {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Specialty::Dentist => "General Dentist",
            Specialty::Hygienist => "Dental Hygienist",
            Specialty::Oht => "Oral Health Therapist",
            Specialty::Orthodontist => "Orthodontist",
            Specialty::Endodontist => "Endodontist",
            Specialty::Periodontist => "Periodontist",
            Specialty::OralSurgeon => "Oral Surgeon",
        }
    }

    pub(crate) fn is_hygiene(self) -> bool {
        matches!(self, Specialty::Hygienist | Specialty::Oht)
    }
}

/// A location and who works there (indexes into `Practice::practitioners`).
pub(crate) struct Location {
    pub id: i64,
    pub code: String,
    pub zone: Zone,
    pub state: &'static str,
    pub dentists: Vec<usize>,
    pub hygienists: Vec<usize>,
    pub specialists: Vec<usize>,
    pub receptionists: Vec<i64>,
    pub manager: i64,
}

/// A practitioner with the slot window worked on each ISO weekday (index 0 = Monday).
pub(crate) struct Practitioner {
    pub id: i64,
    pub location: usize,
    pub specialty: Specialty,
    pub hours: [Option<(u32, u32)>; 7],
    pub chair: String,
    pub user_id: i64,
}

/// Kinds of fee schedule, in `fee_schedules` order within each financial year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FeeKind {
    Standard,
    Pensioner,
    Dva,
    /// A preferred-provider schedule: index into `refdata::PREFERRED_FUNDS`.
    Preferred(usize),
}

/// Fees of every schedule kind in every financial year, in cents.
pub(crate) struct Fees {
    pub first_fy: i32,
    pub years: usize,
    pub kinds: Vec<FeeKind>,
    /// `[year][kind][item]`.
    pub cents: Vec<i64>,
    pub items: usize,
}

impl Fees {
    fn year_index(&self, date: NaiveDate) -> usize {
        let fy = clock::financial_year(date) - self.first_fy;
        (fy.max(0) as usize).min(self.years - 1)
    }

    fn kind_index(&self, kind: FeeKind) -> usize {
        self.kinds.iter().position(|k| *k == kind).unwrap_or(0)
    }

    /// The unit fee of `item` under `kind` on `date`.
    pub(crate) fn fee(&self, kind: FeeKind, date: NaiveDate, item: usize) -> i64 {
        let (y, k) = (self.year_index(date), self.kind_index(kind));
        self.cents[(y * self.kinds.len() + k) * self.items + item]
    }
}

/// Everything shared by all patients' histories.
pub(crate) struct Practice {
    pub seed: u64,
    pub as_of: NaiveDate,
    /// First day of recorded history (the system went live just before).
    pub start: NaiveDate,
    /// First day that is not booked yet (about three months after `as_of`).
    pub horizon: NaiveDate,
    pub locations: Vec<Location>,
    pub practitioners: Vec<Practitioner>,
    pub fees: Fees,
}

impl Practice {
    /// Days from `start` to `date`.
    pub(crate) fn day_index(&self, date: NaiveDate) -> i64 {
        (date - self.start).num_days()
    }

    /// The local wall-clock instant before which everything has happened.
    pub(crate) fn now_local(&self) -> NaiveDateTime {
        clock::at(self.as_of, 0)
    }

    /// A practice-local time at `location` as UTC.
    pub(crate) fn utc(&self, location: usize, local: NaiveDateTime) -> NaiveDateTime {
        self.locations[location].zone.to_utc(local)
    }
}

/// The local time of a slot on `date`.
pub(crate) fn slot_time(date: NaiveDate, slot: u32) -> NaiveDateTime {
    clock::at(date, GRID_START_MINUTES + slot as i64 * SLOT_MINUTES)
}

/// `HH:MM` of a slot boundary.
pub(crate) fn slot_hhmm(slot: u32) -> String {
    let m = GRID_START_MINUTES + slot as i64 * SLOT_MINUTES;
    format!("{:02}:{:02}", m / 60, m % 60)
}
