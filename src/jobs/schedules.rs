//! Recurring extractions: the `schedules` table, cron/timezone/window rules, and the
//! scheduler that turns each due slot into exactly one job.
//!
//! A slot is claimed with a compare-and-set on `next_run_at`, so two nodes never both
//! run it, and the job carries the idempotency key `schedule:{id}:{slot unix}`, so a
//! slot never makes two jobs. A schedule missed while no scheduler ran fires once
//! (for the latest missed slot) and then continues from the next slot after now.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Datelike, Months, NaiveDate, SecondsFormat, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use sqlx::any::AnyRow;
use sqlx::Row;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{CreateError, NewJob};
use crate::catalog::{self, ExtractParams, Procedure};
use crate::http::AppState;
use crate::meta::{self, Meta};

const COLUMNS: &str =
    "id, customer_id, name, cron, timezone, procedure_name, request, run_window, enabled, \
    next_run_at, last_run_at, last_job_id, created_at, updated_at";

/// How much data each run extracts, relative to the slot that fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The local calendar day before the slot's local date.
    PreviousDay,
    /// The 7 local days before the slot's local date.
    PreviousWeek,
    /// The local calendar month before the slot's local month.
    PreviousMonth,
    /// From the previous run (or the schedule's creation) up to the slot.
    SinceLastRun,
}

impl Window {
    pub const NAMES: &'static [&'static str] = &[
        "previous_day",
        "previous_week",
        "previous_month",
        "since_last_run",
    ];

    pub fn parse(text: &str) -> Option<Window> {
        Some(match text {
            "previous_day" => Window::PreviousDay,
            "previous_week" => Window::PreviousWeek,
            "previous_month" => Window::PreviousMonth,
            "since_last_run" => Window::SinceLastRun,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Window::PreviousDay => "previous_day",
            Window::PreviousWeek => "previous_week",
            Window::PreviousMonth => "previous_month",
            Window::SinceLastRun => "since_last_run",
        }
    }

    /// `(from_date, to_date)` for a run at `slot`. Day windows give inclusive
    /// `YYYY-MM-DD` local dates; `since_last_run` gives RFC 3339 instants with the
    /// schedule's offset, `[previous run, slot)` (the end is the slot minus 1 ms so
    /// consecutive runs never share a row).
    pub fn dates(
        self,
        tz: Tz,
        slot: DateTime<Utc>,
        previous_run: DateTime<Utc>,
    ) -> (String, String) {
        let local_date = slot.with_timezone(&tz).date_naive();
        let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
        match self {
            Window::PreviousDay => {
                let d = local_date - chrono::Duration::days(1);
                (day(d), day(d))
            }
            Window::PreviousWeek => (
                day(local_date - chrono::Duration::days(7)),
                day(local_date - chrono::Duration::days(1)),
            ),
            Window::PreviousMonth => {
                let first_this = local_date.with_day(1).expect("day 1 exists");
                let first_prev = first_this - Months::new(1);
                (day(first_prev), day(first_this - chrono::Duration::days(1)))
            }
            Window::SinceLastRun => {
                let instant = |t: DateTime<Utc>| {
                    t.with_timezone(&tz)
                        .fixed_offset()
                        .to_rfc3339_opts(SecondsFormat::Millis, true)
                };
                let end = (slot - chrono::Duration::milliseconds(1)).max(previous_run);
                (instant(previous_run), instant(end))
            }
        }
    }
}

/// Parses a standard 5-field cron expression (minute hour day-of-month month day-of-week).
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    let parser = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build();
    let cron = parser.parse(expr).map_err(|e| e.to_string())?;
    // A pattern that never matches (e.g. `0 0 31 2 *`) is useless: refuse it now.
    cron.find_next_occurrence(&Utc::now(), false)
        .map_err(|e| format!("the expression never matches: {e}"))?;
    Ok(cron)
}

/// Parses an IANA time zone name such as `Australia/Sydney`.
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>()
        .map_err(|_| format!("unknown timezone {:?}; use an IANA name such as Australia/Sydney, Europe/London or UTC", name.chars().take(60).collect::<String>()))
}

/// The first slot of `cron` in `tz` strictly after `after`.
pub fn next_slot(cron: &Cron, tz: Tz, after: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    let next = cron
        .find_next_occurrence(&after.with_timezone(&tz), false)
        .map_err(|e| anyhow::anyhow!("cron {}: {e}", cron.pattern))?;
    Ok(next.with_timezone(&Utc))
}

/// The latest slot of `cron` in `tz` at or before `at`.
fn latest_slot(cron: &Cron, tz: Tz, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.find_previous_occurrence(&at.with_timezone(&tz), true)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A schedule as stored.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub id: String,
    pub customer_id: String,
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub procedure_name: String,
    /// The extraction parameters (name, value), without from_date/to_date/mode.
    pub request: Vec<(String, String)>,
    pub window: Window,
    pub enabled: bool,
    pub next_run_at: Option<String>,
    pub last_run_at: Option<String>,
    pub last_job_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

fn from_row(row: &AnyRow) -> anyhow::Result<Schedule> {
    let request: String = row.try_get("request")?;
    let window: String = row.try_get("run_window")?;
    let enabled: i64 = row.try_get("enabled")?;
    Ok(Schedule {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        name: row.try_get("name")?,
        cron: row.try_get("cron")?,
        timezone: row.try_get("timezone")?,
        procedure_name: row.try_get("procedure_name")?,
        request: serde_json::from_str(&request)?,
        window: Window::parse(&window).with_context(|| format!("unknown window {window:?}"))?,
        enabled: enabled != 0,
        next_run_at: row.try_get("next_run_at")?,
        last_run_at: row.try_get("last_run_at")?,
        last_job_id: row.try_get("last_job_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A validated schedule definition (for create and update).
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub procedure_name: String,
    pub request: Vec<(String, String)>,
    pub window: Window,
    pub enabled: bool,
}

impl ScheduleSpec {
    /// `next_run_at` for this definition as of `now`: `None` when disabled.
    fn next_run_at(&self, now: DateTime<Utc>) -> anyhow::Result<Option<String>> {
        if !self.enabled {
            return Ok(None);
        }
        let cron = parse_cron(&self.cron).map_err(anyhow::Error::msg)?;
        let tz = parse_timezone(&self.timezone).map_err(anyhow::Error::msg)?;
        Ok(Some(meta::format_time(next_slot(&cron, tz, now)?)))
    }
}

/// `sch_<16 hex>`.
pub fn new_schedule_id() -> String {
    format!("sch_{}", crate::crypto::random_hex(8))
}

/// Stores a new schedule with its first `next_run_at`.
pub async fn create_schedule(
    meta: &Meta,
    customer_id: &str,
    spec: &ScheduleSpec,
) -> anyhow::Result<Schedule> {
    let id = new_schedule_id();
    let now = Utc::now();
    let next = spec.next_run_at(now)?;
    let stamp = meta::format_time(now);
    sqlx::query(
        "INSERT INTO schedules (id, customer_id, name, cron, timezone, procedure_name, request, run_window, enabled, \
         next_run_at, last_run_at, last_job_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, $11, $11)",
    )
    .bind(&id)
    .bind(customer_id)
    .bind(&spec.name)
    .bind(&spec.cron)
    .bind(&spec.timezone)
    .bind(&spec.procedure_name)
    .bind(serde_json::to_string(&spec.request)?)
    .bind(spec.window.as_str())
    .bind(spec.enabled as i64)
    .bind(&next)
    .bind(&stamp)
    .execute(&meta.pool)
    .await
    .context("inserting a schedule")?;
    get_schedule(meta, customer_id, &id)
        .await?
        .context("the new schedule is missing")
}

/// One schedule of a customer.
pub async fn get_schedule(
    meta: &Meta,
    customer_id: &str,
    id: &str,
) -> anyhow::Result<Option<Schedule>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM schedules WHERE id = $1 AND customer_id = $2"
    ))
    .bind(id)
    .bind(customer_id)
    .fetch_optional(&meta.pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// A page of a customer's schedules (newest first) and the total.
pub async fn list_schedules(
    meta: &Meta,
    customer_id: &str,
    limit: i64,
    offset: i64,
) -> anyhow::Result<(Vec<Schedule>, i64)> {
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM schedules WHERE customer_id = $1")
        .bind(customer_id)
        .fetch_one(&meta.pool)
        .await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM schedules WHERE customer_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT {limit} OFFSET {offset}"
    ))
    .bind(customer_id)
    .fetch_all(&meta.pool)
    .await?;
    Ok((
        rows.iter().map(from_row).collect::<anyhow::Result<_>>()?,
        total,
    ))
}

/// Replaces a schedule's definition and recomputes `next_run_at` from now.
/// `None` when the customer has no such schedule.
pub async fn update_schedule(
    meta: &Meta,
    customer_id: &str,
    id: &str,
    spec: &ScheduleSpec,
) -> anyhow::Result<Option<Schedule>> {
    let now = Utc::now();
    let next = spec.next_run_at(now)?;
    let done = sqlx::query(
        "UPDATE schedules SET name = $1, cron = $2, timezone = $3, procedure_name = $4, request = $5, run_window = $6, \
         enabled = $7, next_run_at = $8, updated_at = $9 WHERE id = $10 AND customer_id = $11",
    )
    .bind(&spec.name)
    .bind(&spec.cron)
    .bind(&spec.timezone)
    .bind(&spec.procedure_name)
    .bind(serde_json::to_string(&spec.request)?)
    .bind(spec.window.as_str())
    .bind(spec.enabled as i64)
    .bind(&next)
    .bind(meta::format_time(now))
    .bind(id)
    .bind(customer_id)
    .execute(&meta.pool)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    get_schedule(meta, customer_id, id).await
}

/// Deletes a schedule; its jobs stay (with their `schedule_id`). False when not found.
pub async fn delete_schedule(meta: &Meta, customer_id: &str, id: &str) -> anyhow::Result<bool> {
    let done = sqlx::query("DELETE FROM schedules WHERE id = $1 AND customer_id = $2")
        .bind(id)
        .bind(customer_id)
        .execute(&meta.pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Enabled schedules whose `next_run_at` has passed (any customer; scheduler only).
async fn due_schedules(meta: &Meta, now: DateTime<Utc>) -> anyhow::Result<Vec<Schedule>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM schedules WHERE enabled = 1 AND next_run_at IS NOT NULL AND next_run_at <= $1 \
         ORDER BY next_run_at, id LIMIT 500"
    ))
    .bind(meta::format_time(now))
    .fetch_all(&meta.pool)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Takes the slot: moves `next_run_at` on and records `last_run_at`, only if no one
/// else did since `seen_next` was read.
async fn claim(
    meta: &Meta,
    id: &str,
    seen_next: &str,
    slot: DateTime<Utc>,
    next: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE schedules SET next_run_at = $1, last_run_at = $2, updated_at = $3 \
         WHERE id = $4 AND next_run_at = $5 AND enabled = 1",
    )
    .bind(meta::format_time(next))
    .bind(meta::format_time(slot))
    .bind(meta::now())
    .bind(id)
    .bind(seen_next)
    .execute(&meta.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The job request and metadata of a run, as `POST /v1/jobs` would store them.
fn job_for(
    schedule: &Schedule,
    procedure: &Procedure,
    slot: DateTime<Utc>,
    max_limit: u64,
) -> anyhow::Result<NewJob> {
    let tz = parse_timezone(&schedule.timezone).map_err(anyhow::Error::msg)?;
    let previous = match &schedule.last_run_at {
        Some(t) => meta::parse_time(t)?,
        None => meta::parse_time(&schedule.created_at)?,
    };
    let (from, to) = schedule.window.dates(tz, slot, previous);
    let mut request: Vec<(String, String)> = schedule
        .request
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "from_date" | "to_date" | "mode"))
        .cloned()
        .collect();
    request.push(("from_date".into(), from));
    request.push(("to_date".into(), to));
    let params: ExtractParams = catalog::parse_params(procedure, &request, max_limit)
        .map_err(|e| anyhow::anyhow!("the schedule's parameters are no longer valid: {e}"))?;
    Ok(NewJob {
        customer_id: schedule.customer_id.clone(),
        procedure_name: procedure.name.clone(),
        metadata: super::job_metadata(&params),
        output_format: params.format.as_str().to_string(),
        compression: params.compression.as_str().to_string(),
        request,
        estimated_rows: None,
        idempotency_key: Some(format!("schedule:{}:{}", schedule.id, slot.timestamp())),
        schedule_id: Some(schedule.id.clone()),
    })
}

/// Runs every due schedule once; returns how many jobs were created.
pub async fn run_due_schedules(state: &AppState) -> anyhow::Result<usize> {
    run_due_schedules_at(state, Utc::now()).await
}

/// [`run_due_schedules`] as of `now` (for tests and catch-up).
pub async fn run_due_schedules_at(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let mut created = 0;
    for schedule in due_schedules(&state.meta, now).await? {
        match run_one(state, &schedule, now).await {
            Ok(true) => created += 1,
            Ok(false) => {}
            Err(e) => tracing::error!(
                schedule_id = %schedule.id,
                customer_id = %schedule.customer_id,
                error = format!("{e:#}"),
                "scheduled run failed"
            ),
        }
    }
    Ok(created)
}

/// Claims and runs one due schedule. True when a new job was created.
async fn run_one(
    state: &AppState,
    schedule: &Schedule,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let seen_next = schedule.next_run_at.clone().context("not due")?;
    let due = meta::parse_time(&seen_next)?;
    let tz = parse_timezone(&schedule.timezone).map_err(anyhow::Error::msg)?;
    let cron = parse_cron(&schedule.cron).map_err(anyhow::Error::msg)?;
    // Missed slots collapse into one run: the latest slot at or before now.
    let slot = latest_slot(&cron, tz, now)
        .filter(|s| *s >= due)
        .unwrap_or(due);
    let next = next_slot(&cron, tz, now)?;
    if !claim(&state.meta, &schedule.id, &seen_next, slot, next).await? {
        return Ok(false); // another node took this slot
    }
    let procedure = state
        .catalog
        .get(&schedule.procedure_name)
        .with_context(|| format!("unknown procedure {:?}", schedule.procedure_name))?;
    let job = job_for(schedule, procedure, slot, state.config.max_limit)?;
    let (job, created) = super::create_job(&state.meta, job)
        .await
        .map_err(|e| match e {
            CreateError::KeyReused(k) => anyhow::anyhow!("idempotency key {k} reused"),
            CreateError::Other(e) => e,
        })?;
    sqlx::query("UPDATE schedules SET last_job_id = $1 WHERE id = $2")
        .bind(&job.id)
        .bind(&schedule.id)
        .execute(&state.meta.pool)
        .await?;
    tracing::info!(schedule_id = %schedule.id, job_id = %job.id, slot = %meta::format_time(slot), "scheduled run queued");
    Ok(created)
}

/// Runs [`run_due_schedules`] every `every` until `shutdown` fires.
pub fn spawn_scheduler(
    state: AppState,
    every: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = run_due_schedules(&state).await {
                tracing::warn!(error = format!("{e:#}"), "checking schedules failed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(text: &str) -> DateTime<Utc> {
        meta::parse_time(text).unwrap()
    }

    #[test]
    fn windows_in_sydney() {
        let tz: Tz = "Australia/Sydney".parse().unwrap();
        // 02:00 Sydney (AEDT, +11) on 2024-03-01 is 15:00 UTC on 2024-02-29.
        let slot = utc("2024-02-29T15:00:00Z");
        let created = utc("2024-02-27T00:00:00Z");
        assert_eq!(
            Window::PreviousDay.dates(tz, slot, created),
            ("2024-02-29".into(), "2024-02-29".into())
        );
        assert_eq!(
            Window::PreviousWeek.dates(tz, slot, created),
            ("2024-02-23".into(), "2024-02-29".into())
        );
        assert_eq!(
            Window::PreviousMonth.dates(tz, slot, created),
            ("2024-02-01".into(), "2024-02-29".into())
        );
        assert_eq!(
            Window::SinceLastRun.dates(tz, slot, created),
            (
                "2024-02-27T11:00:00.000+11:00".into(),
                "2024-03-01T01:59:59.999+11:00".into()
            )
        );
        // January slot: previous month is December of the previous year.
        let slot = utc("2024-01-10T00:00:00Z");
        assert_eq!(
            Window::PreviousMonth.dates(tz, slot, created),
            ("2023-12-01".into(), "2023-12-31".into())
        );
    }

    #[test]
    fn cron_and_timezone_validation() {
        assert!(parse_cron("0 2 * * *").is_ok());
        assert!(
            parse_cron("0 0 2 * * *").is_err(),
            "seconds are not accepted"
        );
        assert!(parse_cron("61 * * * *").is_err());
        assert!(parse_cron("").is_err());
        assert!(parse_timezone("Australia/Sydney").is_ok());
        assert!(parse_timezone("Mars/Olympus").is_err());
        let cron = parse_cron("0 2 * * *").unwrap();
        let tz: Tz = "Australia/Sydney".parse().unwrap();
        // 2024-06-30 (AEST, +10): 02:00 local is 16:00 UTC the day before.
        let next = next_slot(&cron, tz, utc("2024-06-30T12:00:00Z")).unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2024, 6, 30, 16, 0, 0).unwrap());
    }

    #[test]
    fn daylight_saving_in_sydney_fires_once_a_day() {
        let tz: Tz = "Australia/Sydney".parse().unwrap();
        let slots = |expr: &str, from: &str| {
            let cron = parse_cron(expr).unwrap();
            let mut t = utc(from);
            (0..4)
                .map(|_| {
                    t = next_slot(&cron, tz, t).unwrap();
                    meta::format_time(t)
                })
                .collect::<Vec<_>>()
        };
        // DST starts 2024-10-06: 02:00 does not exist that day and the run is at 03:00 AEDT.
        assert_eq!(
            slots("0 2 * * *", "2024-10-04T00:00:00Z"),
            [
                "2024-10-04T16:00:00.000Z",
                "2024-10-05T16:00:00.000Z",
                "2024-10-06T15:00:00.000Z",
                "2024-10-07T15:00:00.000Z"
            ]
        );
        // DST ends 2024-04-07: 02:30 happens twice; only the first one runs.
        assert_eq!(
            slots("30 2 * * *", "2024-04-05T00:00:00Z"),
            [
                "2024-04-05T15:30:00.000Z",
                "2024-04-06T15:30:00.000Z",
                "2024-04-07T16:30:00.000Z",
                "2024-04-08T16:30:00.000Z"
            ]
        );
    }

    struct Env {
        state: AppState,
        _dir: tempfile::TempDir,
    }

    async fn env() -> Env {
        env_with(None).await
    }

    async fn env_with(metadata_url: Option<String>) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::Config {
            data_dir: dir.path().to_path_buf(),
            metadata_url,
            ..crate::config::Config::default()
        };
        let state = crate::app::build_state(config, "http://127.0.0.1:1".into())
            .await
            .unwrap();
        for id in ["acme", "other"] {
            crate::tenancy::create_customer(
                &state.meta,
                &state.master,
                crate::tenancy::NewCustomer {
                    id: Some(id.into()),
                    name: format!("Practice {id}"),
                    source_url: format!("sqlite://{}/p.db", dir.path().display()),
                    ip_allowlist: vec![],
                    rate_limit_per_minute: None,
                },
            )
            .await
            .unwrap();
        }
        Env { state, _dir: dir }
    }

    fn spec(cron: &str, window: Window) -> ScheduleSpec {
        ScheduleSpec {
            name: "nightly".into(),
            cron: cron.into(),
            timezone: "Australia/Sydney".into(),
            procedure_name: "appointments".into(),
            request: vec![("format".into(), "csv".into())],
            window,
            enabled: true,
        }
    }

    /// Puts a schedule's clock where a test wants it.
    async fn set_times(state: &AppState, id: &str, next: &str, last: Option<&str>, created: &str) {
        sqlx::query("UPDATE schedules SET next_run_at = $1, last_run_at = $2, created_at = $3 WHERE id = $4")
            .bind(next)
            .bind(last)
            .bind(created)
            .bind(id)
            .execute(&state.meta.pool)
            .await
            .unwrap();
    }

    async fn jobs_of(state: &AppState, schedule_id: &str) -> Vec<crate::jobs::Job> {
        let filter = crate::jobs::JobFilter {
            status: None,
            procedure: None,
            created_from: None,
            created_to: None,
            sort: crate::jobs::JobSort::CreatedAsc,
            limit: 100,
            offset: 0,
        };
        let (jobs, _) = crate::jobs::list_jobs(&state.meta, "acme", &filter)
            .await
            .unwrap();
        jobs.into_iter()
            .filter(|j| j.schedule_id.as_deref() == Some(schedule_id))
            .collect()
    }

    fn request_value<'a>(job: &'a crate::jobs::Job, name: &str) -> &'a str {
        job.request
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    async fn check_each_window_makes_one_job_with_sydney_dates(state: &AppState) {
        // Slot: 02:00 Sydney on 2024-03-01 (AEDT) = 2024-02-29T15:00Z.
        let now = utc("2024-02-29T15:00:30Z");
        let cases = [
            (Window::PreviousDay, "2024-02-29", "2024-02-29"),
            (Window::PreviousWeek, "2024-02-23", "2024-02-29"),
            (Window::PreviousMonth, "2024-02-01", "2024-02-29"),
            (
                Window::SinceLastRun,
                "2024-02-29T02:00:00.000+11:00",
                "2024-03-01T01:59:59.999+11:00",
            ),
        ];
        for (window, from, to) in cases {
            let s = create_schedule(&state.meta, "acme", &spec("0 2 * * *", window))
                .await
                .unwrap();
            set_times(
                state,
                &s.id,
                "2024-02-29T15:00:00.000Z",
                Some("2024-02-28T15:00:00.000Z"),
                "2024-02-01T00:00:00.000Z",
            )
            .await;
            assert_eq!(
                run_due_schedules_at(state, now).await.unwrap(),
                1,
                "{window:?}"
            );
            let jobs = jobs_of(state, &s.id).await;
            assert_eq!(jobs.len(), 1, "{window:?}");
            assert_eq!(request_value(&jobs[0], "from_date"), from, "{window:?}");
            assert_eq!(request_value(&jobs[0], "to_date"), to, "{window:?}");
            assert_eq!(request_value(&jobs[0], "format"), "csv");
            assert!(jobs[0].metadata["from_date"].is_string());
            let after = get_schedule(&state.meta, "acme", &s.id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                after.last_run_at.as_deref(),
                Some("2024-02-29T15:00:00.000Z")
            );
            assert_eq!(after.last_job_id.as_deref(), Some(jobs[0].id.as_str()));
            // Next: 02:00 Sydney on 2024-03-02.
            assert_eq!(
                after.next_run_at.as_deref(),
                Some("2024-03-01T15:00:00.000Z")
            );
        }
    }

    async fn check_since_last_run_without_a_previous_run_starts_at_creation(state: &AppState) {
        let s = create_schedule(
            &state.meta,
            "acme",
            &spec("0 2 * * *", Window::SinceLastRun),
        )
        .await
        .unwrap();
        set_times(
            state,
            &s.id,
            "2024-02-29T15:00:00.000Z",
            None,
            "2024-02-27T00:00:00.000Z",
        )
        .await;
        run_due_schedules_at(state, utc("2024-02-29T15:00:01Z"))
            .await
            .unwrap();
        let jobs = jobs_of(state, &s.id).await;
        assert_eq!(
            request_value(&jobs[0], "from_date"),
            "2024-02-27T11:00:00.000+11:00"
        );
    }

    async fn check_a_slot_makes_one_job_even_when_run_twice(state: &AppState) {
        let s = create_schedule(&state.meta, "acme", &spec("* * * * *", Window::PreviousDay))
            .await
            .unwrap();
        let now = utc("2024-05-01T00:00:10Z");
        set_times(
            state,
            &s.id,
            "2024-05-01T00:00:00.000Z",
            None,
            "2024-04-01T00:00:00.000Z",
        )
        .await;
        assert_eq!(run_due_schedules_at(state, now).await.unwrap(), 1);
        assert_eq!(run_due_schedules_at(state, now).await.unwrap(), 0);
        // Even if the claim is undone (another node read the old row), the
        // idempotency key stops a second job for the same slot.
        set_times(
            state,
            &s.id,
            "2024-05-01T00:00:00.000Z",
            None,
            "2024-04-01T00:00:00.000Z",
        )
        .await;
        assert_eq!(run_due_schedules_at(state, now).await.unwrap(), 0);
        assert_eq!(jobs_of(state, &s.id).await.len(), 1);
    }

    async fn check_concurrent_runs_claim_a_slot_once(state: &AppState) {
        let s = create_schedule(&state.meta, "acme", &spec("* * * * *", Window::PreviousDay))
            .await
            .unwrap();
        set_times(
            state,
            &s.id,
            "2024-05-01T00:00:00.000Z",
            None,
            "2024-04-01T00:00:00.000Z",
        )
        .await;
        let now = utc("2024-05-01T00:00:10Z");
        let (a, b) = tokio::join!(
            run_due_schedules_at(state, now),
            run_due_schedules_at(state, now)
        );
        assert_eq!(a.unwrap() + b.unwrap(), 1);
        assert_eq!(jobs_of(state, &s.id).await.len(), 1);
    }

    async fn check_missed_slots_run_once(state: &AppState) {
        let s = create_schedule(&state.meta, "acme", &spec("0 2 * * *", Window::PreviousDay))
            .await
            .unwrap();
        // Due at 02:00 Sydney on 2024-03-01; the server comes back after the
        // 03-02 and 03-03 slots also passed (three missed slots).
        set_times(
            state,
            &s.id,
            "2024-02-29T15:00:00.000Z",
            None,
            "2024-02-01T00:00:00.000Z",
        )
        .await;
        let now = utc("2024-03-02T20:00:00Z"); // 07:00 Sydney on 03-03
        assert_eq!(run_due_schedules_at(state, now).await.unwrap(), 1);
        assert_eq!(run_due_schedules_at(state, now).await.unwrap(), 0);
        let jobs = jobs_of(state, &s.id).await;
        assert_eq!(jobs.len(), 1);
        // The run is for the latest missed slot (03-03), so it extracts 03-02.
        assert_eq!(request_value(&jobs[0], "from_date"), "2024-03-02");
        let after = get_schedule(&state.meta, "acme", &s.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            after.last_run_at.as_deref(),
            Some("2024-03-02T15:00:00.000Z")
        );
        // Then the next slot after now: 02:00 Sydney on 03-04.
        assert_eq!(
            after.next_run_at.as_deref(),
            Some("2024-03-03T15:00:00.000Z")
        );
    }

    async fn check_disabled_and_future_schedules_do_not_run(state: &AppState) {
        let mut disabled = spec("* * * * *", Window::PreviousDay);
        disabled.enabled = false;
        let d = create_schedule(&state.meta, "acme", &disabled)
            .await
            .unwrap();
        assert_eq!(d.next_run_at, None);
        sqlx::query("UPDATE schedules SET next_run_at = $1 WHERE id = $2")
            .bind("2024-01-01T00:00:00.000Z")
            .bind(&d.id)
            .execute(&state.meta.pool)
            .await
            .unwrap();
        let f = create_schedule(&state.meta, "acme", &spec("0 2 * * *", Window::PreviousDay))
            .await
            .unwrap();
        assert_eq!(run_due_schedules_at(state, Utc::now()).await.unwrap(), 0);
        assert!(jobs_of(state, &d.id).await.is_empty());
        assert!(jobs_of(state, &f.id).await.is_empty());
    }

    async fn check_store_is_per_customer(state: &AppState) {
        let s = create_schedule(&state.meta, "acme", &spec("0 2 * * *", Window::PreviousDay))
            .await
            .unwrap();
        assert!(s.id.starts_with("sch_") && s.id.len() == 20);
        assert!(get_schedule(&state.meta, "other", &s.id)
            .await
            .unwrap()
            .is_none());
        assert!(update_schedule(
            &state.meta,
            "other",
            &s.id,
            &spec("0 3 * * *", Window::PreviousDay)
        )
        .await
        .unwrap()
        .is_none());
        assert!(!delete_schedule(&state.meta, "other", &s.id).await.unwrap());
        assert_eq!(
            list_schedules(&state.meta, "other", 50, 0).await.unwrap().1,
            0
        );
        assert_eq!(
            list_schedules(&state.meta, "acme", 50, 0).await.unwrap().1,
            1
        );
        assert!(delete_schedule(&state.meta, "acme", &s.id).await.unwrap());
        assert!(get_schedule(&state.meta, "acme", &s.id)
            .await
            .unwrap()
            .is_none());
    }
    #[tokio::test]
    async fn each_window_makes_one_job_with_sydney_dates() {
        check_each_window_makes_one_job_with_sydney_dates(&env().await.state).await;
    }

    #[tokio::test]
    async fn since_last_run_without_a_previous_run_starts_at_creation() {
        check_since_last_run_without_a_previous_run_starts_at_creation(&env().await.state).await;
    }

    #[tokio::test]
    async fn a_slot_makes_one_job_even_when_run_twice() {
        check_a_slot_makes_one_job_even_when_run_twice(&env().await.state).await;
    }

    #[tokio::test]
    async fn concurrent_runs_claim_a_slot_once() {
        check_concurrent_runs_claim_a_slot_once(&env().await.state).await;
    }

    #[tokio::test]
    async fn missed_slots_run_once() {
        check_missed_slots_run_once(&env().await.state).await;
    }

    #[tokio::test]
    async fn disabled_and_future_schedules_do_not_run() {
        check_disabled_and_future_schedules_do_not_run(&env().await.state).await;
    }

    #[tokio::test]
    async fn store_is_per_customer() {
        check_store_is_per_customer(&env().await.state).await;
    }

    /// The same checks on PostgreSQL metadata, when a server is reachable (required when CI=true).
    #[tokio::test]
    async fn on_postgres_metadata() {
        use sqlx::Connection;
        let base = std::env::var("CIPHERSTREAM_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        // The integration-test harness sweeps `cs_it_meta_<pid>_…` databases of dead processes.
        let name = format!(
            "cs_it_meta_{}_{}",
            std::process::id(),
            crate::crypto::random_hex(4)
        );
        let admin = format!("{base}/postgres");
        let created = async {
            let mut conn = sqlx::PgConnection::connect(&admin).await?;
            sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
                .execute(&mut conn)
                .await?;
            Ok::<_, sqlx::Error>(())
        }
        .await;
        if let Err(e) = created {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(!ci, "PostgreSQL is required when CI=true: {e}");
            eprintln!("skipping PostgreSQL metadata: {e}");
            return;
        }
        let env = env_with(Some(format!("{base}/{name}"))).await;
        sqlx::query("DELETE FROM schedules")
            .execute(&env.state.meta.pool)
            .await
            .unwrap();
        check_each_window_makes_one_job_with_sydney_dates(&env.state).await;
        sqlx::query("DELETE FROM schedules")
            .execute(&env.state.meta.pool)
            .await
            .unwrap();
        check_since_last_run_without_a_previous_run_starts_at_creation(&env.state).await;
        sqlx::query("DELETE FROM schedules")
            .execute(&env.state.meta.pool)
            .await
            .unwrap();
        check_a_slot_makes_one_job_even_when_run_twice(&env.state).await;
        sqlx::query("DELETE FROM schedules")
            .execute(&env.state.meta.pool)
            .await
            .unwrap();
        check_concurrent_runs_claim_a_slot_once(&env.state).await;
        sqlx::query("DELETE FROM schedules")
            .execute(&env.state.meta.pool)
            .await
            .unwrap();
        check_missed_slots_run_once(&env.state).await;
        sqlx::query("DELETE FROM schedules")
            .execute(&env.state.meta.pool)
            .await
            .unwrap();
        check_disabled_and_future_schedules_do_not_run(&env.state).await;
        sqlx::query("DELETE FROM schedules")
            .execute(&env.state.meta.pool)
            .await
            .unwrap();
        check_store_is_per_customer(&env.state).await;
        env.state.meta.pool.close().await;
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}
