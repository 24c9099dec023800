//! One patient's life at the practice, in time order: the first visit, recall after
//! recall until they drift away (or die), the treatment plans their examinations find,
//! emergencies, orthodontics for some children, and everything billed on the way.
//! At the end the rows whose final state depends on later events are written:
//! the patient, the open recall, the treatment plans and the invoices.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use rand_chacha::ChaCha8Rng;

use super::bank::Bank;
use super::billing::Invoice;
use super::calendar::Calendar;
use super::clock::{self, add_months};
use super::fake::{self, Dice};
use super::people::{self, Engagement, Patient};
use super::plans::Plan;
use super::practice::Practice;
use super::refdata::RECALL_TYPES;
use super::tables::*;

/// Id counters of the per-patient tables (ids are dense, in generation order).
#[derive(Default)]
pub(crate) struct Ids {
    pub appointment: i64,
    pub cancellation: i64,
    pub waitlist: i64,
    pub reminder: i64,
    pub recall: i64,
    pub plan: i64,
    pub plan_item: i64,
    pub treatment: i64,
    pub invoice: i64,
    pub payment: i64,
    pub transaction: i64,
    pub allocation: i64,
    pub discount: i64,
}

/// The next id of a counter.
pub(crate) fn next(counter: &mut i64) -> i64 {
    *counter += 1;
    *counter
}

/// State shared by all patients: the appointment book, id counters, the bank.
pub(crate) struct Shared {
    pub cal: Calendar,
    pub ids: Ids,
    pub bank: Bank,
}

/// A recall while it is open.
struct Recall {
    id: i64,
    kind: usize,
    practitioner: i64,
    due: NaiveDate,
    created: NaiveDateTime,
}

/// Everything being written about one patient.
pub(crate) struct Chart<'a> {
    pub w: &'a Practice,
    pub sh: &'a mut Shared,
    pub out: &'a mut Out,
    pub rng: ChaCha8Rng,
    pub p: Patient,
    pub recall_type: usize,
    pub plans: Vec<Plan>,
    pub invoices: Vec<Invoice>,
    pub last_bitewings: Option<NaiveDate>,
    recall: Option<Recall>,
    last_visit: Option<NaiveDateTime>,
    has_future: bool,
    /// For patients who die before `as_of`: nothing is booked from this day on.
    pub death: Option<NaiveDate>,
}

/// Writes patient `id` and their whole history.
pub(crate) fn simulate(w: &Practice, sh: &mut Shared, out: &mut Out, id: i64) {
    let mut rng = fake::rng(w.seed, fake::STREAM_PATIENT_BASE + id as u64);
    let p = people::new_patient(w, id, &mut rng);
    let recall_type = p.recall_type;
    let mut chart = Chart {
        w,
        sh,
        out,
        rng,
        p,
        recall_type,
        plans: Vec::new(),
        invoices: Vec::new(),
        last_bitewings: None,
        recall: None,
        last_visit: None,
        has_future: false,
        death: None,
    };
    chart.live();
    chart.finish();
}

impl Chart<'_> {
    /// A practice-local time at the patient's location, as UTC.
    pub(crate) fn utc(&self, local: NaiveDateTime) -> NaiveDateTime {
        self.w.utc(self.p.location, local)
    }

    fn office_time(&mut self, day: NaiveDate) -> NaiveDateTime {
        clock::at(day, self.rng.between(8 * 60 + 30, 17 * 60))
            + Duration::seconds(self.rng.between(0, 59))
    }

    fn live(&mut self) {
        let (lapse, late_days, prebook) = match self.p.engagement {
            Engagement::Loyal => (0.02, 21, 0.6),
            Engagement::Irregular => (0.08, 120, 0.2),
            Engagement::OneOff => (0.4, 240, 0.05),
        };
        self.death = self.p.deceased.then(|| {
            let span = (self.w.as_of - self.p.joined.date()).num_days();
            self.p.joined.date() + Duration::days(self.rng.between(span / 3, span.max(2) - 1))
        });
        let death = self.death;
        let mut wanted = self.p.joined.date() + Duration::days(self.rng.between(1, 14));
        let mut booked_at = self.p.joined;
        let mut first = true;
        for _ in 0..80 {
            if wanted >= self.w.horizon || death.is_some_and(|d| wanted >= d) {
                break;
            }
            let visit = self.exam_visit(first, wanted);
            let recall_id = self.recall.as_ref().map(|r| r.id);
            match self.attend(&visit, wanted, booked_at, recall_id) {
                super::booking::Outcome::Done {
                    appointment,
                    start,
                    end,
                } => {
                    let day = start.date();
                    self.close_recall(Some((appointment, day)), end, booked_at);
                    self.complete(&visit, appointment, start, end);
                    self.open_recall(day, end);
                    self.after_exam(first, day, end);
                    let months = RECALL_TYPES[self.recall_type].1;
                    wanted =
                        add_months(day, months) + Duration::days(self.rng.between(0, late_days));
                    booked_at = if self.rng.chance(prebook) {
                        end + Duration::minutes(self.rng.between(3, 15))
                    } else {
                        let lead = self.rng.between(3, 28);
                        self.office_time(wanted - Duration::days(lead))
                    };
                }
                super::booking::Outcome::Booked {
                    appointment,
                    booked_at,
                } => {
                    self.has_future = true;
                    self.book_recall(appointment, booked_at);
                    break;
                }
                super::booking::Outcome::Missed => {
                    if first || !self.rng.chance(0.75) {
                        break;
                    }
                    wanted = add_months(wanted, self.rng.between(2, 6));
                    let lead = self.rng.between(3, 21);
                    booked_at = self.office_time(wanted - Duration::days(lead));
                    continue;
                }
                super::booking::Outcome::NotBooked => break,
            }
            first = false;
            if self.rng.chance(lapse) {
                break;
            }
        }
        if let Some(d) = death {
            self.last_visit = Some(
                self.last_visit
                    .map_or(clock::at(d, 600), |v| v.max(clock::at(d, 600))),
            );
        }
    }

    /// After an examination on `day`: maybe a treatment plan (carried out if accepted),
    /// orthodontics for some children, maybe an emergency before the next recall.
    fn after_exam(&mut self, first: bool, day: NaiveDate, end: NaiveDateTime) {
        let child = self.p.age_on(day) < 16;
        let p_plan = if first {
            0.5
        } else if child {
            0.12
        } else {
            0.25
        };
        let created = self.utc(end + Duration::minutes(5));
        if self.rng.chance(p_plan) {
            if let Some(plan) = self.diagnose(day, created) {
                self.carry_out(plan, day, end);
            }
        }
        if first && (10..=15).contains(&self.p.age_on(day)) && self.rng.chance(0.12) {
            if let Some(plan) = self.ortho_plan(day, created) {
                self.carry_out(plan, day, end);
            }
        }
        if self.rng.chance(0.07) {
            let when = day + Duration::days(self.rng.between(20, 160));
            let booked_at = clock::at(when, self.rng.between(7 * 60 + 30, 9 * 60 + 30));
            let (visit, follow_up) = self.emergency_visit(when);
            if let super::booking::Outcome::Done {
                appointment,
                start,
                end,
            } = self.attend(&visit, when, booked_at, None)
            {
                self.complete(&visit, appointment, start, end);
                if let Some(tooth) = follow_up {
                    let created = self.utc(end + Duration::minutes(5));
                    let plan = self.root_canal_plan(start.date(), created, tooth);
                    self.carry_out(plan, start.date(), end);
                }
            }
        }
    }

    /// Books the visits of an accepted plan one after another until one is missed or
    /// lies ahead of `as_of`.
    fn carry_out(&mut self, plan: usize, day: NaiveDate, end: NaiveDateTime) {
        let Some(accepted) = self.plans[plan].accepted else {
            return;
        };
        let mut booked_at = if accepted == day {
            end + Duration::minutes(5)
        } else {
            self.office_time(accepted)
        };
        let mut wanted = accepted + Duration::days(self.rng.between(5, 21));
        for v in 0..self.plans[plan].visits.len() {
            let visit = self.plan_visit(plan, v);
            match self.attend(&visit, wanted, booked_at, None) {
                super::booking::Outcome::Done {
                    appointment,
                    start,
                    end,
                } => {
                    self.complete(&visit, appointment, start, end);
                    booked_at = end + Duration::minutes(self.rng.between(3, 15));
                    let gap = if visit.kind == super::clinical::AT_ORTHO {
                        (35, 60)
                    } else {
                        (7, 21)
                    };
                    wanted = start.date() + Duration::days(self.rng.between(gap.0, gap.1));
                }
                super::booking::Outcome::Booked { .. } => {
                    self.has_future = true;
                    break;
                }
                _ => break,
            }
        }
    }

    pub(crate) fn note_visit(&mut self, end: NaiveDateTime) {
        self.last_visit = Some(self.last_visit.map_or(end, |v| v.max(end)));
    }

    fn open_recall(&mut self, day: NaiveDate, end: NaiveDateTime) {
        let kind = self.recall_type;
        let due = add_months(day, RECALL_TYPES[kind].1);
        self.recall = Some(Recall {
            id: next(&mut self.sh.ids.recall),
            kind,
            practitioner: self.w.practitioners[self.p.dentist].id,
            due,
            created: self.utc(end + Duration::minutes(5)),
        });
        self.note_visit(end);
    }

    /// A recall reminder (letter or SMS) went out two weeks before the due date unless
    /// the visit was already booked by then.
    fn recall_reminders(
        &self,
        r: &Recall,
        booked_at: Option<NaiveDateTime>,
    ) -> (i64, Option<NaiveDateTime>) {
        let limit = booked_at.unwrap_or(self.w.now_local());
        let mut sent = (0, None);
        for offset in [-14, 30, 90] {
            let at = clock::at(r.due + Duration::days(offset), 10 * 60);
            if at < limit {
                sent = (sent.0 + 1, Some(self.utc(at)));
            }
            if booked_at.is_some() {
                break;
            }
        }
        sent
    }

    fn write_recall(
        &mut self,
        r: Recall,
        status: &str,
        (appointment, done): (Option<i64>, Option<NaiveDate>),
        booked_at: Option<NaiveDateTime>,
        updated: NaiveDateTime,
    ) {
        let (count, last) = self.recall_reminders(&r, booked_at);
        let loc = self.w.locations[self.p.location].id;
        let updated = updated.max(r.created).max(last.unwrap_or(r.created));
        self.out.push(
            RECALLS,
            vec![
                int(r.id),
                int(self.p.id),
                int(r.kind as i64 + 1),
                int(r.practitioner),
                int(loc),
                date(r.due),
                text(status),
                opt_int(appointment),
                opt_date(done),
                opt_time(last),
                int(count),
                time(r.created),
                time(updated),
            ],
        );
    }

    /// The open recall was completed by `appointment` on `day`.
    fn close_recall(
        &mut self,
        done: Option<(i64, NaiveDate)>,
        end: NaiveDateTime,
        booked_at: NaiveDateTime,
    ) {
        let Some(r) = self.recall.take() else { return };
        let (appointment, day) = match done {
            Some((a, d)) => (Some(a), Some(d)),
            None => (None, None),
        };
        let updated = self.utc(end + Duration::minutes(5));
        self.write_recall(r, "completed", (appointment, day), Some(booked_at), updated);
    }

    fn book_recall(&mut self, appointment: i64, booked_at: NaiveDateTime) {
        let Some(r) = self.recall.take() else { return };
        let updated = self.utc(booked_at);
        self.write_recall(
            r,
            "booked",
            (Some(appointment), None),
            Some(booked_at),
            updated,
        );
    }

    fn finish(mut self) {
        if let Some(r) = self.recall.take() {
            let long_overdue = (self.w.as_of - r.due).num_days() > 730;
            let (status, updated) = if self.p.deceased || (long_overdue && self.rng.chance(0.5)) {
                // Closed when the practice heard of the death, or archived two years overdue.
                let at = match self.death {
                    Some(d) => d + Duration::days(7),
                    None => r.due + Duration::days(730),
                };
                (
                    "cancelled",
                    self.utc(clock::at(at.min(self.w.as_of - Duration::days(1)), 11 * 60)),
                )
            } else {
                ("pending", r.created)
            };
            self.write_recall(r, status, (None, None), None, updated);
        }
        self.write_plans();
        self.finish_invoices();
        let recent = self
            .last_visit
            .is_some_and(|v| (self.w.as_of - v.date()).num_days() <= 3 * 365);
        let joined_recently = (self.w.as_of - self.p.joined.date()).num_days() <= 365;
        let active = !self.p.deceased && (self.has_future || recent || joined_recently);
        let updated = self.last_visit.map_or(self.utc(self.p.joined), |v| {
            self.utc(v + Duration::minutes(10))
        });
        let now = self.utc(self.w.now_local()) - Duration::minutes(1);
        let row = self.p.into_row(active, updated.min(now));
        self.out.push(PATIENTS, row);
    }
}
