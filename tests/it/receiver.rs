//! A real webhook receiver on loopback: records every call (time, headers, raw body)
//! and answers as the test tells it to (status, delay, `Retry-After` in seconds or as
//! an HTTP date, a chosen body, a body that stalls, a redirect), optionally following a
//! script of one-off answers first; it also tracks how many calls were open at once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::Notify;

/// How the receiver answers.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// 200 `{"ok": true}`.
    Ok,
    /// This status with a short body.
    Status(u16),
    /// 200 after sleeping this long.
    Sleep(Duration),
    /// This status with `Retry-After: <seconds>`.
    RetryAfter(u16, u64),
    /// This status with this body.
    Body(u16, String),
    /// `302 Found` with this `Location`.
    Redirect(String),
    /// This status with `Retry-After` as an HTTP date this many seconds ahead.
    RetryAt(u16, u64),
    /// This status and the start of the body at once, the rest of the body only after
    /// this long.
    SlowBody(u16, Duration),
}

/// One call as received.
#[derive(Debug, Clone)]
pub struct Call {
    pub at: Instant,
    /// The same moment on the wall clock, to compare with times the server reports.
    pub wall: chrono::DateTime<chrono::Utc>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub path: String,
}

impl Call {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Inner {
    calls: Mutex<Vec<Call>>,
    behaviour: Mutex<Option<Behaviour>>,
    /// One-off answers, used (in order) before `behaviour`.
    script: Mutex<VecDeque<Behaviour>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    arrived: Notify,
}

/// Counts a call as open until its answer is sent or the caller gives up.
struct InFlight(Arc<Inner>);

impl InFlight {
    fn enter(inner: &Arc<Inner>) -> InFlight {
        let now = inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        inner.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(inner.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The receiver; it stops when dropped.
pub struct Receiver {
    pub url: String,
    inner: Arc<Inner>,
    stop: tokio_util::sync::CancellationToken,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn receive(
    State(inner): State<Arc<Inner>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _open = InFlight::enter(&inner);
    let scripted = inner.script.lock().unwrap().pop_front();
    let behaviour = scripted.unwrap_or_else(|| {
        inner
            .behaviour
            .lock()
            .unwrap()
            .clone()
            .unwrap_or(Behaviour::Ok)
    });
    inner.calls.lock().unwrap().push(Call {
        at: Instant::now(),
        wall: chrono::Utc::now(),
        headers,
        body,
        path: uri.path().to_string(),
    });
    inner.arrived.notify_waiters();
    match behaviour {
        Behaviour::Ok => (StatusCode::OK, "{\"ok\": true}").into_response(),
        Behaviour::Status(code) => (
            StatusCode::from_u16(code).unwrap(),
            format!("receiver says {code}"),
        )
            .into_response(),
        Behaviour::Sleep(delay) => {
            tokio::time::sleep(delay).await;
            (StatusCode::OK, "late").into_response()
        }
        Behaviour::RetryAfter(code, seconds) => (
            StatusCode::from_u16(code).unwrap(),
            [("retry-after", seconds.to_string())],
            "slow down",
        )
            .into_response(),
        Behaviour::Body(code, body) => (StatusCode::from_u16(code).unwrap(), body).into_response(),
        Behaviour::RetryAt(code, seconds) => {
            let at = chrono::Utc::now() + chrono::Duration::seconds(seconds as i64);
            let date = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
            (
                StatusCode::from_u16(code).unwrap(),
                [("retry-after", date)],
                "slow down",
            )
                .into_response()
        }
        Behaviour::SlowBody(code, delay) => {
            let chunks = futures::stream::unfold(0, move |step| async move {
                match step {
                    0 => Some((Ok::<_, std::io::Error>(Bytes::from("started ")), 1)),
                    1 => {
                        tokio::time::sleep(delay).await;
                        Some((Ok(Bytes::from("finished")), 2))
                    }
                    _ => None,
                }
            });
            (
                StatusCode::from_u16(code).unwrap(),
                axum::body::Body::from_stream(chunks),
            )
                .into_response()
        }
        Behaviour::Redirect(location) => {
            (StatusCode::FOUND, [("location", location)], "moved").into_response()
        }
    }
}

impl Receiver {
    /// Starts on a free loopback port.
    pub async fn start() -> Receiver {
        let inner = Arc::new(Inner::default());
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await
                .unwrap();
        });
        Receiver {
            url: format!("http://{addr}/hooks/cipherstream"),
            inner,
            stop,
        }
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.inner.behaviour.lock().unwrap() = Some(behaviour);
    }

    /// Answers the next calls with these, in order, then as [`Receiver::set`] says.
    pub fn script(&self, answers: Vec<Behaviour>) {
        self.inner.script.lock().unwrap().extend(answers);
    }

    /// The most calls that were open at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.calls.lock().unwrap().clone()
    }

    /// Waits until at least `n` calls arrived (panics after `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Call> {
        let deadline = Instant::now() + timeout;
        loop {
            let arrived = self.inner.arrived.notified();
            let calls = self.calls();
            if calls.len() >= n {
                return calls;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "expected {n} calls within {timeout:?}, got {}",
                calls.len()
            );
            let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), arrived).await;
        }
    }
}
