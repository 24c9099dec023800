//! The practice's catalogues: roles, health funds, referral sources, third-party
//! payers, appointment statuses and types, recall types, ADA service items, payment
//! types, expense categories, and the fee schedules of every financial year.

use chrono::{Duration, NaiveDate};

use super::clock;
use super::practice::{FeeKind, Fees, Location};
use super::refdata::{self, ITEMS};
use super::tables::*;
use crate::value::Value;

pub(crate) fn write_lookups(locations: &[Location], go_live: NaiveDate, out: &mut Out) {
    let created = locations[0].zone.to_utc(clock::at(go_live, 9 * 60));
    let stamp = |row: &mut Vec<crate::value::Value>| {
        row.push(time(created));
        row.push(time(created));
    };
    for (i, (name, description, admin)) in refdata::ROLES.iter().enumerate() {
        let mut row = vec![
            int(i as i64 + 1),
            text(*name),
            text(*description),
            flag(*admin),
        ];
        stamp(&mut row);
        out.push(USER_ROLES, row);
    }
    for (i, f) in refdata::FUNDS.iter().enumerate() {
        let mut row = vec![
            int(i as i64 + 1),
            text(f.name),
            text(f.code),
            opt_text(f.phone),
            text(f.website),
            flag(true),
        ];
        stamp(&mut row);
        out.push(HEALTH_FUNDS, row);
    }
    for (i, (name, kind, _)) in refdata::REFERRAL_SOURCES.iter().enumerate() {
        let mut row = vec![int(i as i64 + 1), text(*name), text(*kind), flag(true)];
        stamp(&mut row);
        out.push(REFERRAL_SOURCES, row);
    }
    for (i, (name, kind, phone)) in refdata::THIRD_PARTIES.iter().enumerate() {
        let contact = if *kind == "government" {
            None
        } else {
            Some("Claims Officer")
        };
        let mut row = vec![
            int(i as i64 + 1),
            text(*name),
            text(*kind),
            opt_text(contact),
            text(*phone),
            Value::Null,
            Value::Null,
            flag(true),
        ];
        stamp(&mut row);
        out.push(THIRD_PARTIES, row);
    }
    for (i, (name, code, done, cancelled, colour)) in refdata::STATUSES.iter().enumerate() {
        let mut row = vec![
            int(i as i64 + 1),
            text(*name),
            text(*code),
            flag(*done),
            flag(*cancelled),
            int(i as i64 + 1),
            text(*colour),
        ];
        stamp(&mut row);
        out.push(APPOINTMENT_STATUSES, row);
    }
    for (i, (name, minutes, colour)) in refdata::APPOINTMENT_TYPES.iter().enumerate() {
        let mut row = vec![
            int(i as i64 + 1),
            text(*name),
            int(*minutes),
            text(*colour),
            flag(true),
        ];
        stamp(&mut row);
        out.push(APPOINTMENT_TYPES, row);
    }
    for (i, (name, months, description)) in refdata::RECALL_TYPES.iter().enumerate() {
        let mut row = vec![
            int(i as i64 + 1),
            text(*name),
            int(*months),
            text(*description),
            flag(true),
        ];
        stamp(&mut row);
        out.push(RECALL_TYPES, row);
    }
    for (i, it) in ITEMS.iter().enumerate() {
        let mut row = vec![
            int(i as i64 + 1),
            text(it.number),
            text(it.description),
            text(it.category),
            money(it.fee_cents),
            flag(it.gst),
            opt_int(it.minutes),
            flag(true),
        ];
        stamp(&mut row);
        out.push(SERVICE_ITEMS, row);
    }
    for (i, (name, code, electronic)) in refdata::PAYMENT_TYPES.iter().enumerate() {
        let mut row = vec![
            int(i as i64 + 1),
            text(*name),
            text(*code),
            flag(*electronic),
            flag(true),
        ];
        stamp(&mut row);
        out.push(PAYMENT_TYPES, row);
    }
    for (i, (name, code)) in refdata::EXPENSE_CATEGORIES.iter().enumerate() {
        let mut row = vec![int(i as i64 + 1), text(*name), text(*code), flag(true)];
        stamp(&mut row);
        out.push(EXPENSE_CATEGORIES, row);
    }
}

/// Fee schedules per financial year: Standard, Pensioner, DVA and the preferred-provider
/// schedules. Fees rise about 3.5% a year; the current year's Standard fees are the
/// `refdata` fees.
pub(crate) fn write_fees(
    start: NaiveDate,
    go_live: NaiveDate,
    as_of: NaiveDate,
    locations: &[Location],
    out: &mut Out,
) -> Fees {
    let first_fy = clock::financial_year(start);
    let last_fy = clock::financial_year(as_of);
    let years = (last_fy - first_fy + 1) as usize;
    let mut kinds = vec![FeeKind::Standard, FeeKind::Pensioner, FeeKind::Dva];
    kinds.extend((0..refdata::PREFERRED_FUNDS.len()).map(FeeKind::Preferred));
    let round = |cents: f64, step: i64| ((cents / step as f64).round() as i64) * step;
    let mut cents = Vec::with_capacity(years * kinds.len() * ITEMS.len());
    let (mut schedule_id, mut item_row) = (0i64, 0i64);
    for y in 0..years {
        let fy = first_fy + y as i32;
        let from = NaiveDate::from_ymd_opt(fy, 7, 1).expect("1 July exists");
        let to = NaiveDate::from_ymd_opt(fy + 1, 6, 30).expect("30 June exists");
        let current = fy == last_fy;
        let reviewed = (from - Duration::days(14)).max(go_live);
        let created = locations[0].zone.to_utc(clock::at(reviewed, 10 * 60));
        let index = 1.035f64.powi(last_fy - fy);
        for kind in &kinds {
            schedule_id += 1;
            let (name, fund) = match kind {
                FeeKind::Standard => ("Standard".to_string(), None),
                FeeKind::Pensioner => ("Pensioner".to_string(), None),
                FeeKind::Dva => ("DVA".to_string(), None),
                FeeKind::Preferred(i) => {
                    let (fund, name) = refdata::PREFERRED_FUNDS[*i];
                    (name.to_string(), Some(fund as i64 + 1))
                }
            };
            out.push(
                FEE_SCHEDULES,
                vec![
                    int(schedule_id),
                    text(format!("{name} {}-{:02}", fy, (fy + 1) % 100)),
                    opt_int(fund),
                    date(from),
                    opt_date((!current).then_some(to)),
                    flag(current && *kind == FeeKind::Standard),
                    flag(current),
                    time(created),
                    time(created),
                ],
            );
            for (i, it) in ITEMS.iter().enumerate() {
                let standard = round(it.fee_cents as f64 / index, 50);
                let fee = match kind {
                    FeeKind::Standard => standard,
                    FeeKind::Pensioner => round(standard as f64 * 0.9, 50),
                    FeeKind::Dva => round(standard as f64 * 0.85, 5),
                    FeeKind::Preferred(_) => round(standard as f64 * 0.92, 5),
                };
                cents.push(fee);
                item_row += 1;
                out.push(
                    FEE_SCHEDULE_ITEMS,
                    vec![
                        int(item_row),
                        int(schedule_id),
                        int(i as i64 + 1),
                        money(fee),
                        time(created),
                        time(created),
                    ],
                );
            }
        }
    }
    Fees {
        first_fy,
        years,
        kinds,
        cents,
        items: ITEMS.len(),
    }
}
