//! What happens in the chair: the items of each kind of visit, treatment plans that an
//! examination finds (fillings, root canals, crowns, extractions, periodontal therapy,
//! dentures, whitening, sealants), and the treatment rows of a completed visit.

use chrono::NaiveDate;
use rand::Rng;

use super::fake::Dice;
use super::history::Chart;
use super::plans::PlannedVisit;
use super::practice::Specialty;
use super::refdata::item_index as ix;

/// Appointment types (index into `refdata::APPOINTMENT_TYPES`).
pub(crate) const AT_NEW: usize = 0;
pub(crate) const AT_CHECKUP: usize = 1;
pub(crate) const AT_CHILD: usize = 2;
pub(crate) const AT_PERIO_MAINT: usize = 3;
pub(crate) const AT_FILLING: usize = 4;
pub(crate) const AT_ROOT_CANAL: usize = 5;
pub(crate) const AT_CROWN_PREP: usize = 6;
pub(crate) const AT_CROWN_FIT: usize = 7;
pub(crate) const AT_EXTRACTION: usize = 8;
pub(crate) const AT_EMERGENCY: usize = 9;
pub(crate) const AT_CONSULT: usize = 10;
pub(crate) const AT_ORTHO: usize = 11;
pub(crate) const AT_DENTURE: usize = 12;
pub(crate) const AT_PERIO: usize = 13;
pub(crate) const AT_WHITENING: usize = 14;
pub(crate) const AT_POST_OP: usize = 15;

const ANTERIOR: &[u8] = &[11, 12, 13, 21, 22, 23, 31, 32, 33, 41, 42, 43];
const POSTERIOR: &[u8] = &[
    14, 15, 16, 17, 24, 25, 26, 27, 34, 35, 36, 37, 44, 45, 46, 47,
];
const PRIMARY_MOLARS: &[u8] = &[54, 55, 64, 65, 74, 75, 84, 85];
const WISDOM: &[u8] = &[18, 28, 38, 48];

/// One item charged (or planned) at a visit.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub item: usize,
    pub tooth: Option<u8>,
    pub surface: Option<String>,
    pub qty: i64,
    /// (plan index, item index within the plan) when the line carries out a plan item.
    pub plan_item: Option<(usize, usize)>,
}

pub(crate) fn line(item: &str, qty: i64) -> Line {
    Line {
        item: ix(item),
        tooth: None,
        surface: None,
        qty,
        plan_item: None,
    }
}

pub(crate) fn on_tooth(item: &str, tooth: u8, surface: Option<String>) -> Line {
    Line {
        item: ix(item),
        tooth: Some(tooth),
        surface,
        qty: 1,
        plan_item: None,
    }
}

/// A visit to book: its type, who sees the patient, how long, and what will be done.
#[derive(Debug, Clone)]
pub(crate) struct Visit {
    pub kind: usize,
    pub practitioner: usize,
    pub minutes: i64,
    pub lines: Vec<Line>,
}

fn surfaces(rng: &mut impl Rng, anterior: bool) -> String {
    let n = *rng.weighted(&[(1usize, 25), (2, 40), (3, 25), (4, 7), (5, 3)]);
    let order: &[u8] = if anterior { b"MDIBL" } else { b"MODBL" };
    let mut picked: Vec<u8> = match (anterior, n) {
        (false, 1) => vec![*rng.pick(b"OOOBL")],
        (false, 2) => vec![b'O', *rng.pick(b"MD")],
        (false, 3) => vec![b'M', b'O', b'D'],
        _ => order.to_vec(),
    };
    while picked.len() < n {
        let c = *rng.pick(order);
        if !picked.contains(&c) {
            picked.push(c);
        }
    }
    picked.truncate(n);
    order
        .iter()
        .filter(|c| picked.contains(c))
        .map(|c| *c as char)
        .collect()
}

impl Chart<'_> {
    fn is_child(&self, date: NaiveDate) -> bool {
        self.p.age_on(date) < 16
    }

    pub(crate) fn specialist(&self, s: Specialty) -> Option<usize> {
        let loc = &self.w.locations[self.p.location];
        loc.specialists
            .iter()
            .copied()
            .find(|&i| self.w.practitioners[i].specialty == s)
    }

    /// The examination visit of a recall (or the first visit of a new patient).
    pub(crate) fn exam_visit(&mut self, first: bool, date: NaiveDate) -> Visit {
        let child = self.is_child(date);
        let age = self.p.age_on(date);
        let perio = self.recall_type == super::refdata::RT_PERIO;
        let bitewings_due = self
            .last_bitewings
            .is_none_or(|d| (date - d).num_days() > 700)
            && age >= 6;
        let mut lines = vec![line(if first { "011" } else { "012" }, 1)];
        if bitewings_due {
            lines.push(line("022", 2));
            self.last_bitewings = Some(date);
        }
        if first && !child && self.rng.chance(0.15) {
            lines.push(line("037", 1));
        }
        lines.push(line(
            if perio && !first {
                "251"
            } else if child {
                "111"
            } else {
                "114"
            },
            1,
        ));
        if self.rng.chance(if child { 0.65 } else { 0.2 }) {
            lines.push(line("121", 1));
        }
        if first && self.rng.chance(0.3) {
            lines.push(line("141", 1));
        }
        let hygiene = self.p.hygienist.filter(|_| !first && self.rng.chance(0.6));
        let (kind, minutes) = match (first, child, perio) {
            (true, _, _) => (AT_NEW, if lines.len() > 4 { 60 } else { 45 }),
            (false, true, _) => (AT_CHILD, 30),
            (false, false, true) => (AT_PERIO_MAINT, 60),
            (false, false, false) => (AT_CHECKUP, if hygiene.is_some() { 45 } else { 30 }),
        };
        Visit {
            kind,
            practitioner: hygiene.unwrap_or(self.p.dentist),
            minutes,
            lines,
        }
    }

    /// A treatment plan found at an examination on `date`, or `None`.
    pub(crate) fn diagnose(
        &mut self,
        date: NaiveDate,
        created: chrono::NaiveDateTime,
    ) -> Option<usize> {
        let age = self.p.age_on(date);
        let dentist = self.p.dentist;
        let mut kinds: Vec<(u8, u32)> = vec![(0, 60)];
        if age >= 18 {
            kinds.extend([(1, 8), (2, 7), (3, 9)]);
        }
        if age >= 35 {
            kinds.push((4, 6));
        }
        if age >= 60 {
            kinds.push((5, 5));
        }
        if (20..=60).contains(&age) {
            kinds.push((6, 3));
        }
        if (6..=14).contains(&age) {
            kinds.push((7, 25));
        }
        let kind = *self.rng.weighted(&kinds);
        let mut visits: Vec<PlannedVisit> = Vec::new();
        let mut items: Vec<Line> = Vec::new();
        let title;
        match kind {
            0 => {
                let rng = &mut self.rng;
                let n = rng.between(1, 4) as usize;
                let mut teeth = Vec::new();
                for _ in 0..n {
                    let anterior = age >= 12 && rng.chance(0.2);
                    let pool = if age < 12 {
                        PRIMARY_MOLARS
                    } else if anterior {
                        ANTERIOR
                    } else {
                        POSTERIOR
                    };
                    let tooth = *rng.pick(pool);
                    if teeth.contains(&tooth) {
                        continue;
                    }
                    teeth.push(tooth);
                    let s = surfaces(rng, anterior);
                    let base = if anterior { 521 } else { 531 };
                    items.push(on_tooth(&(base + s.len() - 1).to_string(), tooth, Some(s)));
                }
                for chunk in (0..items.len()).collect::<Vec<_>>().chunks(2) {
                    visits.push((
                        AT_FILLING,
                        dentist,
                        30 + 15 * chunk.len() as i64,
                        chunk.to_vec(),
                    ));
                }
                let list: Vec<String> = teeth.iter().map(u8::to_string).collect();
                title = format!("Restorations {}", list.join(", "));
            }
            1 | 2 => {
                let tooth = *self.rng.pick(POSTERIOR);
                let crown = *self.rng.weighted(&[("613", 60), ("615", 30), ("618", 10)]);
                if kind == 1 {
                    let canals = match tooth % 10 {
                        4 | 5 => self.rng.between(1, 2),
                        _ => 3,
                    };
                    let endo = self
                        .specialist(Specialty::Endodontist)
                        .filter(|_| self.rng.chance(0.5));
                    let who = endo.unwrap_or(dentist);
                    items.push(on_tooth("415", tooth, None));
                    items.push(Line {
                        qty: canals - 1,
                        ..on_tooth("416", tooth, None)
                    });
                    items.push(on_tooth("417", tooth, None));
                    items.push(Line {
                        qty: canals - 1,
                        ..on_tooth("418", tooth, None)
                    });
                    items.retain(|l| l.qty > 0);
                    let (prep, fill): (Vec<usize>, Vec<usize>) = (0..items.len()).partition(|&i| {
                        ["415", "416"].contains(&super::refdata::ITEMS[items[i].item].number)
                    });
                    visits.push((AT_ROOT_CANAL, who, 90, prep));
                    visits.push((AT_ROOT_CANAL, who, 60, fill));
                    title = format!("Root canal therapy and crown {tooth}");
                } else {
                    title = format!("Crown {tooth}");
                }
                items.push(on_tooth("631", tooth, None));
                visits.push((AT_CROWN_PREP, dentist, 90, vec![items.len() - 1]));
                items.push(on_tooth(crown, tooth, None));
                visits.push((AT_CROWN_FIT, dentist, 30, vec![items.len() - 1]));
            }
            3 => {
                let wisdom = age < 35 && self.rng.chance(0.5);
                let tooth = *self.rng.pick(if wisdom { WISDOM } else { POSTERIOR });
                let item = if wisdom {
                    *self.rng.weighted(&[("322", 60), ("323", 40)])
                } else {
                    *self.rng.weighted(&[("311", 75), ("314", 15), ("322", 10)])
                };
                let surgeon = self.specialist(Specialty::OralSurgeon).filter(|_| wisdom);
                items.push(on_tooth(item, tooth, None));
                visits.push((AT_EXTRACTION, surgeon.unwrap_or(dentist), 45, vec![0]));
                if self.rng.chance(0.4) {
                    visits.push((AT_POST_OP, surgeon.unwrap_or(dentist), 15, vec![]));
                }
                title = format!("Extraction {tooth}");
            }
            4 => {
                let who = self.specialist(Specialty::Periodontist).unwrap_or(dentist);
                items.push(line("221", 1));
                items.push(line("250", 2));
                items.push(line("250", 2));
                visits.push((AT_PERIO, who, 60, vec![0, 1]));
                visits.push((AT_PERIO, who, 60, vec![2]));
                self.recall_type = super::refdata::RT_PERIO;
                title = "Periodontal therapy".to_string();
            }
            5 => {
                let item = *self.rng.weighted(&[
                    ("719", 35),
                    ("711", 15),
                    ("712", 10),
                    ("721", 25),
                    ("722", 15),
                ]);
                items.push(line(item, 1));
                items.push(line("741", 1));
                visits.push((AT_DENTURE, dentist, 45, vec![]));
                visits.push((AT_DENTURE, dentist, 45, vec![]));
                visits.push((AT_DENTURE, dentist, 45, vec![0]));
                visits.push((AT_DENTURE, dentist, 15, vec![1]));
                title = super::refdata::ITEMS[ix(item)].description.to_string();
            }
            6 => {
                items.push(line("119", 2));
                visits.push((AT_WHITENING, dentist, 30, vec![0]));
                title = "Take-home whitening".to_string();
            }
            _ => {
                let n = self.rng.between(2, 4) as usize;
                let mut teeth: Vec<u8> = vec![16, 26, 36, 46];
                teeth.truncate(n);
                items.extend(
                    teeth
                        .iter()
                        .map(|&t| on_tooth("161", t, Some("O".to_string()))),
                );
                let who = self.p.hygienist.unwrap_or(dentist);
                visits.push((AT_FILLING, who, 30, (0..items.len()).collect()));
                title = "Fissure sealants".to_string();
            }
        }
        Some(self.add_plan(date, created, title, items, visits))
    }

    /// The lines of plan `plan`'s visit `visit`.
    pub(crate) fn plan_visit(&self, plan: usize, visit: usize) -> Visit {
        let (kind, practitioner, minutes, ref items) = self.plans[plan].visits[visit];
        let lines = items
            .iter()
            .map(|&i| self.plans[plan].items[i].line.clone())
            .collect();
        Visit {
            kind,
            practitioner,
            minutes,
            lines,
        }
    }

    /// An emergency visit: limited exam, an x-ray and relief; returns the visit and
    /// whether the tooth needs its root canal finished (and a crown) afterwards.
    pub(crate) fn emergency_visit(&mut self, date: NaiveDate) -> (Visit, Option<u8>) {
        let age = self.p.age_on(date);
        let tooth = *self
            .rng
            .pick(if age < 12 { PRIMARY_MOLARS } else { POSTERIOR });
        let mut lines = vec![
            line("013", 1),
            Line {
                tooth: Some(tooth),
                ..line("022", 1)
            },
        ];
        let relief = *self.rng.weighted(&[("419", 40), ("311", 30), ("911", 30)]);
        lines.push(on_tooth(relief, tooth, None));
        let follow_up = (relief == "419" && age >= 12).then_some(tooth);
        (
            Visit {
                kind: AT_EMERGENCY,
                practitioner: self.p.dentist,
                minutes: 30,
                lines,
            },
            follow_up,
        )
    }
}
