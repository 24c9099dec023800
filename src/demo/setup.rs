//! The practice setup: locations, practitioners and their weekly templates, roles and
//! users, and every lookup table (funds, payers, referral sources, statuses, types,
//! recall types, service items, fee schedules, payment types, expense categories).
//!
//! Sizes scale from the patient count: 1 + N/5000 locations (at most 5) and one
//! practitioner per 400 patients (at least 3), spread over the locations.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::catalogue;
use super::clock::{self, add_months};
use super::fake::{self, Dice};
use super::names;
use super::practice::{slot_hhmm, Location, Practice, Practitioner, Specialty, SLOT_MINUTES};
use super::refdata;
use super::tables::*;
use crate::value::Value;

/// Per location, by position: the group hires general dentists first, then hygiene,
/// then one visiting specialist per ten practitioners.
const STAFFING: [Option<Specialty>; 10] = [
    Some(Specialty::Dentist),
    Some(Specialty::Dentist),
    Some(Specialty::Hygienist),
    Some(Specialty::Dentist),
    Some(Specialty::Oht),
    Some(Specialty::Dentist),
    Some(Specialty::Hygienist),
    Some(Specialty::Dentist),
    Some(Specialty::Dentist),
    None,
];
const SPECIALISTS: [Specialty; 4] = [
    Specialty::Orthodontist,
    Specialty::Endodontist,
    Specialty::Periodontist,
    Specialty::OralSurgeon,
];
const COLOURS: &[&str] = &[
    "#1E88E5", "#43A047", "#FB8C00", "#8E24AA", "#E53935", "#00ACC1", "#FDD835", "#6D4C41",
    "#3949AB", "#C0CA33", "#D81B60", "#546E7A",
];

/// Builds the practice for `patients` patients and writes the setup tables.
pub(crate) fn build(seed: u64, patients: u32, as_of: NaiveDate, out: &mut Out) -> Practice {
    let mut rng = fake::rng(seed, fake::STREAM_SETUP);
    let start = add_months(as_of, -96);
    let go_live = start - Duration::days(30);
    let n_loc = (1 + patients as usize / 5000).min(refdata::SITES.len());
    let n_pract = (patients as usize / 400).max(3);

    let mut locations = Vec::new();
    for (i, site) in refdata::SITES.iter().take(n_loc).enumerate() {
        let code: String = site
            .suburb
            .chars()
            .filter(|c| c.is_ascii_alphabetic())
            .take(3)
            .collect();
        let created = site.zone.to_utc(clock::at(go_live, 9 * 60 + i as i64 * 7));
        out.push(
            LOCATIONS,
            vec![
                int(i as i64 + 1),
                text(format!("{} {}", refdata::BRAND, site.suburb)),
                text(code.to_uppercase()),
                text(site.street),
                text(site.suburb),
                text(site.state),
                text(site.postcode),
                text(fake::landline(&mut rng, site.state)),
                text(format!(
                    "{}@{}",
                    site.suburb.to_lowercase().replace(' ', ""),
                    refdata::DOMAIN
                )),
                text(fake::abn(&mut rng)),
                text(site.zone.iana()),
                flag(true),
                time(created),
                time(created),
            ],
        );
        locations.push(Location {
            id: i as i64 + 1,
            code: code.to_uppercase(),
            zone: site.zone,
            state: site.state,
            dentists: Vec::new(),
            hygienists: Vec::new(),
            specialists: Vec::new(),
            receptionists: Vec::new(),
            manager: 0,
        });
    }

    let mut practitioners = Vec::new();
    for i in 0..n_pract {
        let loc = i % n_loc;
        let position = i / n_loc;
        let specialty = STAFFING[position % STAFFING.len()]
            .unwrap_or(SPECIALISTS[(position / STAFFING.len()) % SPECIALISTS.len()]);
        let idx = practitioners.len();
        match specialty {
            Specialty::Dentist => locations[loc].dentists.push(idx),
            s if s.is_hygiene() => locations[loc].hygienists.push(idx),
            _ => locations[loc].specialists.push(idx),
        }
        let chair_no = match specialty {
            Specialty::Dentist | Specialty::Hygienist | Specialty::Oht => position + 1,
            _ => position % 4 + 1,
        };
        practitioners.push(Practitioner {
            id: idx as i64 + 1,
            location: loc,
            specialty,
            hours: weekly_hours(&mut rng, specialty),
            chair: format!("Surgery {chair_no}"),
            user_id: 0,
        });
    }

    write_practitioners(&mut rng, &locations, &mut practitioners, go_live, out);
    write_users(
        &mut rng,
        &mut locations,
        &mut practitioners,
        go_live,
        as_of,
        out,
    );
    catalogue::write_lookups(&locations, go_live, out);
    write_templates(&practitioners, &locations, start, go_live, out);
    let fees = catalogue::write_fees(start, go_live, as_of, &locations, out);

    let horizon = as_of + Duration::days(91);
    Practice {
        seed,
        as_of,
        start,
        horizon,
        locations,
        practitioners,
        fees,
    }
}

/// The slot window worked on each weekday: dentists mostly full time (some Saturdays),
/// hygiene three to five days, specialists one or two days a week.
fn weekly_hours(rng: &mut ChaCha8Rng, specialty: Specialty) -> [Option<(u32, u32)>; 7] {
    let weekdays: Vec<usize> = match specialty {
        Specialty::Dentist if rng.chance(0.6) => (0..5).collect(),
        Specialty::Dentist => {
            let off = rng.gen_range(0..5);
            (0..5).filter(|d| *d != off).collect()
        }
        s if s.is_hygiene() => {
            let n = rng.between(3, 5) as usize;
            let mut days: Vec<usize> = (0..5).collect();
            while days.len() > n {
                days.remove(rng.gen_range(0..days.len()));
            }
            days
        }
        _ => {
            let first = rng.gen_range(0..5);
            if rng.chance(0.4) {
                vec![first, (first + 2) % 5]
            } else {
                vec![first]
            }
        }
    };
    let begin = *rng.pick(&[4, 4, 4, 6, 6, 8]);
    let end = *rng.pick(&[40, 40, 42, 44]);
    let late = if rng.chance(0.25) {
        weekdays.last().copied()
    } else {
        None
    };
    let mut hours = [None; 7];
    for d in weekdays {
        hours[d] = Some(if Some(d) == late {
            (begin + 8, 48)
        } else {
            (begin, end)
        });
    }
    if specialty == Specialty::Dentist && rng.chance(0.35) {
        hours[5] = Some((6, 24));
    }
    hours
}

fn person(rng: &mut ChaCha8Rng) -> (&'static str, &'static str, bool) {
    let female = rng.chance(0.6);
    let born = rng.gen_range(1965..2000);
    let first = names::given_name(rng, female, born).0;
    (first, *rng.pick(names::SURNAMES), female)
}

fn staff_email(first: &str, last: &str) -> String {
    let clean = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii_alphabetic())
            .collect::<String>()
            .to_lowercase()
    };
    format!("{}.{}@{}", clean(first), clean(last), refdata::DOMAIN)
}

fn write_practitioners(
    rng: &mut ChaCha8Rng,
    locations: &[Location],
    practitioners: &mut [Practitioner],
    go_live: NaiveDate,
    out: &mut Out,
) {
    for p in practitioners.iter() {
        let (first, last, female) = person(rng);
        let title = match p.specialty {
            s if s.is_hygiene() => {
                if female {
                    "Ms"
                } else {
                    "Mr"
                }
            }
            _ => "Dr",
        };
        let loc = &locations[p.location];
        let created = loc.zone.to_utc(clock::at(go_live, 10 * 60 + p.id));
        out.push(
            PRACTITIONERS,
            vec![
                int(p.id),
                text(title),
                text(first),
                text(last),
                text(fake::provider_number(rng, p.location + 1)),
                text(format!("DEN{}", rng.digits(10))),
                text(p.specialty.label()),
                int(loc.id),
                text(staff_email(first, last)),
                text(fake::mobile(rng)),
                text(COLOURS[(p.id as usize - 1) % COLOURS.len()]),
                flag(true),
                time(created),
                time(created),
            ],
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn user_row(
    id: i64,
    role: i64,
    practitioner: Option<i64>,
    location: i64,
    first: &str,
    last: &str,
    active: bool,
    last_login: NaiveDateTime,
    created: NaiveDateTime,
) -> Vec<crate::value::Value> {
    let clean = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii_alphabetic())
            .collect::<String>()
            .to_lowercase()
    };
    vec![
        int(id),
        int(role),
        opt_int(practitioner),
        int(location),
        text(format!("{}{}{}", &clean(first)[..1], clean(last), id)),
        text(staff_email(first, last)),
        text(first),
        text(last),
        flag(active),
        time(last_login),
        time(created),
        time(last_login.max(created)),
    ]
}

fn write_users(
    rng: &mut ChaCha8Rng,
    locations: &mut [Location],
    practitioners: &mut [Practitioner],
    go_live: NaiveDate,
    as_of: NaiveDate,
    out: &mut Out,
) {
    let mut next_id = 1;
    let zones: Vec<_> = locations.iter().map(|l| l.zone).collect();
    let recent = |rng: &mut ChaCha8Rng| {
        clock::at(
            as_of - Duration::days(rng.between(1, 4)),
            rng.between(7 * 60, 18 * 60),
        )
    };
    let mut add = |out: &mut Out,
                   rng: &mut ChaCha8Rng,
                   role: i64,
                   loc: usize,
                   pract: Option<i64>,
                   active: bool| {
        let id = next_id;
        next_id += 1;
        let (first, last, _) = person(rng);
        let zone = zones[loc];
        let created = zone.to_utc(clock::at(go_live, 8 * 60 + id));
        let login = if active {
            recent(rng)
        } else {
            clock::at(go_live + Duration::days(rng.between(200, 1500)), 17 * 60)
        };
        let login = zone.to_utc(login);
        out.push(
            USERS,
            user_row(
                id,
                role,
                pract,
                loc as i64 + 1,
                first,
                last,
                active,
                login,
                created,
            ),
        );
        id
    };
    add(out, rng, refdata::ROLE_ADMIN, 0, None, true);
    add(out, rng, refdata::ROLE_ACCOUNTS, 0, None, true);
    for (loc, site) in locations.iter_mut().enumerate() {
        site.manager = add(out, rng, refdata::ROLE_MANAGER, loc, None, true);
        let staffed = site.dentists.len() + site.hygienists.len();
        for _ in 0..(staffed / 2).max(2) {
            let id = add(out, rng, refdata::ROLE_RECEPTION, loc, None, true);
            site.receptionists.push(id);
        }
        add(out, rng, refdata::ROLE_RECEPTION, loc, None, false);
        for _ in 0..site.dentists.len() {
            add(out, rng, refdata::ROLE_ASSISTANT, loc, None, true);
        }
    }
    for p in practitioners.iter_mut() {
        let role = if p.specialty.is_hygiene() {
            refdata::ROLE_HYGIENIST
        } else {
            refdata::ROLE_DENTIST
        };
        p.user_id = add(out, rng, role, p.location, Some(p.id), true);
    }
}

fn write_templates(
    practitioners: &[Practitioner],
    locations: &[Location],
    start: NaiveDate,
    go_live: NaiveDate,
    out: &mut Out,
) {
    let mut id = 0;
    for p in practitioners {
        let created = locations[p.location]
            .zone
            .to_utc(clock::at(go_live, 11 * 60 + p.id));
        for (day, window) in p.hours.iter().enumerate() {
            let Some((from, to)) = window else { continue };
            id += 1;
            out.push(
                SCHEDULE_TEMPLATES,
                vec![
                    int(id),
                    int(p.id),
                    int(locations[p.location].id),
                    int(day as i64 + 1),
                    text(slot_hhmm(*from)),
                    text(slot_hhmm(*to)),
                    int(SLOT_MINUTES),
                    date(start),
                    Value::Null,
                    time(created),
                    time(created),
                ],
            );
        }
    }
}
