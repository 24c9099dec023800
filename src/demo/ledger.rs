//! The ledger side of billing: payments and how they are allocated and banked,
//! discounts and write-offs, the transaction of each, and the invoices' final state.
//! Every charge, payment and adjustment is a transaction, and every payment is
//! allocated to the invoices it pays, so a patient's transactions sum to what they owe.

use chrono::{Duration, NaiveDateTime};

use super::clock;
use super::fake::Dice;
use super::history::{next, Chart};
use super::refdata;
use super::tables::*;

impl Chart<'_> {
    /// A payment allocated to invoices (index, amount), with its ledger line.
    pub(crate) fn pay(
        &mut self,
        at: NaiveDateTime,
        ptype: usize,
        allocations: &[(usize, i64)],
        fund: Option<usize>,
        note: Option<&str>,
    ) {
        let amount: i64 = allocations.iter().map(|a| a.1).sum();
        let id = next(&mut self.sh.ids.payment);
        let w = self.w;
        let deposit = self
            .sh
            .bank
            .deposit(w, self.p.location, ptype, at.date(), amount);
        let reference = match ptype {
            refdata::PT_HICAPS => format!("HICAPS {}", self.rng.digits(6)),
            refdata::PT_DIRECT => format!("EFT {}", self.rng.digits(8)),
            refdata::PT_DVA => format!("DVA {}", self.rng.digits(8)),
            refdata::PT_MEDICARE => format!("CDBS {}", self.rng.digits(9)),
            refdata::PT_CHEQUE => format!("CHQ {}", self.rng.digits(6)),
            _ => format!("R{id:08}"),
        };
        let user = self.receptionist();
        let recorded = self.utc(at);
        self.out.push(
            PAYMENTS,
            vec![
                int(id),
                int(self.p.id),
                int(ptype as i64 + 1),
                int(w.locations[self.p.location].id),
                date(at.date()),
                money(amount),
                text(reference),
                opt_int(fund.map(|f| f as i64 + 1)),
                int(user),
                opt_int(deposit),
                opt_text(note),
                time(recorded),
                time(recorded),
            ],
        );
        for &(index, part) in allocations {
            let allocation = next(&mut self.sh.ids.allocation);
            let invoice = &mut self.invoices[index];
            invoice.settled += part;
            invoice.updated = invoice.updated.max(recorded);
            self.out.push(
                PAYMENT_ALLOCATIONS,
                vec![
                    int(allocation),
                    int(id),
                    int(invoice.id),
                    money(part),
                    time(recorded),
                    time(recorded),
                    time(recorded),
                ],
            );
        }
        let single = (allocations.len() == 1).then_some(allocations[0].0);
        let label = format!("Payment – {}", refdata::PAYMENT_TYPES[ptype].0);
        self.ledger(
            single.unwrap_or(allocations[0].0),
            Some((id, single.is_some())),
            "payment",
            -amount,
            label,
            at,
        );
    }

    /// A discount (or write-off) against an invoice, with its ledger line.
    pub(crate) fn discount(
        &mut self,
        index: usize,
        at: NaiveDateTime,
        amount: i64,
        kind: &str,
        reason: &str,
    ) {
        let id = next(&mut self.sh.ids.discount);
        let approver = self.w.locations[self.p.location].manager;
        let recorded = self.utc(at);
        let invoice = &mut self.invoices[index];
        invoice.settled += amount;
        invoice.updated = invoice.updated.max(recorded);
        let invoice_id = invoice.id;
        self.out.push(
            DISCOUNTS,
            vec![
                int(id),
                int(invoice_id),
                int(self.p.id),
                date(at.date()),
                money(amount),
                text(kind),
                text(reason),
                int(approver),
                time(recorded),
                time(recorded),
            ],
        );
        let label = if kind == "write_off" {
            "Write-off – bad debt".to_string()
        } else {
            format!("Discount – {kind}")
        };
        self.ledger(index, None, "adjustment", -amount, label, at);
    }

    /// One ledger transaction; `payment` is (payment id, whether it pays only this invoice).
    pub(crate) fn ledger(
        &mut self,
        index: usize,
        payment: Option<(i64, bool)>,
        kind: &str,
        amount: i64,
        description: String,
        at: NaiveDateTime,
    ) {
        let id = next(&mut self.sh.ids.transaction);
        let invoice = &self.invoices[index];
        let invoice_id = match payment {
            Some((_, false)) => None,
            _ => Some(invoice.id),
        };
        let row = vec![
            int(id),
            int(self.p.id),
            opt_int(invoice_id),
            opt_int(payment.map(|p| p.0)),
            int(invoice.practitioner),
            int(self.w.locations[self.p.location].id),
            date(at.date()),
            text(kind),
            money(amount),
            text(description),
            int(self.receptionist()),
            time(self.utc(at)),
            time(self.utc(at)),
        ];
        self.out.push(TRANSACTIONS, row);
    }

    /// Writes off most debts older than six months, then writes every invoice.
    pub(crate) fn finish_invoices(&mut self) {
        for index in 0..self.invoices.len() {
            let (balance, day) = (self.invoices[index].balance(), self.invoices[index].date);
            let age = (self.w.as_of - day).num_days();
            if balance > 0 && age > 180 && self.rng.chance(0.6) {
                let on = (day + Duration::days(self.rng.between(180, 300)))
                    .min(self.w.as_of - Duration::days(1));
                let at = clock::at(on, 16 * 60);
                self.discount(
                    index,
                    at,
                    balance,
                    "write_off",
                    "Bad debt – account unpaid after reminders",
                );
            }
        }
        let location = self.w.locations[self.p.location].id;
        for inv in std::mem::take(&mut self.invoices) {
            let status = if inv.settled >= inv.total {
                "paid"
            } else if inv.settled > 0 {
                "part_paid"
            } else {
                "open"
            };
            let due = inv.date + Duration::days(if inv.third_party.is_some() { 30 } else { 14 });
            let note = inv
                .third_party
                .map(|tp| format!("Billed to {}", refdata::THIRD_PARTIES[tp].0));
            self.out.push(
                INVOICES,
                vec![
                    int(inv.id),
                    int(self.p.id),
                    int(inv.practitioner),
                    int(location),
                    opt_int(inv.third_party.map(|t| t as i64 + 1)),
                    text(self.invoice_number(inv.id)),
                    date(inv.date),
                    date(due),
                    money(inv.total),
                    money(inv.gst),
                    text(status),
                    opt_text(note),
                    time(inv.created),
                    time(inv.updated),
                ],
            );
        }
    }
}
