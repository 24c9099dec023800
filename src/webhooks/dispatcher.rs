//! The dispatcher: claims due deliveries with a lease (any worker node may run one),
//! sends them as signed POSTs, and records the outcome: success, a retry with
//! exponential backoff and jitter (honouring `Retry-After`), or the dead-letter list.
//! Per endpoint it keeps a circuit breaker, a rate limit and batching, all in the
//! metadata database so that several nodes share them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use rand::Rng;
use sqlx::{AnyConnection, Row};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::endpoints::{load_endpoint, Endpoint};
use super::guard::GuardedResolver;
use super::{outbox, signing, EventType, WebhookSettings, RESPONSE_EXCERPT_BYTES};
use crate::http::AppState;
use crate::meta::{self, Backend};
use crate::tenancy::{self, AuditEntry};

/// A lease outlives the call's timeout by this much before another node may retry it.
const LEASE_MARGIN: Duration = Duration::from_secs(30);
/// How often the delivery log is pruned of entries past their retention.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Longest wait a `Retry-After` answer can impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The client every delivery goes through: rustls with TLS 1.2 at least, no proxies
/// and no redirects (either could lead past the address guard), and a resolver that
/// refuses non-public addresses.
pub fn http_client(settings: &WebhookSettings) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .min_tls_version(reqwest::tls::Version::TLS_1_2)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(GuardedResolver::shared(settings.guard))
        .user_agent(concat!("CipherStream-Webhooks/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10));
    if let Some(path) = &settings.ca_file {
        let pem = std::fs::read(path)
            .with_context(|| format!("reading webhook_ca_file {}", path.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("parsing webhook_ca_file {}", path.display()))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().context("building the webhook HTTP client")
}

/// Starts the dispatcher loop; it stops claiming when `shutdown` fires.
pub fn spawn_dispatcher(
    state: AppState,
    settings: WebhookSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let client = http_client(&settings)?;
    let node = format!("dispatcher-{}", crate::crypto::random_hex(4));
    Ok(tokio::spawn(async move {
        let dispatcher = Arc::new(Dispatcher {
            state,
            settings,
            client,
            node,
        });
        dispatcher.run(shutdown).await
    }))
}

struct Dispatcher {
    state: AppState,
    settings: WebhookSettings,
    client: reqwest::Client,
    node: String,
}

/// One HTTP call: one delivery, or several for a batching endpoint.
struct Call {
    endpoint: Endpoint,
    deliveries: Vec<String>,
    probe: bool,
}

impl Dispatcher {
    async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let mut last_prune: Option<Instant> = None;
        while !shutdown.is_cancelled() {
            if last_prune.is_none_or(|t| t.elapsed() > PRUNE_EVERY) {
                let cutoff = Utc::now() - self.settings.log_retention;
                match super::deliveries::prune(&self.state.meta, cutoff).await {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(removed, "pruned the webhook delivery log"),
                    Err(error) => tracing::error!(
                        error = format!("{error:#}"),
                        "pruning the webhook delivery log failed"
                    ),
                }
                last_prune = Some(Instant::now());
            }
            // Claim no more calls than can start now: a claimed call's lease runs from
            // the claim, so one left waiting for a slot could expire and be sent twice.
            let budget = permits.available_permits().max(1);
            let (calls, contended) = match self.claim(budget).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::error!(
                        error = format!("{error:#}"),
                        "claiming webhook deliveries failed"
                    );
                    (Vec::new(), false)
                }
            };
            let idle = calls.is_empty();
            for call in calls {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let this = self.clone();
                tokio::spawn(async move {
                    let endpoint_id = call.endpoint.id.clone();
                    if let Err(error) = this.deliver(call).await {
                        tracing::error!(webhook_id = %endpoint_id, error = format!("{error:#}"), "recording a webhook delivery failed");
                    }
                    drop(permit);
                });
            }
            if idle && contended {
                // Due work on an endpoint another transaction held: look again soon.
                tokio::time::sleep(Duration::from_millis(20)).await;
            } else if idle {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = outbox::notifier().notified() => {}
                    _ = tokio::time::sleep(self.settings.poll_interval) => {}
                }
            } else if permits.available_permits() == 0 {
                // Every slot busy: wait for one before claiming more.
                let _ = permits.acquire().await;
            }
        }
    }

    /// Claims up to `budget` calls due now, endpoint by endpoint, respecting each
    /// endpoint's circuit, rate limit and batch size. Also says whether an endpoint
    /// with due work was skipped because another transaction held it.
    async fn claim(&self, budget: usize) -> anyhow::Result<(Vec<Call>, bool)> {
        let meta = &self.state.meta;
        let now = Utc::now();
        let now_text = meta::format_time(now);
        let rows = sqlx::query(
            "SELECT d.id, d.endpoint_id, e.circuit_state FROM webhook_deliveries d \
             JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             WHERE ((d.status IN ('pending', 'retrying') AND d.next_attempt_at <= $1) \
                    OR (d.status = 'sending' AND d.lease_expires_at < $1)) \
               AND e.enabled = 1 AND (e.circuit_state = 'closed' OR e.circuit_retry_at <= $1) \
               AND (e.next_send_at IS NULL OR e.next_send_at <= $1) \
             ORDER BY d.next_attempt_at, d.id LIMIT 100",
        )
        .bind(&now_text)
        .fetch_all(&meta.pool)
        .await?;
        let mut order: Vec<String> = Vec::new();
        let mut by_endpoint: HashMap<String, (bool, Vec<String>)> = HashMap::new();
        for row in &rows {
            let endpoint_id: String = row.try_get("endpoint_id")?;
            let circuit: String = row.try_get("circuit_state")?;
            let entry = by_endpoint.entry(endpoint_id.clone()).or_insert_with(|| {
                order.push(endpoint_id);
                (circuit != "closed", Vec::new())
            });
            entry.1.push(row.try_get("id")?);
        }
        let mut calls = Vec::new();
        let mut contended = false;
        for endpoint_id in order {
            let left = budget.saturating_sub(calls.len());
            if left == 0 {
                break;
            }
            let (probe, candidates) = by_endpoint.remove(&endpoint_id).unwrap_or_default();
            let Some(endpoint) = load_endpoint(meta, &self.state.master, &endpoint_id).await?
            else {
                continue;
            };
            match self
                .claim_for(&endpoint, probe, candidates, now, left)
                .await?
            {
                None => contended = true,
                Some(groups) => calls.extend(groups.into_iter().map(|deliveries| Call {
                    endpoint: endpoint.clone(),
                    deliveries,
                    probe,
                })),
            }
        }
        Ok((calls, contended))
    }

    /// Claims one endpoint's calls in one transaction that holds the endpoint: on
    /// PostgreSQL its row lock (`SKIP LOCKED`: another node is claiming for it), on
    /// SQLite the write lock. So nodes never split a batch or both take a probe.
    async fn claim_for(
        &self,
        endpoint: &Endpoint,
        probe: bool,
        candidates: Vec<String>,
        now: DateTime<Utc>,
        max_calls: usize,
    ) -> anyhow::Result<Option<Vec<Vec<String>>>> {
        let meta = &self.state.meta;
        let now_text = meta::format_time(now);
        let mut tx = meta.begin().await?;
        if meta.backend == Backend::Postgres {
            let held: Option<String> = sqlx::query_scalar(
                "SELECT id FROM webhook_endpoints WHERE id = $1 FOR UPDATE SKIP LOCKED",
            )
            .bind(&endpoint.id)
            .fetch_optional(&mut *tx)
            .await?;
            if held.is_none() {
                return Ok(None);
            }
        }
        if !take_send_slot(&mut tx, endpoint, now).await? {
            return Ok(Some(Vec::new()));
        }
        let mut groups: Vec<Vec<String>> = if endpoint.spec.batch_max_events > 1 {
            vec![batch_members(&mut tx, endpoint, &now_text).await?]
        } else if probe || endpoint.spec.rate_limit_per_second.is_some() {
            vec![candidates.into_iter().take(1).collect()]
        } else {
            candidates.into_iter().map(|id| vec![id]).collect()
        };
        groups.truncate(max_calls);
        let lease_until = meta::format_time(
            now + Duration::from_secs(endpoint.spec.timeout_seconds as u64) + LEASE_MARGIN,
        );
        let mut claimed_groups = Vec::new();
        for group in groups {
            let mut claimed = Vec::new();
            for id in group {
                let taken = sqlx::query(
                    "UPDATE webhook_deliveries SET status = 'sending', lease_owner = $1, lease_expires_at = $2, updated_at = $3 \
                     WHERE id = $4 AND ((status IN ('pending', 'retrying') AND (next_attempt_at <= $3 OR status = 'pending')) \
                     OR (status = 'sending' AND lease_expires_at < $3))",
                )
                .bind(&self.node)
                .bind(&lease_until)
                .bind(&now_text)
                .bind(&id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if taken == 1 {
                    claimed.push(id);
                }
            }
            if !claimed.is_empty() {
                claimed_groups.push(claimed);
            }
        }
        tx.commit().await?;
        Ok(Some(claimed_groups))
    }

    /// Sends one call and records its outcome on every delivery it carried.
    async fn deliver(&self, call: Call) -> anyhow::Result<()> {
        let endpoint = &call.endpoint;
        let sent_at = Utc::now();
        let mut items = Vec::new();
        for id in &call.deliveries {
            items.push(self.delivery_body(id, sent_at).await?);
        }
        let batching = endpoint.spec.batch_max_events > 1;
        let (call_id, body) = if batching {
            let call_id = format!(
                "bat_{}_{}",
                sent_at.timestamp_millis(),
                crate::crypto::random_hex(4)
            );
            let attempt = items
                .iter()
                .filter_map(|i| i["attempt"].as_i64())
                .max()
                .unwrap_or(1);
            let body = serde_json::json!({
                "event": "batch",
                "timestamp": rfc3339_seconds(sent_at),
                "delivery_id": call_id,
                "attempt": attempt,
                "events": items,
            });
            (call_id, body)
        } else {
            (call.deliveries[0].clone(), items.remove(0))
        };
        let body = serde_json::to_vec(&body)?;
        let started = Instant::now();
        let result = self.send(endpoint, &call_id, &body, sent_at).await;
        let elapsed = started.elapsed();
        let latency_ms = elapsed.as_millis() as i64;
        let outcome = match result {
            Ok(answer) => answer,
            Err(error) => Answer {
                status: None,
                excerpt: None,
                retry_after: None,
                error: Some(error),
            },
        };
        // The whole exchange must finish in time: a 2xx whose body outlasts the
        // timeout (or breaks off) is a failed attempt, sent again.
        let succeeded =
            outcome.error.is_none() && outcome.status.is_some_and(|s| (200..300).contains(&s));
        metrics::histogram!("cipherstream_webhook_call_duration_seconds")
            .record(elapsed.as_secs_f64());
        metrics::counter!("cipherstream_webhook_calls_total", "outcome" => if succeeded { "success" } else { "failure" }).increment(1);
        self.record(&call, &call_id, sent_at, latency_ms, succeeded, &outcome)
            .await
    }

    /// The JSON of one delivery at this attempt.
    async fn delivery_body(
        &self,
        id: &str,
        sent_at: DateTime<Utc>,
    ) -> anyhow::Result<serde_json::Value> {
        let row = sqlx::query(
            "SELECT d.id, d.customer_id, d.attempts, d.event_id, d.event_type, d.is_test, e.data, e.created_at \
             FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id WHERE d.id = $1",
        )
        .bind(id)
        .fetch_one(&self.state.meta.pool)
        .await?;
        let event_type: String = row.try_get("event_type")?;
        let mut data: serde_json::Value = serde_json::from_str(&row.try_get::<String, _>("data")?)?;
        if EventType::parse(&event_type) == Some(EventType::JobCompleted) {
            // A fresh download link for every attempt (links expire; the file may be gone).
            self.refresh_download_url(&row.try_get::<String, _>("customer_id")?, &mut data)
                .await?;
        }
        let mut body = serde_json::json!({
            "event": event_type,
            "timestamp": rfc3339_seconds(sent_at),
            "delivery_id": id,
            "attempt": row.try_get::<i64, _>("attempts")? + 1,
            "event_id": row.try_get::<String, _>("event_id")?,
            "occurred_at": row.try_get::<String, _>("created_at")?,
            "data": data,
        });
        if row.try_get::<i64, _>("is_test")? != 0 {
            body["test"] = true.into();
        }
        Ok(body)
    }

    async fn refresh_download_url(
        &self,
        customer_id: &str,
        data: &mut serde_json::Value,
    ) -> anyhow::Result<()> {
        let Some(job_id) = data["job_id"].as_str() else {
            return Ok(());
        };
        if let Some(job) = crate::jobs::get_job(&self.state.meta, customer_id, job_id).await? {
            let current = crate::jobs::JobOut::new(job, &self.state);
            data["s3_url"] = serde_json::to_value(current.s3_url)?;
            data["expires_at"] = serde_json::to_value(current.expires_at)?;
        }
        Ok(())
    }

    async fn send(
        &self,
        endpoint: &Endpoint,
        call_id: &str,
        body: &[u8],
        sent_at: DateTime<Utc>,
    ) -> Result<Answer, String> {
        // IP-literal hosts never reach the resolver: check the URL itself again here.
        let url = self.settings.guard.check_url(&endpoint.spec.url)?;
        let secrets = endpoint
            .active_secrets(&self.state.master)
            .map_err(|e| format!("the endpoint's secret could not be read: {e:#}"))?;
        let timestamp = sent_at.timestamp();
        let event = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["event"].as_str().map(str::to_string))
            .unwrap_or_default();
        let mut request = self
            .client
            .post(url)
            .timeout(Duration::from_secs(endpoint.spec.timeout_seconds as u64));
        for (name, value) in &endpoint.spec.headers {
            request = request.header(name, value);
        }
        let request = request
            .header("content-type", "application/json")
            .header("x-cipherstream-event", event)
            .header("x-cipherstream-delivery", call_id)
            .header("x-cipherstream-timestamp", timestamp.to_string())
            .header(
                "x-cipherstream-signature",
                signing::cipherstream_signature(&secrets, body),
            )
            .header("webhook-id", call_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signing::standard_signature(&secrets, call_id, timestamp, body),
            )
            .body(body.to_vec());
        let mut response = request.send().await.map_err(describe_error)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // Keep the start of the answer for the delivery log; never read more. Running
        // out of time counts against the call; a connection that ends without a clean
        // close (no TLS close_notify, say) just ends the body.
        let mut excerpt = Vec::new();
        while excerpt.len() < RESPONSE_EXCERPT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(error) if error.is_timeout() => {
                    return Ok(Answer {
                        status: Some(status),
                        excerpt: Some(excerpt_text(&excerpt)),
                        retry_after,
                        error: Some(describe_error(error)),
                    })
                }
                Err(_) => break,
            }
        }
        let error =
            (!(200..300).contains(&status)).then(|| format!("the receiver answered HTTP {status}"));
        Ok(Answer {
            status: Some(status),
            excerpt: Some(excerpt_text(&excerpt)),
            retry_after,
            error,
        })
    }

    async fn record(
        &self,
        call: &Call,
        call_id: &str,
        sent_at: DateTime<Utc>,
        latency_ms: i64,
        succeeded: bool,
        answer: &Answer,
    ) -> anyhow::Result<()> {
        let endpoint = &call.endpoint;
        let now = Utc::now();
        let now_text = meta::format_time(now);
        let mut tx = self.state.meta.begin().await?;
        for id in &call.deliveries {
            let row = sqlx::query(
                "SELECT attempts, max_attempts FROM webhook_deliveries WHERE id = $1 \
                 AND status = 'sending' AND lease_owner = $2",
            )
            .bind(id)
            .bind(&self.node)
            .fetch_optional(&mut *tx)
            .await?;
            // Deleted with its endpoint while in flight, or no longer ours (the lease
            // ran out and another node took it): its record is the other node's.
            let Some(row) = row else { continue };
            let attempt = row.try_get::<i64, _>("attempts")? + 1;
            let max_attempts: i64 = row.try_get("max_attempts")?;
            sqlx::query(
                "INSERT INTO webhook_attempts (id, delivery_id, endpoint_id, attempt, call_id, started_at, succeeded, \
                 http_status, latency_ms, error, response_excerpt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(format!("att_{}", crate::crypto::random_hex(8)))
            .bind(id)
            .bind(&endpoint.id)
            .bind(attempt)
            .bind(call_id)
            .bind(meta::format_time(sent_at))
            .bind(succeeded as i64)
            .bind(answer.status.map(i64::from))
            .bind(latency_ms)
            .bind(&answer.error)
            .bind(&answer.excerpt)
            .execute(&mut *tx)
            .await?;
            let (status, next_attempt) = if succeeded {
                ("succeeded", now_text.clone())
            } else if attempt >= max_attempts {
                ("dead", now_text.clone())
            } else {
                let delay = backoff(endpoint.spec.backoff_seconds, attempt, answer.retry_after);
                ("retrying", meta::format_time(now + delay))
            };
            sqlx::query(
                "UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, lease_owner = NULL, \
                 lease_expires_at = NULL, last_http_status = $4, last_latency_ms = $5, last_error = $6, last_response = $7, \
                 updated_at = $8, delivered_at = CASE WHEN $1 = 'succeeded' THEN $8 ELSE delivered_at END WHERE id = $9",
            )
            .bind(status)
            .bind(attempt)
            .bind(&next_attempt)
            .bind(answer.status.map(i64::from))
            .bind(latency_ms)
            .bind(&answer.error)
            .bind(&answer.excerpt)
            .bind(&now_text)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            metrics::counter!("cipherstream_webhook_deliveries_total", "outcome" => status)
                .increment(1);
        }
        if succeeded {
            sqlx::query(
                "UPDATE webhook_endpoints SET consecutive_failures = 0, failing_since = NULL, circuit_state = 'closed', \
                 circuit_retry_at = NULL WHERE id = $1 \
                 AND (consecutive_failures <> 0 OR failing_since IS NOT NULL OR circuit_state <> 'closed')",
            )
            .bind(&endpoint.id)
            .execute(&mut *tx)
            .await?;
        } else {
            let reopen = meta::format_time(now + self.settings.circuit_cooldown);
            sqlx::query(
                "UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1, \
                 failing_since = COALESCE(failing_since, $1), \
                 circuit_state = CASE WHEN circuit_state = 'half_open' OR consecutive_failures + 1 >= $2 THEN 'open' ELSE circuit_state END, \
                 circuit_retry_at = CASE WHEN circuit_state = 'half_open' OR consecutive_failures + 1 >= $2 THEN $3 ELSE circuit_retry_at END \
                 WHERE id = $4",
            )
            .bind(meta::format_time(sent_at))
            .bind(self.settings.circuit_failure_threshold)
            .bind(&reopen)
            .bind(&endpoint.id)
            .execute(&mut *tx)
            .await?;
        }
        let disabled = if succeeded {
            false
        } else {
            let cutoff = meta::format_time(now - self.settings.disable_after);
            sqlx::query(
                "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = $1, updated_at = $2 \
                 WHERE id = $3 AND enabled = 1 AND failing_since <= $4",
            )
            .bind(format!(
                "disabled automatically: every call failed for {} seconds; re-enable it with PATCH {{\"enabled\": true}}",
                self.settings.disable_after.as_secs()
            ))
            .bind(&now_text)
            .bind(&endpoint.id)
            .bind(&cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1
        };
        tx.commit().await?;
        if call.probe {
            tracing::info!(webhook_id = %endpoint.id, succeeded, "circuit probe");
        }
        if disabled {
            tracing::warn!(webhook_id = %endpoint.id, "webhook endpoint disabled after failing too long");
            tenancy::record(
                &self.state.meta,
                AuditEntry {
                    customer_id: Some(endpoint.customer_id.clone()),
                    action: "webhook.disabled".into(),
                    detail: serde_json::json!({
                        "webhook_id": endpoint.id,
                        "reason": "failing",
                        "failing_for_seconds": self.settings.disable_after.as_secs(),
                    }),
                    ..AuditEntry::default()
                },
            )
            .await;
        }
        Ok(())
    }
}

/// Takes the endpoint's next send slot: moves its rate limit forward by one call
/// and, when its circuit is open and cooled down, makes this call the probe.
/// False when another node took it first.
async fn take_send_slot(
    conn: &mut AnyConnection,
    endpoint: &Endpoint,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let now_text = meta::format_time(now);
    // GCRA without burst: calls at least 1/rate seconds apart, across all nodes.
    let next_send = endpoint
        .spec
        .rate_limit_per_second
        .map(|rate| meta::format_time(now + Duration::from_secs_f64(1.0 / rate.max(1) as f64)));
    let probe_until = meta::format_time(
        now + Duration::from_secs(endpoint.spec.timeout_seconds as u64) + LEASE_MARGIN,
    );
    let taken = sqlx::query(
        "UPDATE webhook_endpoints SET next_send_at = $1, \
         circuit_state = CASE WHEN circuit_state = 'closed' THEN 'closed' ELSE 'half_open' END, \
         circuit_retry_at = CASE WHEN circuit_state = 'closed' THEN circuit_retry_at ELSE $2 END \
         WHERE id = $3 AND enabled = 1 AND (circuit_state = 'closed' OR circuit_retry_at <= $4) \
         AND (next_send_at IS NULL OR next_send_at <= $4)",
    )
    .bind(next_send)
    .bind(probe_until)
    .bind(&endpoint.id)
    .bind(&now_text)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(taken == 1)
}

/// The deliveries one batched call carries: first attempts waiting for company and
/// due retries, oldest first, up to the batch size.
async fn batch_members(
    conn: &mut AnyConnection,
    endpoint: &Endpoint,
    now: &str,
) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT id FROM webhook_deliveries WHERE endpoint_id = $1 AND \
         (status = 'pending' OR (status = 'retrying' AND next_attempt_at <= $2) \
          OR (status = 'sending' AND lease_expires_at < $2)) \
         ORDER BY created_at, id LIMIT {}",
        endpoint.spec.batch_max_events
    ))
    .bind(&endpoint.id)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?)
}

/// What the receiver answered (or why there was no answer).
struct Answer {
    status: Option<u16>,
    excerpt: Option<String>,
    retry_after: Option<Duration>,
    error: Option<String>,
}

/// `base * 2^(attempt-1)`, ±20% jitter, at least what `Retry-After` asked for.
fn backoff(base_seconds: i64, attempt: i64, retry_after: Option<Duration>) -> Duration {
    let exponent = (attempt - 1).clamp(0, 20) as i32;
    let seconds = base_seconds.max(1) as f64 * 2f64.powi(exponent);
    let jittered = seconds * rand::thread_rng().gen_range(0.8..1.2);
    let delay = Duration::from_secs_f64(jittered.min(86_400.0));
    match retry_after {
        Some(asked) => delay.max(asked.min(MAX_RETRY_AFTER)),
        None => delay,
    }
}

/// `Retry-After`: delay-seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = DateTime::parse_from_rfc2822(value).ok()?;
    (date.with_timezone(&Utc) - Utc::now()).to_std().ok()
}

/// The first [`RESPONSE_EXCERPT_BYTES`] of an answer as text, never cutting a character.
fn excerpt_text(bytes: &[u8]) -> String {
    let mut end = bytes.len().min(RESPONSE_EXCERPT_BYTES);
    if let Err(e) = std::str::from_utf8(&bytes[..end]) {
        if e.error_len().is_none() {
            end = e.valid_up_to();
        }
    }
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn rfc3339_seconds(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A short, useful reason for a failed call (the error's whole source chain).
fn describe_error(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut text = format!("{kind}: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        for attempt in 1..=4 {
            let d = backoff(10, attempt, None).as_secs_f64();
            let base = 10.0 * 2f64.powi(attempt as i32 - 1);
            assert!(d >= base * 0.8 && d <= base * 1.2, "{attempt}: {d}");
        }
        assert_eq!(
            backoff(1, 1, Some(Duration::from_secs(120))),
            Duration::from_secs(120)
        );
        assert_eq!(
            backoff(1, 1, Some(Duration::from_secs(99_999))),
            MAX_RETRY_AFTER
        );
    }

    #[test]
    fn excerpts_never_cut_a_character() {
        let mut body = vec![b'a'; RESPONSE_EXCERPT_BYTES - 1];
        body.extend_from_slice("é and more".as_bytes());
        let text = excerpt_text(&body);
        assert_eq!(text.len(), RESPONSE_EXCERPT_BYTES - 1);
        assert!(!text.contains('\u{fffd}'));
        assert_eq!(excerpt_text(b"short"), "short");
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        let later = (Utc::now() + chrono::Duration::seconds(60)).to_rfc2822();
        let parsed = parse_retry_after(&later).unwrap().as_secs();
        assert!((55..=60).contains(&parsed), "{parsed}");
        assert_eq!(parse_retry_after("soon"), None);
    }
}
