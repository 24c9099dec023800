//! Deterministic synthetic practice data.
//!
//! `generate` recreates the practice schema in the target and fills it. All rows are
//! produced in Rust, in a fixed order, from `ChaCha8Rng` streams seeded by
//! `(seed, stream)`, and never read back from the database: the same seed, patient
//! count and `as_of` give the same rows in SQLite, MariaDB and PostgreSQL. Generation
//! runs on a blocking thread and hands batches to the writer through a small bounded
//! channel, so generating and loading overlap and memory stays flat.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::NaiveDate;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;

use super::bank::Bank;
use super::calendar::Calendar;
use super::expenses;
use super::history::{self, Ids, Shared};
use super::schema::TABLES;
use super::setup;
use super::tables::{Batch, Out, DEFS, PATIENTS};
use super::writer::Target;

/// Rows per batch (one transaction each).
const BATCH_ROWS: usize = 10_000;
/// Batches in flight between the generator and the writer.
const CHANNEL_BATCHES: usize = 4;

/// What to generate and where.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// `sqlite://path` (created if missing), `mysql://…` or `postgres://…`.
    pub target_url: String,
    /// Number of patients; every other table scales from it.
    pub patients: u32,
    /// Seed of the random generator: the same seed, size and `as_of` give the same rows.
    pub seed: u64,
    /// The practice's "today": history lies before it, booked appointments after it.
    pub as_of: NaiveDate,
}

/// Row counts per table and the time taken.
#[derive(Debug, Clone)]
pub struct GenerateReport {
    pub tables: Vec<(String, u64)>,
    pub elapsed: std::time::Duration,
}

/// Creates the practice schema in the target and fills it.
pub async fn generate(opts: GenerateOptions) -> Result<GenerateReport> {
    let started = Instant::now();
    let target = Target::connect(&opts.target_url).await?;
    target
        .recreate_tables()
        .await
        .context("recreating the practice tables")?;
    tracing::info!(
        dialect = target.dialect().as_str(),
        patients = opts.patients,
        seed = opts.seed,
        as_of = %opts.as_of,
        "generating demo practice data"
    );

    let (tx, rx) = mpsc::channel::<Batch>(CHANNEL_BATCHES);
    let plan = opts.clone();
    let producer = tokio::task::spawn_blocking(move || produce(&plan, Out::new(tx, BATCH_ROWS)));

    let loaded = load(&target, rx).await;
    // The generator stops at its next batch once the receiver is gone.
    producer.await.context("the demo data generator panicked")?;
    let counts = loaded?;
    let rows: u64 = counts.iter().sum();
    tracing::info!(
        rows,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "demo rows loaded; creating indexes"
    );

    target
        .create_indexes()
        .await
        .context("creating the practice indexes")?;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "demo indexes created"
    );
    target.finish().await?;
    target.close().await;

    let tables: Vec<(String, u64)> = TABLES
        .iter()
        .zip(&counts)
        .map(|(t, n)| (t.to_string(), *n))
        .collect();
    for (table, rows) in &tables {
        tracing::info!(table = %table, rows, "demo table loaded");
    }
    let elapsed = started.elapsed();
    tracing::info!(
        elapsed_ms = elapsed.as_millis() as u64,
        "demo practice data generated"
    );
    Ok(GenerateReport { tables, elapsed })
}

/// Writes batches as they arrive, up to `Target::lanes` at a time but never two of the
/// same table at once, so every table is loaded in generation order.
async fn load(target: &Target, mut rx: mpsc::Receiver<Batch>) -> Result<Vec<u64>> {
    let lanes = target.lanes();
    let mut counts = vec![0u64; DEFS.len()];
    let mut busy = vec![false; DEFS.len()];
    let mut inflight = FuturesUnordered::new();
    let mut waiting: Option<Batch> = None;
    let mut open = true;
    let mut last_log = Instant::now();
    loop {
        if let Some(batch) = waiting.take_if(|b| !busy[b.table] && inflight.len() < lanes) {
            busy[batch.table] = true;
            let (table, rows) = (batch.table, batch.rows.len() as u64);
            inflight.push(async move {
                target
                    .write(&DEFS[table], batch.rows)
                    .await
                    .map(|()| (table, rows))
            });
        }
        let take = open && waiting.is_none() && inflight.len() < lanes;
        tokio::select! {
            batch = rx.recv(), if take => match batch {
                Some(batch) => waiting = Some(batch),
                None => open = false,
            },
            Some(done) = inflight.next(), if !inflight.is_empty() => {
                let (table, rows) = done?;
                busy[table] = false;
                counts[table] += rows;
                if last_log.elapsed() >= Duration::from_secs(10) {
                    last_log = Instant::now();
                    let total: u64 = counts.iter().sum();
                    tracing::info!(rows = total, patients = counts[PATIENTS], "demo data progress");
                }
            }
            else => break,
        }
    }
    Ok(counts)
}

/// Generates every row, in a fixed order: the setup tables, then patient after patient
/// (each with their whole history), then deposits and expenses.
fn produce(opts: &GenerateOptions, mut out: Out) {
    let w = setup::build(opts.seed, opts.patients, opts.as_of, &mut out);
    let mut shared = Shared {
        cal: Calendar::new(&w),
        ids: Ids::default(),
        bank: Bank::default(),
    };
    let step = (opts.patients / 10).max(1);
    for id in 1..=opts.patients {
        if out.is_closed() {
            return;
        }
        history::simulate(&w, &mut shared, &mut out, id as i64);
        if id % step == 0 {
            tracing::debug!(patients = id, of = opts.patients, "patients generated");
        }
    }
    shared.bank.write_deposits(&w, &mut out);
    expenses::write(&w, &shared.bank, &mut out);
    out.finish();
}
