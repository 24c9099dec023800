//! Webhook delivery throughput and latency (see BENCHMARKS.md, "Webhooks").
//!
//! `cargo bench --bench webhooks` (release). The real server runs in this process on
//! 127.0.0.1:0 with `webhook_allow_loopback = true` and delivers to an axum receiver in
//! the same process, which checks `X-CipherStream-Signature` (hex HMAC-SHA256 of the
//! raw body, keyed with the secret string) and the body on every call. Events are
//! queued with `POST /v1/webhooks/{id}/test` by reqwest clients. Clients and receiver
//! run on a runtime of their own (threads `bench-io`) so that CPU time can be told
//! apart from the server's (`tokio-rt-worker`, `sqlx-sqlite-worker`); all of them share
//! the machine's cores.
//!
//! Per metadata backend (SQLite, and PostgreSQL when it answers) and per
//! `webhook_concurrency`, on one endpoint:
//!
//! - idle latency: single events, each delivered before the next, `WH_BENCH_IDLE_GAP_MS`
//!   apart (first concurrency only: the knob cannot matter with one event in flight);
//! - burst: `WH_BENCH_EVENTS` events queued by `WH_BENCH_CLIENTS` concurrent clients as
//!   fast as the API takes them while the dispatcher delivers; queue rate, delivery
//!   rate (first queue request to last arrival), latency of every event;
//! - steady: events queued open-loop at half the burst's delivery rate for
//!   `WH_BENCH_STEADY_SECONDS`; their latency;
//! - API alone: the server restarted with `role = "api"` (no dispatcher) takes
//!   `WH_BENCH_EVENTS` events; queue rate;
//! - dispatcher alone: restarted with `role = "all"` on that backlog; drain rate.
//!
//! Latency is the receiver's arrival instant minus the instant just before the client
//! sent the queue request (one monotonic clock). A bad signature, a wrong body, a
//! failed queue request or a lost delivery fails the run instead of printing a figure.
//!
//! Environment: `WH_BENCH_BACKENDS` (`sqlite,postgres`), `WH_BENCH_CONCURRENCY`
//! (`16,64`), `WH_BENCH_EVENTS` (3000), `WH_BENCH_CLIENTS` (8), `WH_BENCH_IDLE` (300),
//! `WH_BENCH_IDLE_GAP_MS` (200), `WH_BENCH_STEADY_SECONDS` (10),
//! `WH_BENCH_TIMEOUT_SECONDS` (120), `CIPHERSTREAM_TEST_POSTGRES_URL`
//! (`postgres://postgres@127.0.0.1:5432`).

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use cipherstream::config::Role;
use cipherstream::demo::{self, GenerateOptions};
use cipherstream::{Application, Config};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::Connection;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";
/// Clock ticks per second in /proc (USER_HZ, 100 on Linux).
const TICK_MS: f64 = 10.0;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// What the bench is asked to do.
#[derive(Debug, Clone)]
struct Plan {
    events: usize,
    clients: usize,
    idle: usize,
    idle_gap: Duration,
    steady: Duration,
    timeout: Duration,
}

/// The runtime of the clients and the receiver (threads `bench-io`).
fn io_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bench-io")
            .enable_all()
            .build()
            .expect("the bench-io runtime")
    })
}

/// Runs `future` on the bench-io runtime and waits for it.
async fn on_io<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    io_runtime().spawn(future).await.expect("bench-io task")
}

// ---------------------------------------------------------------------------------
// Warnings and errors of the server, counted (printing thousands would distort it).

#[derive(Default)]
struct LogCounter {
    seen: Mutex<BTreeMap<String, usize>>,
}

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

struct CountingLayer(Arc<LogCounter>);

impl<S: tracing::Subscriber> Layer<S> for CountingLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let meta = event.metadata();
        let mut fields = Fields(format!("{} {}:", meta.level(), meta.target()));
        event.record(&mut fields);
        let key: String = fields.0.chars().take(300).collect();
        *self.0.seen.lock().unwrap().entry(key).or_default() += 1;
    }
}

impl LogCounter {
    fn take(&self) -> BTreeMap<String, usize> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

// ---------------------------------------------------------------------------------
// CPU time, from /proc: this process by thread name, PostgreSQL, the whole machine.

#[derive(Debug, Default, Clone)]
struct CpuSnapshot {
    at: Option<Instant>,
    /// Live threads: tid to (group, ticks).
    threads: HashMap<u32, (&'static str, u64)>,
    /// Ticks of the whole process (exited threads included).
    process: u64,
    /// Ticks of every `postgres` process, by pid.
    postgres: HashMap<u32, u64>,
    /// Machine-wide (busy, total) ticks summed over cores.
    machine: (u64, u64),
}

fn stat_ticks(path: &str) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    let fields: Vec<&str> = text[close + 2..].split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat; here 0-based after the comm.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

fn thread_group(comm: &str) -> &'static str {
    if comm.starts_with("tokio-r") {
        "server runtime"
    } else if comm.starts_with("sqlx-sqlite") {
        "sqlite threads"
    } else if comm.starts_with("bench-io") {
        "clients + receiver"
    } else {
        "other threads"
    }
}

impl CpuSnapshot {
    fn take() -> CpuSnapshot {
        let mut snap = CpuSnapshot {
            at: Some(Instant::now()),
            ..CpuSnapshot::default()
        };
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for task in tasks.flatten() {
                let Some(tid) = task
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    continue;
                };
                let path = format!("{}/stat", task.path().display());
                if let Some((comm, ticks)) = stat_ticks(&path) {
                    snap.threads.insert(tid, (thread_group(&comm), ticks));
                }
            }
        }
        snap.process = stat_ticks("/proc/self/stat").map_or(0, |(_, t)| t);
        if let Ok(procs) = std::fs::read_dir("/proc") {
            for entry in procs.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    continue;
                };
                if let Some((comm, ticks)) = stat_ticks(&format!("/proc/{pid}/stat")) {
                    if comm == "postgres" {
                        snap.postgres.insert(pid, ticks);
                    }
                }
            }
        }
        if let Ok(text) = std::fs::read_to_string("/proc/stat") {
            if let Some(line) = text.lines().next() {
                let v: Vec<u64> = line
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|x| x.parse().ok())
                    .collect();
                let total: u64 = v.iter().take(8).sum();
                let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
                snap.machine = (total - idle, total);
            }
        }
        snap
    }
}

/// CPU time spent between two snapshots, in ms.
#[derive(Debug, Default, Clone)]
struct CpuUse {
    wall_ms: f64,
    groups: BTreeMap<&'static str, f64>,
    /// PostgreSQL processes of the bench database and the server's background processes.
    postgres_ms: Option<f64>,
    /// Share of the machine's cores busy (anyone's work), 0-1.
    machine_busy: f64,
    cores: usize,
}

impl CpuUse {
    fn between(before: &CpuSnapshot, after: &CpuSnapshot, postgres_pids: &HashSet<u32>) -> CpuUse {
        let mut groups = BTreeMap::new();
        let mut live = 0.0;
        for (tid, (group, ticks)) in &after.threads {
            // A thread started in between counts from zero.
            let earlier = before.threads.get(tid).map_or(0, |(_, t)| *t);
            let ms = ticks.saturating_sub(earlier) as f64 * TICK_MS;
            live += ms;
            *groups.entry(*group).or_default() += ms;
        }
        let process = after.process.saturating_sub(before.process) as f64 * TICK_MS;
        // Threads that exited in between (their time stays in the process total).
        *groups.entry("other threads").or_default() += (process - live).max(0.0);
        let postgres_ms = (!postgres_pids.is_empty()).then(|| {
            postgres_pids
                .iter()
                .map(|pid| {
                    let a = after.postgres.get(pid).copied().unwrap_or(0);
                    let b = before.postgres.get(pid).copied().unwrap_or(0);
                    a.saturating_sub(b) as f64 * TICK_MS
                })
                .sum()
        });
        let busy = after.machine.0.saturating_sub(before.machine.0) as f64;
        let total = after.machine.1.saturating_sub(before.machine.1) as f64;
        CpuUse {
            wall_ms: match (before.at, after.at) {
                (Some(b), Some(a)) => (a - b).as_secs_f64() * 1000.0,
                _ => 0.0,
            },
            groups,
            postgres_ms,
            machine_busy: if total > 0.0 { busy / total } else { 0.0 },
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    fn group(&self, name: &str) -> f64 {
        self.groups.get(name).copied().unwrap_or(0.0)
    }

    /// Share of the machine's cores used by this process and the bench's PostgreSQL
    /// sessions; the rest of `machine_busy` is other work on the machine.
    fn ours(&self) -> f64 {
        let total: f64 = self.groups.values().sum::<f64>() + self.postgres_ms.unwrap_or(0.0);
        total / (self.wall_ms * self.cores as f64).max(1.0)
    }

    /// Share of the machine's cores busy with work not of this bench.
    fn foreign(&self) -> f64 {
        (self.machine_busy - self.ours()).max(0.0)
    }

    /// One line: CPU ms per event by group, and how busy the machine was.
    fn describe(&self, events: usize) -> String {
        let per = |ms: f64| ms / events.max(1) as f64;
        let server = self.group("server runtime") + self.group("sqlite threads");
        let postgres = self
            .postgres_ms
            .map(|ms| format!("postgres {:.2}, ", per(ms)))
            .unwrap_or_default();
        format!(
            "CPU per event: server {:.2} ms (runtime {:.2}, sqlite {:.2}), {postgres}clients+receiver {:.2}, other {:.2}; machine {:.0}% busy of {} cores over {:.1} s, this bench {:.0}%",
            per(server),
            per(self.group("server runtime")),
            per(self.group("sqlite threads")),
            per(self.group("clients + receiver")),
            per(self.group("other threads")),
            100.0 * self.machine_busy,
            self.cores,
            self.wall_ms / 1000.0,
            100.0 * self.ours()
        )
    }
}

// ---------------------------------------------------------------------------------
// PostgreSQL: which pids count, and what the server's sessions wait on.

fn postgres_base() -> String {
    std::env::var("CIPHERSTREAM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// The sessions of `db` and the cluster's background processes.
async fn postgres_pids(db: &str) -> HashSet<u32> {
    let Ok(mut conn) = sqlx::PgConnection::connect(&format!("{}/postgres", postgres_base())).await
    else {
        return HashSet::new();
    };
    let pids: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 OR backend_type <> 'client backend'",
    )
    .bind(db)
    .fetch_all(&mut conn)
    .await
    .unwrap_or_default();
    let _ = conn.close().await;
    pids.into_iter().map(|p| p as u32).collect()
}

/// Samples `pg_stat_activity` of `db` every 10 ms until stopped: what the server's
/// non-idle sessions are doing (wait event and statement), and how many there are.
struct WaitSampler {
    stop: CancellationToken,
    task: JoinHandle<(usize, BTreeMap<String, usize>)>,
}

impl WaitSampler {
    fn start(db: String) -> WaitSampler {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = io_runtime().spawn(async move {
            let mut samples = 0;
            let mut seen = BTreeMap::new();
            let Ok(mut conn) =
                sqlx::PgConnection::connect(&format!("{}/postgres", postgres_base())).await
            else {
                return (0, seen);
            };
            while !token.is_cancelled() {
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT COALESCE(wait_event_type || ':' || wait_event, 'on CPU'), \
                     regexp_replace(left(query, 90), '\\s+', ' ', 'g') \
                     FROM pg_stat_activity WHERE datname = $1 AND state <> 'idle' \
                     AND pid <> pg_backend_pid()",
                )
                .bind(&db)
                .fetch_all(&mut conn)
                .await
                .unwrap_or_default();
                samples += 1;
                for (wait, query) in rows {
                    *seen.entry(format!("{wait:<28} {query}")).or_default() += 1;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _ = conn.close().await;
            (samples, seen)
        });
        WaitSampler { stop, task }
    }

    /// The busiest states: (average sessions in that state, state).
    async fn finish(self) -> Vec<(f64, String)> {
        self.stop.cancel();
        let (samples, seen) = self.task.await.unwrap_or_default();
        let mut top: Vec<(f64, String)> = seen
            .into_iter()
            .map(|(k, n)| (n as f64 / samples.max(1) as f64, k))
            .collect();
        top.sort_by(|a, b| b.0.total_cmp(&a.0));
        top.truncate(8);
        top
    }
}

/// Creates (or recreates) a PostgreSQL database; returns its URL.
async fn fresh_postgres(name: &str) -> Result<String, String> {
    let base = postgres_base();
    let mut conn = sqlx::PgConnection::connect(&format!("{base}/postgres"))
        .await
        .map_err(|e| e.to_string())?;
    for sql in [
        format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        format!("CREATE DATABASE \"{name}\""),
    ] {
        sqlx::raw_sql(&sql)
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
    }
    let _ = conn.close().await;
    Ok(format!("{base}/{name}"))
}

async fn drop_postgres(name: &str) {
    if let Ok(mut conn) =
        sqlx::PgConnection::connect(&format!("{}/postgres", postgres_base())).await
    {
        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        if let Err(error) = sqlx::raw_sql(&sql).execute(&mut conn).await {
            eprintln!("dropping {name}: {error}");
        }
        let _ = conn.close().await;
    }
}

/// Drops the databases of earlier runs whose process is gone (a failed run leaves one).
async fn sweep_stale_postgres() {
    let Ok(mut conn) = sqlx::PgConnection::connect(&format!("{}/postgres", postgres_base())).await
    else {
        return;
    };
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'cs\\_bench\\_webhooks\\_%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap_or_default();
    let _ = conn.close().await;
    for name in names {
        let pid = name
            .trim_start_matches("cs_bench_webhooks_")
            .split('_')
            .next()
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        }) {
            drop_postgres(&name).await;
        }
    }
}

// ---------------------------------------------------------------------------------
// The receiver.

#[derive(serde::Deserialize)]
struct Body {
    event: String,
    delivery_id: String,
    #[serde(default)]
    test: bool,
}

#[derive(Default)]
struct Received {
    /// First arrival of every delivery id.
    first: HashMap<String, Instant>,
    duplicates: usize,
    bad_signature: usize,
    bad_body: usize,
}

struct ReceiverState {
    secret: String,
    received: Mutex<Received>,
    unique: AtomicUsize,
    arrived: Notify,
}

fn signature_ok(secret: &str, header: &str, body: &[u8]) -> bool {
    // One `sha256=<hex>` per active secret, space-separated.
    header.split_whitespace().any(|part| {
        let Some(hex_part) = part.strip_prefix("sha256=") else {
            return false;
        };
        let Ok(expected) = hex::decode(hex_part) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(body);
        mac.verify_slice(&expected).is_ok()
    })
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let signed = signature_ok(&state.secret, &header("x-cipherstream-signature"), &body);
    let parsed = serde_json::from_slice::<Body>(&body).ok().filter(|b| {
        b.event == "job.completed"
            && b.test
            && b.delivery_id == header("x-cipherstream-delivery")
            && header("x-cipherstream-event") == "job.completed"
    });
    let mut received = state.received.lock().unwrap();
    if !signed {
        received.bad_signature += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let Some(parsed) = parsed else {
        received.bad_body += 1;
        return StatusCode::BAD_REQUEST;
    };
    match received.first.entry(parsed.delivery_id) {
        Entry::Occupied(_) => received.duplicates += 1,
        Entry::Vacant(slot) => {
            slot.insert(at);
            state.unique.fetch_add(1, Ordering::SeqCst);
            state.arrived.notify_waiters();
        }
    }
    StatusCode::OK
}

struct Receiver {
    url: String,
    state: Arc<ReceiverState>,
    stop: CancellationToken,
}

impl Receiver {
    async fn start(secret: &str) -> Receiver {
        let state = Arc::new(ReceiverState {
            secret: secret.to_string(),
            received: Mutex::default(),
            unique: AtomicUsize::new(0),
            arrived: Notify::new(),
        });
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(state.clone());
        let stop = CancellationToken::new();
        let token = stop.clone();
        let addr = on_io(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("binding the receiver");
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move { token.cancelled().await })
                    .await
                    .expect("receiver")
            });
            addr
        })
        .await;
        Receiver {
            url: format!("http://{addr}/hook"),
            state,
            stop,
        }
    }

    fn count(&self) -> usize {
        self.state.unique.load(Ordering::SeqCst)
    }

    /// Waits until `count` distinct deliveries arrived; false on timeout.
    async fn wait_for(&self, count: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count() >= count {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.count() >= count;
            }
        }
    }

    fn arrival(&self, delivery_id: &str) -> Option<Instant> {
        self.state
            .received
            .lock()
            .unwrap()
            .first
            .get(delivery_id)
            .copied()
    }

    /// (duplicates, bad signatures, bad bodies).
    fn faults(&self) -> (usize, usize, usize) {
        let r = self.state.received.lock().unwrap();
        (r.duplicates, r.bad_signature, r.bad_body)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

// ---------------------------------------------------------------------------------
// The server: one data directory and metadata database, restartable in another role.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

struct Instance {
    base: String,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    /// Just before the server's loops were started.
    started: Instant,
}

struct Server {
    concurrency: usize,
    data_dir: PathBuf,
    metadata_url: Option<String>,
    postgres_db: Option<String>,
    client: reqwest::Client,
    key: String,
    webhook_id: String,
    instance: Option<Instance>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(
        backend: Backend,
        concurrency: usize,
        practice: &str,
        receiver_url: &str,
        secret: &str,
    ) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let postgres_db = (backend == Backend::Postgres).then(|| {
            format!(
                "cs_bench_webhooks_{}_{}",
                std::process::id(),
                cipherstream::crypto::random_hex(4)
            )
        });
        let metadata_url = match &postgres_db {
            Some(name) => Some(fresh_postgres(name).await.expect("PostgreSQL database")),
            None => None,
        };
        // Its connections live on the runtime that first polls a request: bench-io.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .expect("reqwest client");
        let mut server = Server {
            concurrency,
            data_dir: dir.path().to_path_buf(),
            metadata_url,
            postgres_db,
            client,
            key: String::new(),
            webhook_id: String::new(),
            instance: None,
            _dir: dir,
        };
        server.run(Role::All).await;
        let base = server.base();
        let (client, practice, receiver_url, secret) = (
            server.client.clone(),
            practice.to_string(),
            receiver_url.to_string(),
            secret.to_string(),
        );
        let (key, webhook_id) = on_io(async move {
            let response = client
                .post(format!("{base}/admin/v1/customers"))
                .bearer_auth(ADMIN_TOKEN)
                .json(&serde_json::json!({"id": "bench", "name": "Bench practice", "source_url": practice}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201, "creating the customer");
            let body: serde_json::Value = response.json().await.unwrap();
            let key = body["api_key"].as_str().unwrap().to_string();
            let response = client
                .post(format!("{base}/v1/webhooks"))
                .bearer_auth(&key)
                .json(&serde_json::json!({"url": receiver_url, "events": ["job.completed"], "secret": secret}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201, "creating the webhook");
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["secret"], secret.as_str(), "the endpoint's secret");
            (key, body["webhook_id"].as_str().unwrap().to_string())
        })
        .await;
        server.key = key;
        server.webhook_id = webhook_id;
        server
    }

    /// Starts the server in `role` on this data directory and metadata database.
    async fn run(&mut self, role: Role) {
        assert!(self.instance.is_none(), "stop the running instance first");
        let config = Config {
            bind: "127.0.0.1:0".parse().unwrap(),
            data_dir: self.data_dir.clone(),
            metadata_url: self.metadata_url.clone(),
            admin_token: Some(ADMIN_TOKEN.to_string().into()),
            role,
            webhook_allow_loopback: true,
            webhook_concurrency: self.concurrency,
            ..Config::default()
        };
        let app = Application::build(config).await.expect("building the app");
        let base = format!("http://{}", app.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let started = Instant::now();
        let task = tokio::spawn(app.run(shutdown.clone()));
        self.instance = Some(Instance {
            base,
            shutdown,
            task,
            started,
        });
    }

    async fn stop_instance(&mut self) {
        let Some(instance) = self.instance.take() else {
            return;
        };
        instance.shutdown.cancel();
        match tokio::time::timeout(Duration::from_secs(30), instance.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => eprintln!("server stopped with {error:#}"),
            Ok(Err(error)) => eprintln!("server task: {error}"),
            Err(_) => eprintln!("server did not stop within 30 s"),
        }
    }

    async fn stop(mut self) {
        self.stop_instance().await;
        if let Some(name) = &self.postgres_db {
            drop_postgres(name).await;
        }
    }

    fn base(&self) -> String {
        self.instance
            .as_ref()
            .expect("a running instance")
            .base
            .clone()
    }

    fn queue_url(&self) -> String {
        format!("{}/v1/webhooks/{}/test", self.base(), self.webhook_id)
    }

    async fn stats(&self) -> serde_json::Value {
        let (client, url, key) = (
            self.client.clone(),
            format!("{}/v1/webhooks/{}/stats", self.base(), self.webhook_id),
            self.key.clone(),
        );
        on_io(async move {
            match client.get(url).bearer_auth(key).send().await {
                Ok(r) => r.json().await.unwrap_or_default(),
                Err(_) => serde_json::Value::Null,
            }
        })
        .await
    }

    async fn cpu_pids(&self) -> HashSet<u32> {
        match &self.postgres_db {
            Some(db) => postgres_pids(db).await,
            None => HashSet::new(),
        }
    }

    fn sampler(&self) -> Option<WaitSampler> {
        self.postgres_db.clone().map(WaitSampler::start)
    }
}

/// One queue request: (delivery id, the instant before sending, the instant answered).
type Queued = (String, Instant, Instant);

/// Queues one test event (call on bench-io).
async fn queue(client: &reqwest::Client, url: &str, key: &str) -> Result<Queued, String> {
    let sent = Instant::now();
    let response = client
        .post(url)
        .bearer_auth(key)
        .send()
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| format!("body: {e}"))?;
    let answered = Instant::now();
    if status != 202 {
        return Err(format!(
            "HTTP {status}: {}",
            text.chars().take(200).collect::<String>()
        ));
    }
    let body: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let id = body["delivery_id"]
        .as_str()
        .ok_or("no delivery_id")?
        .to_string();
    Ok((id, sent, answered))
}

/// `events` queue requests from `clients` concurrent clients, as fast as answered.
/// Returns the accepted ones and the failures by message.
async fn queue_many(
    server: &Server,
    events: usize,
    clients: usize,
) -> (Vec<Queued>, BTreeMap<String, usize>) {
    let (client, url, key) = (
        server.client.clone(),
        server.queue_url(),
        server.key.clone(),
    );
    on_io(async move {
        let remaining = Arc::new(AtomicUsize::new(events));
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (client, url, key, remaining) =
                (client.clone(), url.clone(), key.clone(), remaining.clone());
            tasks.push(tokio::spawn(async move {
                let mut queued = Vec::new();
                let mut failed = Vec::new();
                while remaining
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    match queue(&client, &url, &key).await {
                        Ok(q) => queued.push(q),
                        Err(e) => failed.push(e),
                    }
                }
                (queued, failed)
            }));
        }
        let mut queued = Vec::with_capacity(events);
        let mut failed = BTreeMap::new();
        for task in tasks {
            let (q, f) = task.await.unwrap();
            queued.extend(q);
            for e in f {
                *failed.entry(e.chars().take(160).collect()).or_default() += 1;
            }
        }
        (queued, failed)
    })
    .await
}

// ---------------------------------------------------------------------------------
// Measurements.

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[derive(Debug, Clone, Copy, Default)]
struct Latency {
    samples: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Latency {
    fn of(mut all: Vec<Duration>) -> Latency {
        all.sort();
        Latency {
            samples: all.len(),
            p50: percentile(&all, 0.50),
            p99: percentile(&all, 0.99),
            max: all.last().copied().unwrap_or_default(),
        }
    }

    fn print(&self, label: &str) {
        println!(
            "  {label:<40} n={:<5} p50 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms",
            self.samples,
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        );
    }
}

/// Latencies of delivered events; panics (no figure) when one never arrived.
fn latencies(receiver: &Receiver, queued: &[Queued], what: &str) -> Latency {
    Latency::of(
        queued
            .iter()
            .map(|(id, sent, _)| {
                let arrived = receiver
                    .arrival(id)
                    .unwrap_or_else(|| panic!("{what}: delivery {id} never arrived"));
                arrived.saturating_duration_since(*sent)
            })
            .collect(),
    )
}

fn request_times(queued: &[Queued]) -> Latency {
    Latency::of(queued.iter().map(|(_, s, a)| *a - *s).collect())
}

fn last_arrival(receiver: &Receiver, queued: &[Queued]) -> Instant {
    queued
        .iter()
        .filter_map(|(id, _, _)| receiver.arrival(id))
        .max()
        .expect("arrivals")
}

/// Waits for every queued delivery or fails the run with what the server says.
async fn expect_delivered(
    server: &Server,
    receiver: &Receiver,
    total: usize,
    timeout: Duration,
    what: &str,
) {
    if !receiver.wait_for(total, timeout).await {
        panic!(
            "{what}: {} of {total} deliveries arrived within {timeout:?}; server stats: {}",
            receiver.count(),
            server.stats().await
        );
    }
}

fn expect_no_failures(failed: &BTreeMap<String, usize>, what: &str) {
    assert!(
        failed.is_empty(),
        "{what}: queue requests failed: {failed:?}"
    );
}

/// Single events, each delivered before the next is queued, `gap` apart.
/// Returns (event to delivery, queue request round trip).
async fn idle_latency(server: &Server, receiver: &Receiver, plan: &Plan) -> (Latency, Latency) {
    let mut queued = Vec::with_capacity(plan.idle);
    let start = receiver.count();
    for i in 0..plan.idle {
        let next = tokio::time::Instant::now() + plan.idle_gap;
        let (client, url, key) = (
            server.client.clone(),
            server.queue_url(),
            server.key.clone(),
        );
        let q = on_io(async move { queue(&client, &url, &key).await })
            .await
            .unwrap_or_else(|e| panic!("idle event {i}: {e}"));
        queued.push(q);
        expect_delivered(server, receiver, start + i + 1, plan.timeout, "idle").await;
        tokio::time::sleep_until(next).await;
    }
    (latencies(receiver, &queued, "idle"), request_times(&queued))
}

struct Burst {
    events: usize,
    queue_seconds: f64,
    deliver_seconds: f64,
    latency: Latency,
    request: Latency,
    cpu: CpuUse,
}

/// Events queued by concurrent clients as fast as taken while the dispatcher delivers.
async fn burst(server: &Server, receiver: &Receiver, events: usize, plan: &Plan) -> Burst {
    let start_count = receiver.count();
    let pids = server.cpu_pids().await;
    let before = CpuSnapshot::take();
    let started = Instant::now();
    let (queued, failed) = queue_many(server, events, plan.clients).await;
    expect_no_failures(&failed, "burst");
    let queued_at = queued.iter().map(|(_, _, a)| *a).max().expect("queued");
    expect_delivered(
        server,
        receiver,
        start_count + queued.len(),
        plan.timeout,
        "burst",
    )
    .await;
    let after = CpuSnapshot::take();
    let pids: HashSet<u32> = pids.union(&server.cpu_pids().await).copied().collect();
    Burst {
        events: queued.len(),
        queue_seconds: (queued_at - started).as_secs_f64(),
        deliver_seconds: (last_arrival(receiver, &queued) - started).as_secs_f64(),
        latency: latencies(receiver, &queued, "burst"),
        request: request_times(&queued),
        cpu: CpuUse::between(&before, &after, &pids),
    }
}

/// Events queued open-loop at `rate` per second; their latency.
async fn steady(server: &Server, receiver: &Receiver, rate: f64, plan: &Plan) -> Latency {
    let start_count = receiver.count();
    let count = (rate * plan.steady.as_secs_f64()).round().max(1.0) as usize;
    let (client, url, key) = (
        server.client.clone(),
        server.queue_url(),
        server.key.clone(),
    );
    let results = on_io(async move {
        let t0 = tokio::time::Instant::now();
        let mut tasks = Vec::with_capacity(count);
        for i in 0..count {
            tokio::time::sleep_until(t0 + Duration::from_secs_f64(i as f64 / rate)).await;
            let (client, url, key) = (client.clone(), url.clone(), key.clone());
            tasks.push(tokio::spawn(
                async move { queue(&client, &url, &key).await },
            ));
        }
        let mut results = Vec::with_capacity(count);
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    })
    .await;
    let mut queued = Vec::with_capacity(count);
    let mut failed = BTreeMap::new();
    for result in results {
        match result {
            Ok(q) => queued.push(q),
            Err(e) => *failed.entry(e).or_default() += 1,
        }
    }
    expect_no_failures(&failed, "steady");
    expect_delivered(
        server,
        receiver,
        start_count + queued.len(),
        plan.timeout,
        "steady",
    )
    .await;
    latencies(receiver, &queued, "steady")
}

struct Split {
    events: usize,
    queue_seconds: f64,
    queue_cpu: CpuUse,
    queue_waits: Vec<(f64, String)>,
    drain_seconds: f64,
    drain_cpu: CpuUse,
    drain_waits: Vec<(f64, String)>,
}

/// The API without a dispatcher, then the dispatcher on that backlog with an idle API.
async fn split(server: &mut Server, receiver: &Receiver, plan: &Plan) -> Split {
    server.stop_instance().await;
    server.run(Role::Api).await;
    let pids = server.cpu_pids().await;
    let sampler = server.sampler();
    let before = CpuSnapshot::take();
    let started = Instant::now();
    let (queued, failed) = queue_many(server, plan.events, plan.clients).await;
    expect_no_failures(&failed, "API alone");
    let queued_at = queued.iter().map(|(_, _, a)| *a).max().expect("queued");
    let after = CpuSnapshot::take();
    let queue_waits = match sampler {
        Some(s) => s.finish().await,
        None => Vec::new(),
    };
    let pids: HashSet<u32> = pids.union(&server.cpu_pids().await).copied().collect();
    let queue_cpu = CpuUse::between(&before, &after, &pids);
    server.stop_instance().await;

    let start_count = receiver.count();
    let sampler = server.sampler();
    let before = CpuSnapshot::take();
    server.run(Role::All).await;
    let started_drain = server.instance.as_ref().unwrap().started;
    expect_delivered(
        server,
        receiver,
        start_count + queued.len(),
        plan.timeout,
        "dispatcher alone",
    )
    .await;
    let after = CpuSnapshot::take();
    let drain_waits = match sampler {
        Some(s) => s.finish().await,
        None => Vec::new(),
    };
    let pids: HashSet<u32> = server.cpu_pids().await;
    Split {
        events: queued.len(),
        queue_seconds: (queued_at - started).as_secs_f64(),
        queue_cpu,
        queue_waits,
        drain_seconds: (last_arrival(receiver, &queued) - started_drain).as_secs_f64(),
        drain_cpu: CpuUse::between(&before, &after, &pids),
        drain_waits,
    }
}

// ---------------------------------------------------------------------------------

struct Row {
    backend: Backend,
    concurrency: usize,
    idle: Option<(Latency, Latency)>,
    burst: Burst,
    steady_rate: f64,
    steady: Latency,
    split: Split,
    duplicates: usize,
    warnings: usize,
}

fn print_waits(label: &str, waits: &[(f64, String)]) {
    if waits.is_empty() {
        return;
    }
    println!("  {label}: PostgreSQL sessions of the server, average number in each state:");
    for (n, state) in waits {
        println!("    {n:>5.2}  {state}");
    }
}

async fn scenario(
    backend: Backend,
    concurrency: usize,
    practice: &str,
    plan: &Plan,
    with_idle: bool,
    logs: &LogCounter,
) -> Row {
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(cipherstream::crypto::random_key())
    );
    let receiver = Receiver::start(&secret).await;
    let mut server = Server::start(backend, concurrency, practice, &receiver.url, &secret).await;
    println!(
        "== {} metadata, webhook_concurrency = {concurrency}",
        backend.name()
    );
    logs.take();

    // Warm-up: connections, caches, the first pages of the tables.
    let warm = burst(&server, &receiver, 100, plan).await;
    assert_eq!(warm.events, 100);

    let idle = if with_idle {
        let (latency, request) = idle_latency(&server, &receiver, plan).await;
        latency.print("idle: event to delivery");
        request.print("idle: queue request round trip");
        Some((latency, request))
    } else {
        None
    };

    let b = burst(&server, &receiver, plan.events, plan).await;
    println!(
        "  burst: {} events by {} clients: queued in {:.2} s ({:.0}/s), all delivered after {:.2} s ({:.0}/s)",
        b.events,
        plan.clients,
        b.queue_seconds,
        b.events as f64 / b.queue_seconds,
        b.deliver_seconds,
        b.events as f64 / b.deliver_seconds
    );
    b.latency.print("burst: event to delivery");
    b.request.print("burst: queue request round trip");
    println!("  burst: {}", b.cpu.describe(b.events));

    let steady_rate = 0.5 * b.events as f64 / b.deliver_seconds;
    let steady_latency = steady(&server, &receiver, steady_rate, plan).await;
    steady_latency.print(&format!("steady {steady_rate:.0}/s: event to delivery"));

    let s = split(&mut server, &receiver, plan).await;
    println!(
        "  API alone (role api): {} events queued in {:.2} s ({:.0}/s); {}",
        s.events,
        s.queue_seconds,
        s.events as f64 / s.queue_seconds,
        s.queue_cpu.describe(s.events)
    );
    print_waits("API alone", &s.queue_waits);
    println!(
        "  dispatcher alone (that backlog, role all): delivered in {:.2} s ({:.0}/s); {}",
        s.drain_seconds,
        s.events as f64 / s.drain_seconds,
        s.drain_cpu.describe(s.events)
    );
    print_waits("dispatcher alone", &s.drain_waits);

    // Let late duplicates (a lapsed lease) show up before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = server.stats().await;
    let (duplicates, bad_signature, bad_body) = receiver.faults();
    println!(
        "  receiver: {} distinct deliveries, {duplicates} duplicates, {bad_signature} bad signatures, {bad_body} bad bodies; server: {}",
        receiver.count(),
        stats["deliveries"]
    );
    let logged = logs.take();
    for (line, n) in &logged {
        println!("  server log x{n}: {line}");
    }
    server.stop().await;
    drop(receiver);
    assert!(
        bad_signature == 0 && bad_body == 0,
        "the receiver got {bad_signature} calls with a bad signature and {bad_body} with a wrong body: no figures"
    );
    Row {
        backend,
        concurrency,
        idle,
        burst: b,
        steady_rate,
        steady: steady_latency,
        split: s,
        duplicates,
        warnings: logged.values().sum(),
    }
}

fn summary(rows: &[Row], plan: &Plan) {
    println!();
    println!(
        "Summary: {} events per phase by {} clients; idle: {} events {} ms apart; steady: half the burst's delivery rate for {} s; one endpoint; \
         other load: the largest share of the cores busy with work not of this bench during the burst, API-alone and dispatcher-alone phases",
        plan.events,
        plan.clients,
        plan.idle,
        plan.idle_gap.as_millis(),
        plan.steady.as_secs()
    );
    println!(
        "| metadata | webhook_concurrency | burst queued/s | burst delivered/s | API alone queued/s | dispatcher alone delivered/s | idle p50 / p99 ms | burst p50 / p99 ms | steady load /s | steady p50 / p99 ms | duplicates | server warnings | other load % |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let idle = r
            .idle
            .map(|(l, _)| format!("{:.1} / {:.1}", ms(l.p50), ms(l.p99)))
            .unwrap_or_else(|| "—".into());
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {idle} | {:.0} / {:.0} | {:.0} | {:.1} / {:.1} | {} | {} | {:.0} |",
            r.backend.name(),
            r.concurrency,
            r.burst.events as f64 / r.burst.queue_seconds,
            r.burst.events as f64 / r.burst.deliver_seconds,
            r.split.events as f64 / r.split.queue_seconds,
            r.split.events as f64 / r.split.drain_seconds,
            ms(r.burst.latency.p50),
            ms(r.burst.latency.p99),
            r.steady_rate,
            ms(r.steady.p50),
            ms(r.steady.p99),
            r.duplicates,
            r.warnings,
            100.0
                * [&r.burst.cpu, &r.split.queue_cpu, &r.split.drain_cpu]
                    .iter()
                    .map(|c| c.foreign())
                    .fold(0.0, f64::max),
        );
    }
}

#[tokio::main]
async fn main() {
    let logs = Arc::new(LogCounter::default());
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(
        CountingLayer(logs.clone()).with_filter(tracing_subscriber::filter::LevelFilter::WARN),
    ))
    .expect("installing the log counter");

    let plan = Plan {
        events: env_or("WH_BENCH_EVENTS", 3000),
        clients: env_or("WH_BENCH_CLIENTS", 8),
        idle: env_or("WH_BENCH_IDLE", 300),
        idle_gap: Duration::from_millis(env_or("WH_BENCH_IDLE_GAP_MS", 200)),
        steady: Duration::from_secs(env_or("WH_BENCH_STEADY_SECONDS", 10)),
        timeout: Duration::from_secs(env_or("WH_BENCH_TIMEOUT_SECONDS", 120)),
    };
    let concurrencies: Vec<usize> = env_list("WH_BENCH_CONCURRENCY", "16,64")
        .iter()
        .map(|c| c.parse().expect("WH_BENCH_CONCURRENCY: numbers"))
        .collect();
    let mut backends = Vec::new();
    for name in env_list("WH_BENCH_BACKENDS", "sqlite,postgres") {
        match name.as_str() {
            "sqlite" => backends.push(Backend::Sqlite),
            "postgres" => {
                match sqlx::PgConnection::connect(&format!("{}/postgres", postgres_base())).await {
                    Ok(conn) => {
                        let _ = conn.close().await;
                        sweep_stale_postgres().await;
                        backends.push(Backend::Postgres);
                    }
                    Err(error) => eprintln!("skipping PostgreSQL metadata: {error}"),
                }
            }
            other => panic!("WH_BENCH_BACKENDS: unknown backend {other}"),
        }
    }
    println!(
        "{} cores; {plan:?}; webhook_concurrency {concurrencies:?}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // The customer's source: a tiny generated practice (the test event never reads it).
    let dir = tempfile::tempdir().expect("tempdir");
    let practice = format!("sqlite://{}", dir.path().join("practice.db").display());
    demo::generate(GenerateOptions {
        target_url: practice.clone(),
        patients: 10,
        seed: 7,
        as_of: chrono::Utc::now().date_naive(),
    })
    .await
    .expect("generating the practice");

    let mut rows = Vec::new();
    for backend in backends {
        for (i, &concurrency) in concurrencies.iter().enumerate() {
            rows.push(scenario(backend, concurrency, &practice, &plan, i == 0, &logs).await);
        }
    }
    summary(&rows, &plan);
}
