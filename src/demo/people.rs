//! Patients: who they are (demographics, contact details, cover and payers) and how
//! they behave (how reliably they come back, what recall they are on).

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::calendar::TimePref;
use super::clock;
use super::fake::{self, Dice};
use super::names;
use super::practice::{FeeKind, Practice};
use super::refdata;
use super::tables::*;
use crate::value::Row;

/// How a patient keeps up with their recalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engagement {
    /// Comes back on time, often pre-books the next visit.
    Loyal,
    /// Comes back late, sometimes skips.
    Irregular,
    /// Usually one visit (or a short course) and gone.
    OneOff,
}

pub(crate) struct Patient {
    pub id: i64,
    pub location: usize,
    pub dentist: usize,
    pub hygienist: Option<usize>,
    pub dob: NaiveDate,
    pub email: Option<String>,
    pub mobile: Option<String>,
    pub sms_opt_in: bool,
    pub email_opt_in: bool,
    pub fund: Option<usize>,
    pub third_party: Option<usize>,
    pub fee_kind: FeeKind,
    pub engagement: Engagement,
    pub recall_type: usize,
    pub pref: TimePref,
    /// Staff or family of staff: 'staff' / 'family' discounts.
    pub staff_discount: Option<&'static str>,
    pub pensioner_discount: bool,
    /// When they first booked (practice-local).
    pub joined: NaiveDateTime,
    /// Dies before `as_of` (old patients only): history stops, record inactive.
    pub deceased: bool,
    row: Row,
}

impl Patient {
    pub(crate) fn age_on(&self, date: NaiveDate) -> i64 {
        let years = date.year() - self.dob.year();
        let before_birthday = (date.month(), date.day()) < (self.dob.month(), self.dob.day());
        (years - i32::from(before_birthday)) as i64
    }

    /// The patient's row with the state only known at the end of their history.
    pub(crate) fn into_row(mut self, active: bool, updated: NaiveDateTime) -> Row {
        // Columns: … active (25), deceased (26), notes (27), created_at (28), updated_at (29).
        self.row[25] = flag(active);
        self.row[29] = time(updated.max(match self.row[28] {
            crate::value::Value::DateTime(t) => t,
            _ => updated,
        }));
        self.row
    }
}

const AGE_BANDS: &[((i64, i64), u32)] = &[
    ((1, 4), 4),
    ((5, 12), 12),
    ((13, 17), 7),
    ((18, 29), 15),
    ((30, 44), 22),
    ((45, 64), 25),
    ((65, 79), 12),
    ((80, 94), 3),
];

/// A new patient of the practice, joining some time in the recorded history.
pub(crate) fn new_patient(w: &Practice, id: i64, rng: &mut ChaCha8Rng) -> Patient {
    let history_days = (w.as_of - w.start).num_days();
    // Two in five were already patients when the system went live.
    let join_day = if rng.chance(0.4) {
        rng.between(0, 20)
    } else {
        rng.between(0, history_days - 1)
    };
    let join_date = w.start + Duration::days(join_day);
    let online = rng.chance(0.2);
    let join_minute = if online {
        rng.between(19 * 60, 22 * 60)
    } else {
        rng.between(8 * 60, 17 * 60 + 30)
    };
    let joined = clock::at(join_date, join_minute) + Duration::seconds(rng.between(0, 59));

    let location = rng.gen_range(0..w.locations.len());
    let loc = &w.locations[location];
    let dentist = *rng.pick(&loc.dentists);
    let hygienist =
        (!loc.hygienists.is_empty() && rng.chance(0.5)).then(|| *rng.pick(&loc.hygienists));

    let (lo, hi) = *rng.weighted(AGE_BANDS);
    let age = rng.between(lo, hi);
    let dob = join_date - Duration::days(age * 365 + rng.between(0, 364));
    let age_now = (w.as_of - dob).num_days() / 365;
    let r = rng.gen_range(0..1000);
    let (female, gender) = match r {
        0..=509 => (true, "female"),
        510..=984 => (false, "male"),
        985..=989 => (rng.chance(0.5), "non_binary"),
        _ => (rng.chance(0.5), "not_stated"),
    };
    let (first, short) = names::given_name(rng, female, dob.year());
    let last = *rng.pick(names::SURNAMES);
    let title = match (female, age) {
        _ if gender == "non_binary" => "Mx",
        (false, a) if a < 16 => "Mstr",
        (false, _) => {
            if rng.chance(0.02) {
                "Dr"
            } else {
                "Mr"
            }
        }
        (true, a) if a < 18 => "Miss",
        (true, _) => *rng.weighted(&[("Ms", 40), ("Mrs", 45), ("Miss", 12), ("Dr", 3)]),
    };
    let preferred = short.filter(|_| rng.chance(0.25));

    let adult = age >= 16;
    let email = (rng.chance(if adult { 0.82 } else { 0.5 })).then(|| {
        let (f, l) = if adult {
            (first, last)
        } else {
            (names::given_name(rng, true, 1985).0, last)
        };
        format!(
            "{}@{}",
            fake::email_local(rng, f, l),
            rng.weighted(names::EMAIL_DOMAINS)
        )
    });
    let mobile = rng
        .chance(if adult { 0.93 } else { 0.8 })
        .then(|| fake::mobile(rng));
    let (suburb, postcode, state) = loop {
        let s = *rng.pick(names::SUBURBS);
        if s.2 == loc.state || rng.chance(0.05) {
            break s;
        }
    };
    let home_phone = rng
        .chance(if age >= 65 { 0.45 } else { 0.12 })
        .then(|| fake::landline(rng, state));
    let number = rng.between(1, 180);
    let street = format!(
        "{} {}",
        rng.pick(names::STREETS),
        rng.weighted(names::STREET_TYPES)
    );
    let address = if rng.chance(0.18) {
        format!("{}/{} {}", rng.between(1, 40), number, street)
    } else {
        format!("{number} {street}")
    };

    let fund = rng
        .chance(if (18..30).contains(&age) { 0.45 } else { 0.58 })
        .then(|| {
            let weights: Vec<u32> = refdata::FUNDS
                .iter()
                .map(|f| {
                    if loc.state == "WA" {
                        f.wa_weight
                    } else {
                        f.weight
                    }
                })
                .collect();
            rng.weighted_index(&weights)
        });
    let member_digits = rng.between(8, 10) as usize;
    let member = fund.map(|_| rng.digits(member_digits));
    let medicare = rng.chance(0.96).then(|| fake::medicare_number(rng));
    let irn = medicare.as_ref().map(|_| rng.between(1, 5).to_string());
    let third_party = if age_now >= 65 && rng.chance(0.06) {
        Some(refdata::TP_DVA)
    } else if (2..=17).contains(&age) && rng.chance(0.35) {
        Some(refdata::TP_CDBS)
    } else if adult && rng.chance(0.006) {
        Some(rng.between(2, refdata::THIRD_PARTIES.len() as i64 - 1) as usize)
    } else {
        None
    };
    let dva = (third_party == Some(refdata::TP_DVA)).then(|| {
        let state_letter = match state {
            "VIC" | "TAS" => 'V',
            "QLD" => 'Q',
            "WA" => 'W',
            "SA" => 'S',
            _ => 'N',
        };
        format!("{state_letter}X{}", rng.digits(6))
    });
    let pensioner = age_now >= 67 && rng.chance(0.6);
    let fee_kind = match (third_party, fund) {
        (Some(refdata::TP_DVA), _) => FeeKind::Dva,
        _ if pensioner => FeeKind::Pensioner,
        (_, Some(f)) => refdata::PREFERRED_FUNDS
            .iter()
            .position(|(pf, _)| *pf == f)
            .map_or(FeeKind::Standard, FeeKind::Preferred),
        _ => FeeKind::Standard,
    };
    let referral = rng.chance(0.85).then(|| {
        let weights: Vec<u32> = refdata::REFERRAL_SOURCES.iter().map(|r| r.2).collect();
        rng.weighted_index(&weights)
    });
    let sms_opt_in = mobile.is_some() && rng.chance(0.88);
    let email_opt_in = email.is_some() && rng.chance(0.55);
    let engagement = *rng.weighted(&[
        (Engagement::Loyal, 56),
        (Engagement::Irregular, 32),
        (Engagement::OneOff, 12),
    ]);
    let recall_type = if age < 16 {
        refdata::RT_CHILD
    } else {
        *rng.weighted(&[
            (refdata::RT_SIX_MONTH, 66),
            (refdata::RT_ANNUAL, 30),
            (refdata::RT_PERIO, 4),
        ])
    };
    let pref = match age {
        5..=17 => TimePref::Late,
        65.. => TimePref::Morning,
        _ => *rng.weighted(&[
            (TimePref::Any, 60),
            (TimePref::Morning, 20),
            (TimePref::Late, 20),
        ]),
    };
    let notes = if adult {
        rng.chance(0.08).then(|| *rng.pick(names::ADULT_NOTES))
    } else {
        rng.chance(0.1).then(|| *rng.pick(names::CHILD_NOTES))
    };
    let deceased = age_now >= 75 && rng.chance(0.04);
    let staff_discount = if rng.chance(0.003) {
        Some(*rng.pick(&["staff", "family"]))
    } else {
        None
    };
    let pensioner_discount = fee_kind == FeeKind::Standard && age_now >= 67 && rng.chance(0.3);

    let created = w.utc(location, joined);
    let row = vec![
        int(id),
        text(title),
        text(first),
        text(last),
        opt_text(preferred),
        date(dob),
        text(gender),
        opt_text(email.clone()),
        opt_text(mobile.clone()),
        opt_text(home_phone),
        text(address),
        text(suburb),
        text(state),
        text(postcode),
        opt_int(fund.map(|f| f as i64 + 1)),
        opt_text(member),
        opt_text(medicare),
        opt_text(irn),
        opt_text(dva),
        opt_int(third_party.map(|t| t as i64 + 1)),
        opt_int(referral.map(|r| r as i64 + 1)),
        int(w.practitioners[dentist].id),
        int(loc.id),
        flag(sms_opt_in),
        flag(email_opt_in),
        flag(true),
        flag(deceased),
        opt_text(notes),
        time(created),
        time(created),
    ];
    Patient {
        id,
        location,
        dentist,
        hygienist,
        dob,
        email,
        mobile,
        sms_opt_in,
        email_opt_in,
        fund,
        third_party,
        fee_kind,
        engagement,
        recall_type,
        pref,
        staff_discount,
        pensioner_discount,
        joined,
        deceased,
        row,
    }
}

/// Whether `PATIENTS` column positions used by `into_row` still hold.
#[cfg(test)]
mod tests {
    use super::super::tables::{DEFS, PATIENTS};

    #[test]
    fn late_columns_are_where_into_row_expects() {
        let cols = DEFS[PATIENTS].columns;
        assert_eq!(cols[25], "active");
        assert_eq!(cols[26], "deceased");
        assert_eq!(cols[28], "created_at");
        assert_eq!(cols[29], "updated_at");
    }
}
