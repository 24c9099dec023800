//! Treatment plans: created when an examination finds work to do, accepted, declined or
//! left open, carried out visit by visit, and written once their final state is known.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use rand::Rng;

use super::clinical::{
    line, on_tooth, Line, AT_CONSULT, AT_CROWN_FIT, AT_CROWN_PREP, AT_ORTHO, AT_ROOT_CANAL,
};
use super::fake::Dice;
use super::history::{next, Chart};
use super::practice::Specialty;
use super::refdata::ITEMS;
use super::tables::*;

/// A treatment plan item and what became of it.
pub(crate) struct PlanItem {
    pub id: i64,
    pub line: Line,
    pub fee: i64,
    /// The treatment that carried it out, and when (UTC).
    pub done: Option<(i64, NaiveDateTime)>,
}

/// A planned visit: appointment type, practitioner, minutes, plan items done there
/// (none for visits without charge, such as denture impressions).
pub(crate) type PlannedVisit = (usize, usize, i64, Vec<usize>);

/// A treatment plan.
pub(crate) struct Plan {
    pub id: i64,
    pub practitioner: usize,
    pub title: String,
    pub date: NaiveDate,
    pub accepted: Option<NaiveDate>,
    pub declined: bool,
    pub items: Vec<PlanItem>,
    pub visits: Vec<PlannedVisit>,
    pub created: NaiveDateTime,
}

const PLAN_NOTES: &[&str] = &[
    "Item numbers given for health fund pre-approval",
    "Discussed options and costs; patient to confirm",
    "Staged over two financial years for fund limits",
];

impl Chart<'_> {
    /// Records a plan presented on `date`; the patient accepts most plans within two weeks.
    pub(crate) fn add_plan(
        &mut self,
        date: NaiveDate,
        created: NaiveDateTime,
        title: String,
        lines: Vec<Line>,
        visits: Vec<PlannedVisit>,
    ) -> usize {
        let id = next(&mut self.sh.ids.plan);
        let index = self.plans.len();
        let kind = self.p.fee_kind;
        let mut items = Vec::with_capacity(lines.len());
        for (i, mut line) in lines.into_iter().enumerate() {
            line.plan_item = Some((index, i));
            let fee = self.w.fees.fee(kind, date, line.item) * line.qty;
            items.push(PlanItem {
                id: next(&mut self.sh.ids.plan_item),
                line,
                fee,
                done: None,
            });
        }
        let (accepted, declined) = match self.rng.gen_range(0..100) {
            0..=74 => {
                let days = *self.rng.pick(&[0, 0, 0, 1, 3, 7, 14]);
                (
                    Some(date + Duration::days(days)).filter(|d| *d < self.w.as_of),
                    false,
                )
            }
            75..=84 => (None, true),
            _ => (None, false),
        };
        let practitioner = visits.first().map_or(self.p.dentist, |v| v.1);
        self.plans.push(Plan {
            id,
            practitioner,
            title,
            date,
            accepted,
            declined,
            items,
            visits,
            created,
        });
        index
    }

    /// Writes every plan of the patient with its items.
    pub(crate) fn write_plans(&mut self) {
        let w = self.w;
        let location = w.locations[self.p.location].id;
        for plan in std::mem::take(&mut self.plans) {
            let done = plan.items.iter().filter(|i| i.done.is_some()).count();
            let status = if plan.declined {
                "declined"
            } else if plan.accepted.is_none() {
                "proposed"
            } else if done == plan.items.len() {
                "completed"
            } else if done > 0 {
                "in_progress"
            } else {
                "accepted"
            };
            let accepted_at = plan
                .accepted
                .map(|d| self.utc(super::clock::at(d, 12 * 60)));
            let last_done = plan.items.iter().filter_map(|i| i.done.map(|d| d.1)).max();
            let updated = plan
                .created
                .max(accepted_at.unwrap_or(plan.created))
                .max(last_done.unwrap_or(plan.created));
            let total: i64 = plan.items.iter().map(|i| i.fee).sum();
            let note = self.rng.chance(0.3).then(|| *self.rng.pick(PLAN_NOTES));
            self.out.push(
                TREATMENT_PLANS,
                vec![
                    int(plan.id),
                    int(self.p.id),
                    int(w.practitioners[plan.practitioner].id),
                    int(location),
                    text(plan.title),
                    text(status),
                    date(plan.date),
                    opt_date(plan.accepted),
                    money(total),
                    opt_text(note),
                    time(plan.created),
                    time(updated),
                ],
            );
            for (seq, item) in plan.items.iter().enumerate() {
                let item_status = match (item.done, plan.declined) {
                    (Some(_), _) => "completed",
                    (None, true) => "declined",
                    (None, false) => "planned",
                };
                let def = &ITEMS[item.line.item];
                self.out.push(
                    TREATMENT_PLAN_ITEMS,
                    vec![
                        int(item.id),
                        int(plan.id),
                        int(item.line.item as i64 + 1),
                        text(def.number),
                        opt_text(item.line.tooth.map(|t| t.to_string())),
                        opt_text(item.line.surface.clone()),
                        int(item.line.qty),
                        money(item.fee),
                        int(seq as i64 + 1),
                        text(item_status),
                        opt_int(item.done.map(|d| d.0)),
                        time(plan.created),
                        time(item.done.map_or(plan.created, |d| d.1)),
                    ],
                );
            }
        }
    }
}

/// Plans that do not come from `diagnose`.
impl Chart<'_> {
    /// The plan to finish a root canal started in an emergency.
    pub(crate) fn root_canal_plan(
        &mut self,
        date: NaiveDate,
        created: chrono::NaiveDateTime,
        tooth: u8,
    ) -> usize {
        let d = self.p.dentist;
        let items = vec![
            on_tooth("415", tooth, None),
            on_tooth("417", tooth, None),
            on_tooth("631", tooth, None),
            on_tooth("613", tooth, None),
        ];
        let visits = vec![
            (AT_ROOT_CANAL, d, 60, vec![0]),
            (AT_ROOT_CANAL, d, 60, vec![1]),
            (AT_CROWN_PREP, d, 90, vec![2]),
            (AT_CROWN_FIT, d, 30, vec![3]),
        ];
        self.add_plan(
            date,
            created,
            format!("Root canal therapy and crown {tooth}"),
            items,
            visits,
        )
    }

    /// An orthodontic course: consultation, banding, adjustments every six to eight
    /// weeks, then retainers. Only where an orthodontist works at the location.
    pub(crate) fn ortho_plan(
        &mut self,
        date: NaiveDate,
        created: chrono::NaiveDateTime,
    ) -> Option<usize> {
        let ortho = self.specialist(Specialty::Orthodontist)?;
        let mut visits = vec![
            (AT_CONSULT, ortho, 30, vec![0, 1, 2]),
            (AT_ORTHO, ortho, 60, vec![3]),
        ];
        let reviews = self.rng.between(10, 16) as usize;
        let mut items = vec![
            line("015", 1),
            line("072", 1),
            line("071", 2),
            line("831", 2),
        ];
        for _ in 0..reviews {
            items.push(line("871", 1));
            visits.push((AT_ORTHO, ortho, 15, vec![items.len() - 1]));
        }
        items.push(line("811", 2));
        visits.push((AT_ORTHO, ortho, 45, vec![items.len() - 1]));
        Some(self.add_plan(
            date,
            created,
            "Orthodontic treatment – fixed appliances".to_string(),
            items,
            visits,
        ))
    }
}
