//! The running costs of each location, month by month: rent, wages and super, dental
//! supplies, the laboratory (billed for the work the clinical history actually sent
//! out), utilities, phones, software, marketing, insurance, cleaning, bank fees,
//! accountants and courses.

use chrono::{Datelike, Duration, NaiveDate};
use rand_chacha::ChaCha8Rng;

use super::bank::Bank;
use super::clock;
use super::fake::{self, Dice};
use super::practice::Practice;
use super::tables::*;

// Expense categories (index into `refdata::EXPENSE_CATEGORIES`).
const SUPPLIES: usize = 0;
const LAB: usize = 1;
const RENT: usize = 2;
const WAGES: usize = 3;
const SUPER: usize = 4;
const UTILITIES: usize = 5;
const PHONE: usize = 6;
const MAINTENANCE: usize = 7;
const MARKETING: usize = 8;
const INSURANCE: usize = 9;
const SOFTWARE: usize = 10;
const CLEANING: usize = 11;
const BANK_FEES: usize = 12;
const PROFESSIONAL: usize = 13;
const EDUCATION: usize = 14;

const SUPPLIERS: &[&str] = &[
    "Henry Schein Halas",
    "Ainsworth Dental",
    "Dentsply Sirona",
    "SDI Limited",
    "Ivoclar Vivadent",
    "Kulzer",
];
const LABS: &[&str] = &[
    "Precision Dental Laboratory",
    "Coastline Dental Lab",
    "Artisan Ceramics Dental Lab",
];

fn water_authority(state: &str) -> &'static str {
    match state {
        "VIC" => "Yarra Valley Water",
        "QLD" => "Urban Utilities",
        "WA" => "Water Corporation",
        _ => "Sydney Water",
    }
}

struct Expense {
    category: usize,
    supplier: String,
    day: NaiveDate,
    cents: i64,
    gst: bool,
    description: String,
    method: &'static str,
}

/// Writes every location's expenses from the first month of history to `as_of`.
/// Wages, supplies and merchant fees follow the month's production (fees charged), rent
/// follows the location's average production, the rest are fixed costs that rise about
/// 3% a year.
pub(crate) fn write(w: &Practice, bank: &Bank, out: &mut Out) {
    let mut rng = fake::rng(w.seed, fake::STREAM_EXPENSES);
    let first = NaiveDate::from_ymd_opt(w.start.year(), w.start.month(), 1).unwrap_or(w.start);
    let months: Vec<NaiveDate> =
        std::iter::successors(Some(first), |m| Some(clock::add_months(*m, 1)))
            .take_while(|m| *m < w.as_of)
            .collect();
    let mut id = 0;
    for month in &months {
        for (l, loc) in w.locations.iter().enumerate() {
            let average = months.iter().map(|m| bank.production(l, *m)).sum::<i64>()
                / months.len().max(1) as i64;
            let staff = (loc.dentists.len() + loc.hygienists.len() + loc.specialists.len()) as i64;
            let ctx = Month {
                month: *month,
                production: bank.production(l, *month),
                average,
                staff,
            };
            let mut items = month_expenses(&mut rng, w, l, &ctx);
            let lab = bank.lab_fees(l, *month);
            if lab > 0 {
                items.push(Expense {
                    category: LAB,
                    supplier: LABS[l % LABS.len()].to_string(),
                    day: clock::add_months(*month, 1) - Duration::days(1),
                    cents: lab,
                    gst: true,
                    description: format!(
                        "Crowns, dentures and appliances – {}",
                        month.format("%B %Y")
                    ),
                    method: "bank_transfer",
                });
            }
            for e in items
                .into_iter()
                .filter(|e| e.day >= w.start && e.day < w.as_of)
            {
                id += 1;
                let entered = clock::at(
                    e.day + Duration::days(rng.between(0, 4)),
                    rng.between(9 * 60, 17 * 60),
                )
                .min(w.now_local() - Duration::minutes(5));
                let entered = loc.zone.to_utc(entered);
                let gst = if e.gst {
                    (e.cents as f64 / 11.0).round() as i64
                } else {
                    0
                };
                out.push(
                    EXPENSES,
                    vec![
                        int(id),
                        int(e.category as i64 + 1),
                        int(loc.id),
                        text(e.supplier),
                        date(e.day),
                        money(e.cents),
                        money(gst),
                        text(e.description),
                        text(e.method),
                        text(format!("INV-{}", rng.digits(6))),
                        time(entered),
                        time(entered),
                    ],
                );
            }
        }
    }
}

struct Month {
    month: NaiveDate,
    production: i64,
    average: i64,
    staff: i64,
}

fn month_expenses(rng: &mut ChaCha8Rng, w: &Practice, l: usize, m: &Month) -> Vec<Expense> {
    let loc = &w.locations[l];
    let month = m.month;
    let years = (month - w.start).num_days() as f64 / 365.25;
    let growth = 1.03f64.powf(years);
    let fixed = |cents: i64| (cents as f64 * growth) as i64;
    let share = |percent: f64| (m.production as f64 * percent / 100.0) as i64;
    let label = month.format("%B %Y").to_string();
    let on = |day: u32| month.with_day(day).unwrap_or(month);
    let round = |cents: i64| cents / 100 * 100;
    let mut v = Vec::new();
    let mut add = |category, supplier: &str, day, cents: i64, gst, description: String, method| {
        if cents > 0 {
            v.push(Expense {
                category,
                supplier: supplier.to_string(),
                day,
                cents,
                gst,
                description,
                method,
            });
        }
    };
    let rent = round(fixed((m.average as f64 * 0.065 / 1.03f64.powf(4.0)) as i64).max(300_000));
    add(
        RENT,
        "Landlord – commercial lease",
        on(1),
        rent,
        true,
        format!("Rent {label}"),
        "direct_debit",
    );
    let wages = round(share(36.0).max(600_000));
    add(
        WAGES,
        "Payroll",
        on(28),
        wages,
        false,
        format!("Staff wages {label}"),
        "bank_transfer",
    );
    if month.month() % 3 == 1 {
        let super_due = round(wages * 3 * 115 / 1000);
        add(
            SUPER,
            "AustralianSuper",
            on(28),
            super_due,
            false,
            "Superannuation guarantee – quarter".to_string(),
            "bank_transfer",
        );
    }
    let orders = rng.between(2, 4);
    for _ in 0..orders {
        let cents = share(6.0) / orders * rng.between(70, 130) / 100;
        let supplier = *rng.pick(SUPPLIERS);
        add(
            SUPPLIES,
            supplier,
            on(rng.between(2, 27) as u32),
            cents,
            true,
            "Consumables and instruments".to_string(),
            "bank_transfer",
        );
    }
    let energy = *rng.pick(&["AGL", "Origin Energy", "EnergyAustralia"]);
    add(
        UTILITIES,
        energy,
        on(12),
        fixed(rng.between(30_000, 45_000) * (m.staff + 2) / 2),
        true,
        format!("Electricity {label}"),
        "direct_debit",
    );
    if month.month().is_multiple_of(3) {
        add(
            UTILITIES,
            water_authority(loc.state),
            on(20),
            fixed(rng.between(25_000, 60_000)),
            false,
            "Water and sewerage – quarter".to_string(),
            "direct_debit",
        );
    }
    add(
        PHONE,
        "Telstra",
        on(8),
        fixed(rng.between(22_000, 38_000)),
        true,
        format!("Phone and internet {label}"),
        "direct_debit",
    );
    add(
        SOFTWARE,
        "Centaur Software",
        on(1),
        fixed(45_000 + 9_000 * m.staff),
        true,
        "Practice management software subscription".to_string(),
        "direct_debit",
    );
    add(
        SOFTWARE,
        "Microsoft",
        on(3),
        fixed(2_000 * m.staff + 6_000),
        true,
        "Microsoft 365 licences".to_string(),
        "credit_card",
    );
    if rng.chance(0.7) {
        add(
            MARKETING,
            "Google Ads",
            on(rng.between(1, 27) as u32),
            round(rng.between(40_000, 250_000)),
            true,
            "Search advertising".to_string(),
            "credit_card",
        );
    }
    if month.month() == 7 {
        add(
            INSURANCE,
            "Guild Insurance",
            on(15),
            round(fixed(350_000 + 60_000 * m.staff)),
            true,
            "Professional indemnity and business insurance".to_string(),
            "bank_transfer",
        );
    }
    add(
        CLEANING,
        "Sparkle Commercial Cleaning",
        on(25),
        round(fixed(90_000 + 8_000 * m.staff)),
        true,
        format!("Cleaning {label}"),
        "bank_transfer",
    );
    add(
        CLEANING,
        "Cleanaway",
        on(18),
        fixed(rng.between(15_000, 32_000)),
        true,
        "Clinical and sharps waste collection".to_string(),
        "direct_debit",
    );
    add(
        BANK_FEES,
        "Tyro Payments",
        on(2),
        share(1.1),
        true,
        "Merchant service fees".to_string(),
        "direct_debit",
    );
    if rng.chance(0.3) {
        add(
            MAINTENANCE,
            "Dental Equipment Services",
            on(rng.between(1, 27) as u32),
            fixed(rng.between(25_000, 180_000)),
            true,
            "Chair, autoclave and compressor service".to_string(),
            "bank_transfer",
        );
    }
    if month.month() % 3 == 2 {
        add(
            PROFESSIONAL,
            "Harbour Accounting Group",
            on(10),
            round(fixed(220_000)),
            true,
            "BAS and bookkeeping – quarter".to_string(),
            "bank_transfer",
        );
    }
    if matches!(month.month(), 3 | 9) {
        add(
            EDUCATION,
            "Australian Dental Association",
            on(rng.between(1, 27) as u32),
            round(rng.between(40_000, 180_000)),
            true,
            "Continuing professional development courses".to_string(),
            "credit_card",
        );
    }
    v
}
