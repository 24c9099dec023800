//! Calendars and clocks: Australian time zones with their daylight-saving rules,
//! public holidays, and the practice-local to UTC conversion of record times.
//!
//! Appointment times are practice-local wall-clock times; `created_at`/`updated_at`
//! are UTC. No time-zone database is needed: the rules for the zones the group works
//! in have been stable since 2008 (daylight saving from the first Sunday of October,
//! 2:00 standard time, to the first Sunday of April, 3:00 daylight time).

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Weekday};

/// An Australian time zone a location may be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zone {
    Sydney,
    Melbourne,
    Brisbane,
    Perth,
}

impl Zone {
    /// The IANA name stored in `locations.timezone`.
    pub(crate) fn iana(self) -> &'static str {
        match self {
            Zone::Sydney => "Australia/Sydney",
            Zone::Melbourne => "Australia/Melbourne",
            Zone::Brisbane => "Australia/Brisbane",
            Zone::Perth => "Australia/Perth",
        }
    }

    fn standard_minutes(self) -> i64 {
        match self {
            Zone::Sydney | Zone::Melbourne | Zone::Brisbane => 600,
            Zone::Perth => 480,
        }
    }

    fn observes_dst(self) -> bool {
        matches!(self, Zone::Sydney | Zone::Melbourne)
    }

    /// Minutes east of UTC at a local wall-clock time.
    pub(crate) fn offset_minutes(self, local: NaiveDateTime) -> i64 {
        let dst = self.observes_dst() && in_daylight_saving(local);
        self.standard_minutes() + if dst { 60 } else { 0 }
    }

    /// The UTC instant of a local wall-clock time.
    pub(crate) fn to_utc(self, local: NaiveDateTime) -> NaiveDateTime {
        local - Duration::minutes(self.offset_minutes(local))
    }
}

fn first_sunday(year: i32, month: u32) -> NaiveDate {
    NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Sun, 1)
        .expect("every month has a first Sunday")
}

fn in_daylight_saving(local: NaiveDateTime) -> bool {
    let year = local.year();
    let starts = first_sunday(year, 10)
        .and_hms_opt(2, 0, 0)
        .expect("valid time");
    let ends = first_sunday(year, 4)
        .and_hms_opt(3, 0, 0)
        .expect("valid time");
    local >= starts || local < ends
}

/// A wall-clock time on `date`, `minutes` after midnight.
pub(crate) fn at(date: NaiveDate, minutes: i64) -> NaiveDateTime {
    date.and_hms_opt(0, 0, 0).expect("midnight exists") + Duration::minutes(minutes)
}

/// Easter Sunday (anonymous Gregorian algorithm).
fn easter(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).expect("Easter is a valid date")
}

/// National public holidays and the Christmas–New Year closure, when the practice is shut.
pub(crate) fn is_closed(date: NaiveDate) -> bool {
    let (m, d) = (date.month(), date.day());
    if (m == 12 && d >= 24) || (m == 1 && d <= 2) || (m == 1 && d == 26) || (m == 4 && d == 25) {
        return true;
    }
    let easter = easter(date.year());
    date == easter - Duration::days(2) || date == easter + Duration::days(1)
}

/// ISO day of week, 1 = Monday … 7 = Sunday.
pub(crate) fn iso_weekday(date: NaiveDate) -> u32 {
    date.weekday().number_from_monday()
}

/// The Australian financial year (starting 1 July) that contains `date`, named by its
/// first calendar year.
pub(crate) fn financial_year(date: NaiveDate) -> i32 {
    if date.month() >= 7 {
        date.year()
    } else {
        date.year() - 1
    }
}

/// The same day `months` months later (clamped to the month's last day).
pub(crate) fn add_months(date: NaiveDate, months: i64) -> NaiveDate {
    let total = date.year() as i64 * 12 + date.month0() as i64 + months;
    let (year, month0) = (total.div_euclid(12) as i32, total.rem_euclid(12) as u32);
    let mut day = date.day();
    loop {
        if let Some(d) = NaiveDate::from_ymd_opt(year, month0 + 1, day) {
            return d;
        }
        day -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn sydney_switches_on_first_sundays() {
        // 2024: DST ended 7 April, started 6 October.
        assert_eq!(Zone::Sydney.offset_minutes(dt("2024-04-06 12:00:00")), 660);
        assert_eq!(Zone::Sydney.offset_minutes(dt("2024-04-08 12:00:00")), 600);
        assert_eq!(Zone::Sydney.offset_minutes(dt("2024-10-05 12:00:00")), 600);
        assert_eq!(Zone::Sydney.offset_minutes(dt("2024-10-07 12:00:00")), 660);
        assert_eq!(
            Zone::Brisbane.offset_minutes(dt("2024-01-07 12:00:00")),
            600
        );
        assert_eq!(
            Zone::Perth.to_utc(dt("2024-07-01 09:00:00")),
            dt("2024-07-01 01:00:00")
        );
        assert_eq!(
            Zone::Melbourne.to_utc(dt("2024-01-15 09:00:00")),
            dt("2024-01-14 22:00:00")
        );
    }

    #[test]
    fn holidays_and_months() {
        assert_eq!(easter(2024), NaiveDate::from_ymd_opt(2024, 3, 31).unwrap());
        assert_eq!(easter(2025), NaiveDate::from_ymd_opt(2025, 4, 20).unwrap());
        assert!(is_closed(NaiveDate::from_ymd_opt(2024, 3, 29).unwrap()));
        assert!(is_closed(NaiveDate::from_ymd_opt(2023, 12, 27).unwrap()));
        assert!(!is_closed(NaiveDate::from_ymd_opt(2024, 3, 27).unwrap()));
        let jan31 = NaiveDate::from_ymd_opt(2024, 1, 31).unwrap();
        assert_eq!(
            add_months(jan31, 1),
            NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()
        );
        assert_eq!(
            add_months(jan31, -2),
            NaiveDate::from_ymd_opt(2023, 11, 30).unwrap()
        );
        assert_eq!(
            financial_year(NaiveDate::from_ymd_opt(2024, 6, 30).unwrap()),
            2023
        );
    }
}
