//! Workers: claim a queued job, run the extraction pipeline into the object store
//! (encrypted with the customer's data key), report progress, honour cancels and
//! time limits, retry transient failures. The janitor recovers jobs of dead workers
//! and removes expired files.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use chrono::Utc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::store::{self, Finished};
use super::{Job, JobStatus};
use crate::catalog::{self, Plan};
use crate::crypto::cse1::Cse1Writer;
use crate::export::{self, Compression, ExportSpec, OutputFormat, Progress};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::source::{Source, SourceError, SourceSettings};
use crate::tenancy;

/// How workers behave; from configuration.
#[derive(Debug, Clone)]
pub struct JobSettings {
    pub workers: usize,
    pub per_customer_cap: i64,
    pub lease: Duration,
    pub max_retries: i64,
    pub retry_backoff: Duration,
    pub max_runtime: Duration,
    pub retention: Duration,
    pub poll_interval: Duration,
    pub progress_interval: Duration,
}

/// Starts the worker loops and the janitor; they stop when `shutdown` fires.
pub fn spawn_workers(
    state: AppState,
    settings: JobSettings,
    shutdown: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    let node = crate::crypto::random_hex(4);
    for n in 0..settings.workers {
        let (state, settings, shutdown) = (state.clone(), settings.clone(), shutdown.clone());
        let worker = format!("worker-{node}-{n}");
        handles.push(tokio::spawn(async move {
            worker_loop(state, settings, worker, shutdown).await
        }));
    }
    handles.push(tokio::spawn(janitor_loop(state, settings, shutdown)));
    handles
}

async fn worker_loop(
    state: AppState,
    settings: JobSettings,
    worker: String,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        let lease_until = Utc::now() + settings.lease;
        match store::claim_next(&state.meta, &worker, lease_until, settings.per_customer_cap).await
        {
            Ok(Some(job)) => {
                tracing::info!(job_id = %job.id, %worker, "running job");
                if let Err(error) =
                    run_job(&state, &settings, &worker, job.clone(), &shutdown).await
                {
                    tracing::error!(job_id = %job.id, error = format!("{error:#}"), "job bookkeeping failed");
                }
            }
            Ok(None) => {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(settings.poll_interval) => {}
                }
            }
            Err(error) => {
                tracing::error!(error = format!("{error:#}"), "claiming a job failed");
                tokio::time::sleep(settings.poll_interval).await;
            }
        }
    }
}

/// How often the janitor walks the store for abandoned staging files and prunes the audit trail.
const ORPHAN_SWEEP_EVERY: Duration = Duration::from_secs(600);

async fn janitor_loop(state: AppState, settings: JobSettings, shutdown: CancellationToken) {
    let every = settings.poll_interval.max(Duration::from_millis(500));
    let mut last_orphan_sweep: Option<Instant> = None;
    loop {
        if let Err(error) = sweep(&state, &settings).await {
            tracing::error!(error = format!("{error:#}"), "janitor sweep failed");
        }
        if last_orphan_sweep.is_none_or(|t| t.elapsed() > ORPHAN_SWEEP_EVERY) {
            // Staging files of uploads whose process died long ago (a retried job removes
            // its own at once); anything younger could still be a live upload.
            match state
                .storage
                .cleanup_orphans(settings.max_runtime + settings.lease * 2)
                .await
            {
                Ok(removed) if removed > 0 => {
                    tracing::info!(removed, "removed abandoned upload staging files")
                }
                Ok(_) => {}
                Err(error) => tracing::error!(error = format!("{error:#}"), "orphan sweep failed"),
            }
            let cutoff =
                Utc::now() - chrono::Duration::days(state.config.audit_retention_days as i64);
            match crate::tenancy::prune_audit(&state.meta, cutoff).await {
                Ok(pruned) if pruned > 0 => {
                    tracing::info!(pruned, "removed audit entries past their retention")
                }
                Ok(_) => {}
                Err(error) => tracing::error!(error = format!("{error:#}"), "audit pruning failed"),
            }
            last_orphan_sweep = Some(Instant::now());
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// One janitor pass: requeue jobs of dead workers, delete expired files.
pub async fn sweep(state: &AppState, settings: &JobSettings) -> anyhow::Result<()> {
    let recovered = store::recover_expired_leases(&state.meta, settings.max_retries).await?;
    if recovered > 0 {
        tracing::warn!(recovered, "requeued jobs whose worker stopped");
    }
    for (id, key) in store::expired_files(&state.meta).await? {
        state
            .storage
            .delete(&key)
            .await
            .with_context(|| format!("deleting the file of job {id}"))?;
        store::forget_file(&state.meta, &id).await?;
        tracing::info!(job_id = %id, "removed expired file");
    }
    Ok(())
}

const SHUTDOWN: &str = "the server is shutting down";

/// How a run ended.
enum Outcome {
    /// Stopped by shutdown: back to the queue for the next start.
    Released,
    /// The stored file, its rows and the id of the data key that encrypted it.
    Stored(crate::storage::StoredObject, u64, String),
    Cancelled(&'static str),
    Failed(String, bool),
}

async fn run_job(
    state: &AppState,
    settings: &JobSettings,
    worker: &str,
    job: Job,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let outcome = match execute(state, settings, worker, &job, shutdown, started).await {
        Ok(outcome) => outcome,
        Err(error) => Outcome::Failed(format!("{error:#}"), false),
    };
    match outcome {
        Outcome::Stored(stored, rows, key_id) => {
            let finished = Finished {
                rows: rows as i64,
                object_key: object_key(&job),
                size: stored.size as i64,
                sha256: stored.sha256,
                key_id,
                expires_at: Utc::now() + settings.retention,
                execution_ms: started.elapsed().as_millis() as i64,
            };
            if !store::complete(&state.meta, &job.id, worker, &finished).await? {
                // The lease was lost (we were too slow): another worker owns the job now.
                state.storage.delete(&finished.object_key).await?;
            }
        }
        Outcome::Released => store::release(&state.meta, &job.id, worker).await?,
        Outcome::Cancelled(reason) => {
            store::finish_unsuccessfully(
                &state.meta,
                &job.id,
                worker,
                JobStatus::Cancelled,
                reason,
            )
            .await?;
        }
        Outcome::Failed(message, transient)
            if transient && job.retry_count < settings.max_retries =>
        {
            let backoff = settings.retry_backoff * 2u32.saturating_pow(job.retry_count as u32);
            tracing::warn!(job_id = %job.id, %message, retry = job.retry_count + 1, "transient failure; retrying");
            store::retry_later(&state.meta, &job.id, worker, Utc::now() + backoff, &message)
                .await?;
        }
        Outcome::Failed(message, _) => {
            tracing::warn!(job_id = %job.id, %message, "job failed");
            store::finish_unsuccessfully(&state.meta, &job.id, worker, JobStatus::Failed, &message)
                .await?;
        }
    }
    Ok(())
}

/// `customers/{customer}/jobs/{job_id}.{ext}[.gz|.zip].cse`
pub fn object_key(job: &Job) -> String {
    format!(
        "customers/{}/jobs/{}.{}{}.cse",
        job.customer_id,
        job.id,
        job.output_format,
        match job.compression.as_str() {
            "gzip" => ".gz",
            "zip" => ".zip",
            _ => "",
        }
    )
}

async fn execute(
    state: &AppState,
    settings: &JobSettings,
    worker: &str,
    job: &Job,
    shutdown: &CancellationToken,
    started: Instant,
) -> anyhow::Result<Outcome> {
    let source_settings = SourceSettings {
        pool_size: state.config.source_pool_size,
        statement_timeout: settings.max_runtime,
    };
    let customer_id = job.customer_id.clone();
    let source = state
        .sources
        .get_or_open(
            &customer_id,
            async { Ok(tenancy::source_url(&state.meta, &state.master, &customer_id).await?) },
            source_settings,
        )
        .await?;
    let (plan, format, compression) = match job_plan(state, job, &source).await {
        Ok(planned) => planned,
        Err(outcome) => return Ok(outcome),
    };
    let estimated = match source.count(&plan).await {
        Ok(n) => n,
        Err(error) => return Ok(Outcome::Failed(error.to_string(), error.is_transient())),
    };
    store::record_estimate(&state.meta, &job.id, worker, estimated as i64).await?;
    let data_key = tenancy::data_key(&state.meta, &state.master, &customer_id).await?;

    let cancel = CancellationToken::new();
    let progress = Arc::new(Progress::new());
    let (rows_tx, rows_rx) = mpsc::channel(4);
    let stream_source = source.clone();
    let stream_plan = plan.clone();
    let source_task =
        tokio::spawn(async move { stream_source.stream(&stream_plan, &rows_tx).await });
    let entry = export::file_name(&job.id, format, Compression::None);
    let spec = ExportSpec {
        format,
        compression,
        columns: plan.columns.clone(),
        entry_name: entry,
    };
    let plain = export::spawn_pipeline(spec, rows_rx, progress.clone(), cancel.clone());
    let encrypted = encrypt(plain, data_key)?;
    let key = object_key(job);
    // A retry after a crash finds the dead attempt's staging file: drop it first.
    let removed = state.storage.remove_partials(&key).await?;
    if removed > 0 {
        tracing::info!(job_id = %job.id, removed, "removed the partial upload of an earlier attempt");
    }
    let storage = state.storage.clone();
    let mut upload = tokio::spawn(async move { storage.put_stream(&key, encrypted).await });

    let mut ticker = tokio::time::interval(settings.progress_interval);
    let mut stop_reason: Option<&'static str> = None;
    let stored = loop {
        tokio::select! {
            result = &mut upload => break result.context("the upload task panicked")?,
            _ = ticker.tick() => {
                let rows = progress.rows();
                let percent = (rows * 100).checked_div(estimated).unwrap_or(0).min(99) as i64;
                let elapsed = started.elapsed().as_secs_f64();
                let eta = (rows > 0).then(|| (elapsed * (estimated.saturating_sub(rows)) as f64 / rows as f64).ceil() as i64);
                let lease_until = Utc::now() + settings.lease;
                match store::report_progress(&state.meta, &job.id, worker, rows as i64, percent, eta, lease_until).await? {
                    None => { stop_reason = Some("the job was taken over by another worker"); cancel.cancel(); }
                    Some(true) => { stop_reason = Some("cancelled by user"); cancel.cancel(); }
                    Some(false) => {}
                }
                if started.elapsed() > settings.max_runtime {
                    stop_reason = Some("cancelled by system timeout");
                    cancel.cancel();
                }
                if shutdown.is_cancelled() && stop_reason.is_none() {
                    // Leave the job for the next start: the lease will expire and requeue it.
                    cancel.cancel();
                    stop_reason = Some(SHUTDOWN);
                }
            }
        }
    };
    source_task.abort();
    if let Some(reason) = stop_reason {
        if stored.is_ok() {
            // The upload finished in the same instant as the stop: remove the file all the same.
            state.storage.delete(&object_key(job)).await?;
        }
        if shutdown.is_cancelled() && reason == SHUTDOWN {
            return Ok(Outcome::Released);
        }
        return Ok(Outcome::Cancelled(reason));
    }
    match stored {
        Ok(object) => Ok(Outcome::Stored(
            object,
            progress.rows(),
            crate::crypto::key_id(&data_key),
        )),
        Err(error) => {
            let source_error = source_task_error(source_task).await;
            match source_error {
                Some(e) => Ok(Outcome::Failed(e.to_string(), e.is_transient())),
                None => Ok(Outcome::Failed(format!("{error:#}"), false)),
            }
        }
    }
}

/// What a job runs: its catalog procedure's plan or, for `table:<name>`, the table's,
/// both checked again now. A job that can no longer run fails with the reason.
async fn job_plan(
    state: &AppState,
    job: &Job,
    source: &Source,
) -> Result<(Plan, OutputFormat, Compression), Outcome> {
    let invalid = |error: ApiError| {
        Outcome::Failed(
            format!("the job's parameters are no longer valid: {error}"),
            false,
        )
    };
    let max_limit = state.config.max_limit;
    if let Some(name) = job.procedure_name.strip_prefix(catalog::TABLE_JOB_PREFIX) {
        let table = match source.table(name).await {
            Ok(Some(table)) => table,
            Ok(None) => {
                return Err(Outcome::Failed(
                    format!("table {name:?} is no longer readable in the practice database"),
                    false,
                ))
            }
            Err(error) => return Err(Outcome::Failed(error.to_string(), error.is_transient())),
        };
        let params =
            catalog::parse_table_params(&table, &job.request, max_limit).map_err(invalid)?;
        let plan = catalog::plan_table(&table, &params, source.dialect);
        return Ok((plan, params.format, params.compression));
    }
    let Some(procedure) = state.catalog.get(&job.procedure_name) else {
        return Err(Outcome::Failed(
            format!(
                "procedure {:?} is no longer in the catalog",
                job.procedure_name
            ),
            false,
        ));
    };
    let params = catalog::parse_params(procedure, &job.request, max_limit).map_err(invalid)?;
    let plan = catalog::plan(procedure, &params, source.dialect);
    Ok((plan, params.format, params.compression))
}

async fn source_task_error(task: JoinHandle<Result<(), SourceError>>) -> Option<SourceError> {
    match task.await {
        Ok(Err(error)) => Some(error),
        _ => None,
    }
}

/// A `Write` into a buffer the async side drains after every write.
#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuffer {
    fn take(&self) -> Bytes {
        self.0
            .lock()
            .map(|mut b| Bytes::from(std::mem::take(&mut *b)))
            .unwrap_or_default()
    }
}

/// Encrypts the plaintext chunks into CSE1 chunks, ending with the storage's end-of-body
/// marker; an error item passes through and ends the stream.
pub fn encrypt(
    mut plain: mpsc::Receiver<std::io::Result<Bytes>>,
    key: [u8; 32],
) -> anyhow::Result<mpsc::Receiver<std::io::Result<Bytes>>> {
    let buffer = SharedBuffer::default();
    let mut writer = Cse1Writer::new(buffer.clone(), &key).context("starting encryption")?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        while let Some(item) = plain.recv().await {
            let result = item.and_then(|chunk| writer.write_all(&chunk));
            if let Err(error) = result {
                let _ = tx.send(Err(error)).await;
                return;
            }
            let out = buffer.take();
            if !out.is_empty() && tx.send(Ok(out)).await.is_err() {
                return;
            }
        }
        match writer.finish() {
            Ok(_) => {
                // The last CSE1 chunk, then the storage's end-of-body marker (an empty chunk):
                // a sender dropped without it means the upload is abandoned, not complete.
                if tx.send(Ok(buffer.take())).await.is_ok() {
                    let _ = tx.send(Ok(Bytes::new())).await;
                }
            }
            Err(error) => {
                let _ = tx.send(Err(error)).await;
            }
        }
    });
    Ok(rx)
}
