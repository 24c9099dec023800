//! Booking a visit and what becomes of the appointment: the appointment row, its SMS and
//! e-mail reminders, a cancellation (and the rebooked appointment), a failure to attend,
//! a waitlist entry, or a booking still ahead of `as_of`.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use rand::Rng;

use super::calendar::TimePref;
use super::clinical::{Visit, AT_EMERGENCY, AT_NEW};
use super::fake::Dice;
use super::history::{next, Chart};
use super::names;
use super::people::Engagement;
use super::practice::{slot_time, SLOT_MINUTES};
use super::refdata::{ST_BOOKED, ST_CANCELLED, ST_COMPLETED, ST_CONFIRMED, ST_NO_SHOW};
use super::tables::*;

/// What became of a visit.
pub(crate) enum Outcome {
    /// Seen: the completed appointment.
    Done {
        appointment: i64,
        start: NaiveDateTime,
        end: NaiveDateTime,
    },
    /// Booked for a day on or after `as_of`.
    Booked {
        appointment: i64,
        booked_at: NaiveDateTime,
    },
    /// Cancelled or not attended, and not rebooked.
    Missed,
    /// Not booked: it would be booked after `as_of`, or no slot before the horizon.
    NotBooked,
}

enum Fate {
    Completed,
    Cancelled(NaiveDateTime),
    NoShow,
    Ahead,
}

const APPOINTMENT_NOTES: &[&str] = &[
    "Pre-medication required",
    "Bring previous x-rays",
    "Patient running late – called ahead",
    "Requested afternoon appointment",
    "Check health fund limits before treatment",
    "Interpreter required",
];

impl Chart<'_> {
    pub(crate) fn receptionist(&mut self) -> i64 {
        let w = self.w;
        *self.rng.pick(&w.locations[self.p.location].receptionists)
    }

    /// Books `visit` on or after `wanted`, decided at local time `booked_at`, and plays
    /// out the appointment (rebooking after a cancellation or no-show when the patient
    /// wants to). `recall` is the recall the visit was booked from.
    pub(crate) fn attend(
        &mut self,
        visit: &Visit,
        wanted: NaiveDate,
        mut booked_at: NaiveDateTime,
        recall: Option<i64>,
    ) -> Outcome {
        let w = self.w;
        let now = w.now_local();
        let slots = (visit.minutes / SLOT_MINUTES) as u32;
        let emergency = visit.kind == AT_EMERGENCY;
        let mut wanted = wanted;
        let mut pending: Option<Vec<crate::value::Value>> = None;
        let mut outcome = Outcome::NotBooked;
        for attempt in 0..4 {
            if booked_at >= now || self.death.is_some_and(|d| wanted >= d) {
                break;
            }
            let earliest = if emergency {
                booked_at.date()
            } else {
                booked_at.date() + Duration::days(1)
            };
            let pref = if emergency {
                TimePref::Urgent
            } else {
                self.p.pref
            };
            let Some((day, slot)) = self.sh.cal.book(
                self.w,
                visit.practitioner,
                wanted.max(earliest),
                slots,
                pref,
                &mut self.rng,
            ) else {
                break;
            };
            let start = slot_time(day, slot);
            let end = start + Duration::minutes(visit.minutes);
            if start <= booked_at {
                booked_at = start - Duration::minutes(self.rng.between(20, 60));
            }
            let id = next(&mut self.sh.ids.appointment);
            if let Some(mut row) = pending.take() {
                row[7] = flag(true);
                row[8] = int(id);
                self.out.push(CANCELLATIONS, row);
            }
            let fate = if day >= self.w.as_of {
                Fate::Ahead
            } else {
                let (cancel, no_show) = match self.p.engagement {
                    Engagement::Loyal => (0.06, 0.02),
                    Engagement::Irregular => (0.10, 0.06),
                    Engagement::OneOff => (0.09, 0.05),
                };
                let damp = if attempt > 0 { 0.5 } else { 1.0 };
                let x: f64 = self.rng.gen();
                if x < cancel * damp {
                    Fate::Cancelled(self.cancel_time(booked_at, start))
                } else if x < (cancel + no_show) * damp {
                    Fate::NoShow
                } else {
                    Fate::Completed
                }
            };
            let cancelled_at = match fate {
                Fate::Cancelled(t) => Some(t),
                _ => None,
            };
            let (confirmed, replied) =
                self.remind(id, start, booked_at, cancelled_at.unwrap_or(now));
            let (status, arrived, updated) = match fate {
                Fate::Completed => {
                    let arrived = start - Duration::seconds(self.rng.between(0, 20 * 60));
                    (
                        ST_COMPLETED,
                        Some(arrived),
                        end + Duration::minutes(self.rng.between(2, 30)),
                    )
                }
                Fate::Cancelled(t) => (ST_CANCELLED, None, t),
                Fate::NoShow => (
                    ST_NO_SHOW,
                    None,
                    start + Duration::minutes(self.rng.between(30, 90)),
                ),
                Fate::Ahead => {
                    let status = if confirmed { ST_CONFIRMED } else { ST_BOOKED };
                    (status, None, replied.unwrap_or(booked_at).max(booked_at))
                }
            };
            let loc = &w.locations[self.p.location];
            let online = visit.kind == AT_NEW && self.rng.chance(0.25) || self.rng.chance(0.05);
            let booked_by = (!online).then(|| self.receptionist());
            let note = self
                .rng
                .chance(0.04)
                .then(|| *self.rng.pick(APPOINTMENT_NOTES));
            self.out.push(
                APPOINTMENTS,
                vec![
                    int(id),
                    int(self.p.id),
                    int(w.practitioners[visit.practitioner].id),
                    int(loc.id),
                    int(visit.kind as i64 + 1),
                    int(status),
                    time(start),
                    time(end),
                    int(visit.minutes),
                    text(w.practitioners[visit.practitioner].chair.as_str()),
                    flag(visit.kind == AT_NEW),
                    flag(confirmed || (status == ST_COMPLETED && self.rng.chance(0.5))),
                    opt_time(arrived),
                    opt_int(booked_by),
                    opt_int(recall),
                    opt_text(note),
                    time(self.utc(booked_at)),
                    time(self.utc(updated)),
                ],
            );
            if !emergency && recall.is_none() && self.rng.chance(0.03) {
                self.waitlist(visit, id, day, booked_at);
            }
            match fate {
                Fate::Completed => {
                    outcome = Outcome::Done {
                        appointment: id,
                        start,
                        end,
                    };
                    break;
                }
                Fate::Ahead => {
                    outcome = Outcome::Booked {
                        appointment: id,
                        booked_at,
                    };
                    break;
                }
                Fate::Cancelled(at) => {
                    let by_patient = self.rng.chance(0.88);
                    let notice = (start - at).num_hours();
                    let fee = if by_patient && notice < 24 && self.rng.chance(0.25) {
                        5_000
                    } else {
                        0
                    };
                    let reason = if by_patient {
                        *self.rng.pick(names::CANCEL_REASONS_PATIENT)
                    } else {
                        *self.rng.pick(names::CANCEL_REASONS_PRACTICE)
                    };
                    let row = vec![
                        int(next(&mut self.sh.ids.cancellation)),
                        int(id),
                        int(self.p.id),
                        time(at),
                        text(if by_patient { "patient" } else { "practice" }),
                        text(reason),
                        int(notice),
                        flag(false),
                        Value::Null,
                        money(fee),
                        time(self.utc(at)),
                        time(self.utc(at)),
                    ];
                    outcome = Outcome::Missed;
                    if self.rng.chance(if by_patient { 0.65 } else { 0.95 }) {
                        pending = Some(row);
                        booked_at = at;
                        wanted = day + Duration::days(self.rng.between(2, 21));
                    } else {
                        self.out.push(CANCELLATIONS, row);
                        break;
                    }
                }
                Fate::NoShow => {
                    outcome = Outcome::Missed;
                    if !self.rng.chance(0.4) {
                        break;
                    }
                    booked_at =
                        slot_time(day + Duration::days(1), 8 + self.rng.between(0, 20) as u32);
                    wanted = day + Duration::days(self.rng.between(3, 21));
                }
            }
        }
        if let Some(row) = pending {
            self.out.push(CANCELLATIONS, row);
        }
        outcome
    }

    /// When a patient cancels: mostly one to four days ahead, sometimes on the day.
    fn cancel_time(&mut self, booked_at: NaiveDateTime, start: NaiveDateTime) -> NaiveDateTime {
        let hours = match self.rng.gen_range(0..100) {
            0..=29 => self.rng.between(2, 23),
            30..=74 => self.rng.between(24, 96),
            _ => self.rng.between(97, 336),
        };
        let at = start - Duration::hours(hours) - Duration::minutes(self.rng.between(0, 59));
        if at > booked_at + Duration::minutes(10) {
            at
        } else {
            booked_at + (start - booked_at) / 2
        }
    }

    /// Sends the appointment's reminders that went out before `cutoff` (the cancellation,
    /// or `as_of`); returns whether the patient confirmed, and when.
    fn remind(
        &mut self,
        appointment: i64,
        start: NaiveDateTime,
        booked_at: NaiveDateTime,
        cutoff: NaiveDateTime,
    ) -> (bool, Option<NaiveDateTime>) {
        let mut confirmed = None;
        let lead = (start - booked_at).num_days();
        let mut send = |chart: &mut Self, channel: &str, recipient: String, days_before: i64| {
            let sent = super::clock::at(
                start.date() - Duration::days(days_before),
                chart.rng.between(9 * 60, 11 * 60),
            ) + Duration::seconds(chart.rng.between(0, 59));
            if sent <= booked_at || sent >= cutoff {
                return;
            }
            let status = *chart.rng.weighted(&[
                ("delivered", 70),
                ("confirmed", 20),
                ("failed", 3),
                ("sent", 7),
            ]);
            let status = if channel == "email" && status == "confirmed" {
                "delivered"
            } else {
                status
            };
            let replied = sent + Duration::minutes(chart.rng.between(1, 240));
            let updated = if status == "confirmed" && replied < cutoff {
                confirmed = Some(replied);
                replied
            } else {
                sent
            };
            chart.out.push(
                REMINDERS,
                vec![
                    int(next(&mut chart.sh.ids.reminder)),
                    int(appointment),
                    int(chart.p.id),
                    text(channel),
                    text(recipient),
                    time(chart.utc(sent)),
                    text(status),
                    time(chart.utc(sent)),
                    time(chart.utc(updated)),
                ],
            );
        };
        if lead >= 8 && self.p.email_opt_in && self.rng.chance(0.35) {
            let email = self.p.email.clone().unwrap_or_default();
            send(self, "email", email, 7);
        }
        if lead >= 2 && self.p.sms_opt_in && self.rng.chance(0.95) {
            let mobile = self.p.mobile.clone().unwrap_or_default();
            send(self, "sms", mobile, if lead >= 3 { 2 } else { 1 });
        }
        (confirmed.is_some(), confirmed)
    }

    /// A waitlist entry: the patient wanted an earlier appointment than the one booked.
    fn waitlist(
        &mut self,
        visit: &Visit,
        appointment: i64,
        day: NaiveDate,
        booked_at: NaiveDateTime,
    ) {
        let requested = (day - Duration::days(self.rng.between(2, 10))).max(booked_at.date());
        let ahead = day >= self.w.as_of;
        let status = match (ahead, self.rng.chance(0.7)) {
            (true, true) => "waiting",
            (true, false) => "offered",
            (false, true) => "booked",
            (false, false) => "removed",
        };
        let pref = match self.p.pref {
            TimePref::Any | TimePref::Urgent => "any",
            TimePref::Morning => "morning",
            TimePref::Late => "afternoon",
        };
        let changed = booked_at + Duration::minutes(self.rng.between(5, 60 * 24 * 3));
        let updated = changed
            .min(self.w.now_local() - Duration::minutes(1))
            .max(booked_at);
        let w = self.w;
        let loc = &w.locations[self.p.location];
        self.out.push(
            WAITLIST,
            vec![
                int(next(&mut self.sh.ids.waitlist)),
                int(self.p.id),
                opt_int(
                    self.rng
                        .chance(0.7)
                        .then(|| w.practitioners[visit.practitioner].id),
                ),
                int(loc.id),
                int(visit.kind as i64 + 1),
                date(requested),
                text(pref),
                int(self.rng.between(1, 3)),
                text(status),
                opt_int((status == "booked").then_some(appointment)),
                opt_text(
                    self.rng
                        .chance(0.3)
                        .then_some("Happy to take a short-notice cancellation"),
                ),
                time(self.utc(booked_at)),
                time(self.utc(updated)),
            ],
        );
    }
}

use crate::value::Value;
