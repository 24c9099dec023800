//! Money: the treatments of a completed visit, its invoice, and how it gets paid — a
//! health fund claim on HICAPS at the desk, the gap by card or cash, third-party payers
//! (DVA, the Child Dental Benefits Schedule, insurers) weeks later, accounts paid late,
//! partly or never (bad debts are written off in `ledger`).

use chrono::{Duration, NaiveDate, NaiveDateTime};
use rand::Rng;

use super::clinical::{Visit, AT_CHECKUP, AT_CHILD, AT_NEW, AT_PERIO_MAINT};
use super::clock;
use super::fake::Dice;
use super::history::{next, Chart};
use super::practice::FeeKind;
use super::refdata::{self, ITEMS};
use super::tables::*;

/// An invoice while the patient's history is being written.
pub(crate) struct Invoice {
    pub id: i64,
    pub practitioner: i64,
    pub third_party: Option<usize>,
    pub date: NaiveDate,
    pub total: i64,
    pub gst: i64,
    /// Paid, discounted or written off so far.
    pub settled: i64,
    pub created: NaiveDateTime,
    pub updated: NaiveDateTime,
}

impl Invoice {
    pub(crate) fn balance(&self) -> i64 {
        self.total - self.settled
    }
}

const LA_NOTE: &str = "LA: 1 x 2.2 mL lignocaine 2% with 1:80,000 adrenaline";

/// Share of a fee a fund pays back on extras cover, by ADA category.
fn rebate_share(category: &str) -> f64 {
    match category {
        refdata::DIAGNOSTIC | refdata::PREVENTIVE => 0.75,
        refdata::PROSTHODONTICS => 0.45,
        refdata::ORTHODONTICS => 0.35,
        refdata::GENERAL => 0.40,
        _ => 0.55,
    }
}

/// What a lab charges the practice for an item (crowns, dentures, retainers, trays).
fn lab_cost(number: &str) -> i64 {
    match number {
        "613" | "615" => 42_000,
        "618" => 38_000,
        "711" | "712" => 45_000,
        "719" => 85_000,
        "721" | "722" => 32_000,
        "811" => 12_000,
        "119" => 8_000,
        _ => 0,
    }
}

impl Chart<'_> {
    /// Writes the treatments of a completed visit, invoices them and settles the invoice.
    pub(crate) fn complete(
        &mut self,
        visit: &Visit,
        appointment: i64,
        start: NaiveDateTime,
        end: NaiveDateTime,
    ) {
        self.note_visit(end);
        if visit.lines.is_empty() {
            return;
        }
        let w = self.w;
        let day = start.date();
        let invoice_id = next(&mut self.sh.ids.invoice);
        let practitioner = w.practitioners[visit.practitioner].id;
        let location = w.locations[self.p.location].id;
        let charged_at = end + Duration::minutes(self.rng.between(2, 12));
        let created = self.utc(charged_at);
        let (mut total, mut gst, mut rebate, mut lab) = (0i64, 0i64, 0i64, 0i64);
        for line in &visit.lines {
            let def = &ITEMS[line.item];
            let fee = w.fees.fee(self.p.fee_kind, day, line.item) * line.qty;
            let tax = if def.gst {
                (fee as f64 / 11.0).round() as i64
            } else {
                0
            };
            let id = next(&mut self.sh.ids.treatment);
            let plan_item = line.plan_item.map(|(plan, item)| {
                let entry = &mut self.plans[plan].items[item];
                entry.done = Some((id, created));
                entry.id
            });
            let numbing = matches!(
                def.category,
                refdata::RESTORATIVE | refdata::ENDODONTICS | refdata::ORAL_SURGERY
            );
            let note = (numbing && self.rng.chance(0.5)).then_some(LA_NOTE);
            self.out.push(
                TREATMENTS,
                vec![
                    int(id),
                    int(self.p.id),
                    int(practitioner),
                    int(location),
                    int(appointment),
                    int(line.item as i64 + 1),
                    opt_int(plan_item),
                    text(def.number),
                    opt_text(line.tooth.map(|t| t.to_string())),
                    opt_text(line.surface.clone()),
                    int(line.qty),
                    date(day),
                    money(fee),
                    money(tax),
                    int(invoice_id),
                    opt_text(note),
                    time(created),
                    time(created),
                ],
            );
            total += fee;
            gst += tax;
            rebate += ((fee as f64 * rebate_share(def.category)) / 5.0).floor() as i64 * 5;
            lab += lab_cost(def.number) * line.qty;
        }
        if lab > 0 {
            self.sh.bank.add_lab_fee(self.p.location, day, lab);
        }
        self.sh.bank.add_production(self.p.location, day, total);
        let exam = matches!(visit.kind, AT_NEW | AT_CHECKUP | AT_CHILD | AT_PERIO_MAINT);
        let third_party = self
            .p
            .third_party
            .filter(|tp| *tp <= refdata::TP_CDBS || !exam);
        let index = self.invoices.len();
        self.invoices.push(Invoice {
            id: invoice_id,
            practitioner,
            third_party,
            date: day,
            total,
            gst,
            settled: 0,
            created,
            updated: created,
        });
        let number = self.invoice_number(invoice_id);
        self.ledger(
            index,
            None,
            "charge",
            total,
            format!("Invoice {number}"),
            charged_at,
        );
        self.settle(index, exam, rebate.min(total), charged_at);
    }

    pub(crate) fn invoice_number(&self, id: i64) -> String {
        format!("{}-{:07}", self.w.locations[self.p.location].code, id)
    }

    /// Settles a new invoice: payer, fund claim, discounts, the patient's share.
    fn settle(&mut self, index: usize, exam: bool, rebate: i64, at: NaiveDateTime) {
        let total = self.invoices[index].total;
        let day = at.date();
        if let Some(tp) = self.invoices[index].third_party {
            let paid_on = day + Duration::days(self.rng.between(7, 35));
            if paid_on < self.w.as_of {
                let ptype = match tp {
                    refdata::TP_DVA => refdata::PT_DVA,
                    refdata::TP_CDBS => refdata::PT_MEDICARE,
                    _ => refdata::PT_DIRECT,
                };
                let when = self.desk_time(paid_on);
                self.pay(
                    when,
                    ptype,
                    &[(index, total)],
                    None,
                    Some(refdata::THIRD_PARTIES[tp].0),
                );
            }
            return;
        }
        let mut due = total;
        let share = match self.p.staff_discount {
            Some("staff") => Some(("staff", 50, "Staff member")),
            Some(_) => Some(("family", 20, "Family of staff")),
            None if self.p.pensioner_discount => Some(("pensioner", 10, "Pensioner concession")),
            None if self.rng.chance(0.02) => {
                Some(("courtesy", self.rng.between(10, 20), "Courtesy discount"))
            }
            None => None,
        };
        if let Some((kind, percent, reason)) = share {
            let amount = total * percent / 100;
            if amount > 0 {
                self.discount(index, at, amount, kind, reason);
                due -= amount;
            }
        }
        if let Some(fund) = self.p.fund.filter(|_| self.rng.chance(0.88)) {
            let claim = rebate.min(due);
            if claim > 0 {
                self.pay(at, refdata::PT_HICAPS, &[(index, claim)], Some(fund), None);
                due -= claim;
            }
            let preferred = matches!(self.p.fee_kind, FeeKind::Preferred(_));
            if preferred && exam && due > 0 && self.rng.chance(0.5) {
                self.discount(
                    index,
                    at,
                    due,
                    "health_fund_gap",
                    "No-gap check-up (preferred provider)",
                );
                due = 0;
            }
        }
        if due <= 0 {
            return;
        }
        let method = *self.rng.weighted(&[
            (refdata::PT_EFTPOS, 55),
            (refdata::PT_CREDIT, 30),
            (refdata::PT_CASH, 13),
            (refdata::PT_CHEQUE, 2),
        ]);
        match self.rng.gen_range(0..100) {
            0..=77 => {
                let mut allocations = vec![(index, due)];
                if self.rng.chance(0.5) {
                    for (i, inv) in self.invoices.iter().enumerate() {
                        if i != index
                            && inv.balance() > 0
                            && inv.third_party.is_none()
                            && inv.date < day
                        {
                            allocations.push((i, inv.balance()));
                        }
                    }
                }
                self.pay(at, method, &allocations, None, None);
            }
            78..=87 => self.pay_later(index, due, day, 3),
            88..=92 => {
                let part = due * self.rng.between(30, 70) / 100;
                self.pay(at, method, &[(index, part)], None, None);
                if self.rng.chance(0.4) {
                    self.pay_later(index, due - part, day, 14);
                }
            }
            _ => {}
        }
    }

    fn pay_later(&mut self, index: usize, amount: i64, day: NaiveDate, min_days: i64) {
        let paid_on = day + Duration::days(min_days + self.rng.exponential(18.0).min(120));
        if paid_on < self.w.as_of {
            let ptype = if self.rng.chance(0.5) {
                refdata::PT_DIRECT
            } else {
                refdata::PT_CREDIT
            };
            let when = self.desk_time(paid_on);
            self.pay(when, ptype, &[(index, amount)], None, None);
        }
    }

    fn desk_time(&mut self, day: NaiveDate) -> NaiveDateTime {
        clock::at(day, self.rng.between(9 * 60, 17 * 60))
            + Duration::seconds(self.rng.between(0, 59))
    }
}
