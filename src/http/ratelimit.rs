//! Per-customer request quotas: a token bucket of `rate_limit_per_minute` tokens that
//! refills continuously, `RateLimit-*` headers on every authenticated answer (written
//! by `context::track`), 429 with `Retry-After` when it is empty, and one `api.rate_limit` webhook event per minute
//! when a customer has used more than 80% of its quota.
//!
//! Written by hand rather than with `governor`: quotas differ per customer and change
//! at run time, and the headers need the bucket's remaining tokens, which a keyed
//! `governor` limiter (one quota for every key) does not offer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::AppState;
use crate::webhooks::{outbox, EventType};

/// The share of a quota after which the warning event goes out.
const WARN_AT: f64 = 0.8;
/// The window of the quota and of the warning.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The buckets of this API node, by customer.
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
    warned: Option<Instant>,
}

/// The outcome of one request against a quota.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until the bucket is full again.
    pub reset_seconds: u64,
    /// Set when the request is refused: seconds until a token is available.
    pub retry_after: Option<u64>,
    /// This request crossed 80% of the quota for the first time in the window.
    pub warn: bool,
}

impl RateLimiter {
    /// Takes one token from `customer`'s bucket of `per_minute` tokens.
    pub fn check(&self, customer: &str, per_minute: u64) -> Decision {
        self.check_at(customer, per_minute, Instant::now())
    }

    fn check_at(&self, customer: &str, per_minute: u64, now: Instant) -> Decision {
        let capacity = per_minute.max(1) as f64;
        let per_second = capacity / WINDOW.as_secs_f64();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.entry(customer.to_string()).or_insert(Bucket {
            tokens: capacity,
            updated: now,
            warned: None,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.updated = now;
        let retry_after = if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            None
        } else {
            Some(((1.0 - bucket.tokens) / per_second).ceil().max(1.0) as u64)
        };
        let used = 1.0 - bucket.tokens / capacity;
        let warn = used > WARN_AT
            && bucket
                .warned
                .is_none_or(|at| now.saturating_duration_since(at) >= WINDOW);
        if warn {
            bucket.warned = Some(now);
        }
        Decision {
            limit: per_minute,
            remaining: bucket.tokens.floor() as u64,
            reset_seconds: ((capacity - bucket.tokens) / per_second).ceil() as u64,
            retry_after,
            warn,
        }
    }
}

/// Sends the `api.rate_limit` warning of a customer (in the background of the request).
pub fn warn(state: &AppState, customer_id: &str, decision: Decision) {
    let (meta, customer_id) = (state.meta.clone(), customer_id.to_string());
    tokio::spawn(async move {
        let used = decision.limit.saturating_sub(decision.remaining);
        let data = serde_json::json!({
            "customer_id": customer_id,
            "limit_per_minute": decision.limit,
            "remaining": decision.remaining,
            "used_percent": (used * 100).checked_div(decision.limit).unwrap_or(100),
            "window_seconds": WINDOW.as_secs(),
            "reset_seconds": decision.reset_seconds,
        });
        let result = async {
            let mut tx = meta.begin().await?;
            outbox::emit(
                &mut tx,
                outbox::Audience::Customer(&customer_id),
                EventType::ApiRateLimit,
                data,
            )
            .await?;
            tx.commit().await?;
            anyhow::Ok(())
        }
        .await;
        match result {
            Ok(()) => outbox::wake(),
            Err(error) => tracing::error!(
                error = format!("{error:#}"),
                "queuing api.rate_limit failed"
            ),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refuses_when_empty_refills_and_warns_once_per_window() {
        let limiter = RateLimiter::default();
        let start = Instant::now();
        let decisions: Vec<Decision> = (0..10).map(|_| limiter.check_at("c", 10, start)).collect();
        assert_eq!(decisions[0].remaining, 9);
        assert!(decisions.iter().all(|d| d.retry_after.is_none()));
        // 9 of 10 used is the first request past 80%.
        let warned: Vec<usize> = decisions
            .iter()
            .enumerate()
            .filter(|(_, d)| d.warn)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(warned, vec![8]);
        let refused = limiter.check_at("c", 10, start);
        assert_eq!(refused.retry_after, Some(6));
        assert_eq!(refused.remaining, 0);
        assert!(!refused.warn);
        // Another customer has its own bucket.
        assert_eq!(limiter.check_at("d", 10, start).remaining, 9);
        // 6 s later one token is back; no second warning inside the minute.
        let later = limiter.check_at("c", 10, start + Duration::from_secs(6));
        assert_eq!(later.retry_after, None);
        assert!(!later.warn);
        // A minute later the bucket is full again and a new window may warn.
        let next = start + Duration::from_secs(70);
        let warnings = (0..10)
            .filter(|_| limiter.check_at("c", 10, next).warn)
            .count();
        assert_eq!(warnings, 1);
    }
}
