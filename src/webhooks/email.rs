//! Email notifications: a customer may ask for a mail when its jobs complete, fail or
//! are cancelled. Mails are queued in the outbox with the job's state change and sent
//! through the configured SMTP server with `lettre`, retried a few times.

use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::endpoints::{events_text, parse_events};
use super::EventType;
use crate::http::AppState;
use crate::meta::{self, Meta};

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP (a relay on the same host).
    None,
    /// Upgrade with STARTTLS (usually port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// The SMTP server, from configuration.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub tls: SmtpTls,
    pub from: String,
}

/// Attempts per mail before it is given up.
const MAX_ATTEMPTS: i64 = 5;

/// The events a customer can be mailed about.
pub const EMAIL_EVENTS: [EventType; 3] = [
    EventType::JobCompleted,
    EventType::JobFailed,
    EventType::JobCancelled,
];

/// A customer's email notification settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailSettings {
    pub recipients: Vec<String>,
    pub events: Vec<EventType>,
    pub enabled: bool,
    pub updated_at: String,
}

pub async fn get_settings(meta: &Meta, customer_id: &str) -> anyhow::Result<Option<EmailSettings>> {
    let row = sqlx::query(
        "SELECT recipients, events, enabled, updated_at FROM email_settings WHERE customer_id = $1",
    )
    .bind(customer_id)
    .fetch_optional(&meta.pool)
    .await?;
    row.map(|r| {
        Ok(EmailSettings {
            recipients: r
                .try_get::<String, _>("recipients")?
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            events: parse_events(&r.try_get::<String, _>("events")?),
            enabled: r.try_get::<i64, _>("enabled")? != 0,
            updated_at: r.try_get("updated_at")?,
        })
    })
    .transpose()
}

/// Replaces a customer's settings.
pub async fn put_settings(
    meta: &Meta,
    customer_id: &str,
    recipients: &[String],
    events: &[EventType],
    enabled: bool,
) -> anyhow::Result<EmailSettings> {
    let now = meta::now();
    let mut tx = meta.begin().await?;
    sqlx::query("DELETE FROM email_settings WHERE customer_id = $1")
        .bind(customer_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO email_settings (customer_id, recipients, events, enabled, updated_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(customer_id)
    .bind(recipients.join(" "))
    .bind(events_text(events))
    .bind(enabled as i64)
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    get_settings(meta, customer_id)
        .await?
        .context("email settings vanished")
}

/// Removes a customer's settings; false when there were none.
pub async fn delete_settings(meta: &Meta, customer_id: &str) -> anyhow::Result<bool> {
    Ok(
        sqlx::query("DELETE FROM email_settings WHERE customer_id = $1")
            .bind(customer_id)
            .execute(&meta.pool)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Checks one address (syntax only), for the API.
pub fn check_address(address: &str) -> Result<(), String> {
    if address.len() > 254 || address.contains(char::is_whitespace) {
        return Err(format!("{address:?} is not an email address"));
    }
    address
        .parse::<lettre::Address>()
        .map(|_| ())
        .map_err(|_| format!("{address:?} is not an email address"))
}

fn transport(settings: &SmtpSettings) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let builder = match settings.tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host),
        SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)?,
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host)?,
    };
    let mut builder = builder
        .port(settings.port)
        .timeout(Some(Duration::from_secs(30)));
    if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.expose_secret().to_string(),
        ));
    }
    Ok(builder.build())
}

/// Starts the mail loop.
pub fn spawn_mailer(
    state: AppState,
    settings: SmtpSettings,
    every: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let from: Mailbox = settings
        .from
        .parse()
        .with_context(|| format!("smtp_from {:?} is not a mailbox", settings.from))?;
    let mailer = transport(&settings)?;
    Ok(tokio::spawn(async move {
        while !shutdown.is_cancelled() {
            match send_due(&state, &mailer, &from).await {
                Ok(0) => {
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = tokio::time::sleep(every) => {}
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(
                        error = format!("{error:#}"),
                        "sending notification mails failed"
                    );
                    tokio::time::sleep(every).await;
                }
            }
        }
    }))
}

/// Sends the mails that are due; returns how many were attempted.
async fn send_due(
    state: &AppState,
    mailer: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
) -> anyhow::Result<usize> {
    let meta = &state.meta;
    let now = Utc::now();
    let now_text = meta::format_time(now);
    let due = sqlx::query(
        "SELECT o.id, o.customer_id, o.event_type, o.recipients, o.attempts, e.data FROM email_outbox o \
         JOIN webhook_events e ON e.id = o.event_id \
         WHERE (o.status = 'pending' AND o.next_attempt_at <= $1) OR (o.status = 'sending' AND o.lease_expires_at < $1) \
         ORDER BY o.next_attempt_at LIMIT 20",
    )
    .bind(&now_text)
    .fetch_all(&meta.pool)
    .await?;
    let mut attempted = 0;
    for row in due {
        let id: String = row.try_get("id")?;
        let taken = sqlx::query(
            "UPDATE email_outbox SET status = 'sending', lease_expires_at = $1 WHERE id = $2 AND \
             ((status = 'pending' AND next_attempt_at <= $3) OR (status = 'sending' AND lease_expires_at < $3))",
        )
        .bind(meta::format_time(now + chrono::Duration::seconds(120)))
        .bind(&id)
        .bind(&now_text)
        .execute(&meta.pool)
        .await?
        .rows_affected();
        if taken == 0 {
            continue;
        }
        attempted += 1;
        let event: String = row.try_get("event_type")?;
        let data: serde_json::Value = serde_json::from_str(&row.try_get::<String, _>("data")?)?;
        let recipients: String = row.try_get("recipients")?;
        let result = send_one(state, mailer, from, &event, &data, &recipients).await;
        let attempts = row.try_get::<i64, _>("attempts")? + 1;
        let (status, error) = match &result {
            Ok(()) => ("sent", None),
            Err(_) if attempts >= MAX_ATTEMPTS => ("failed", result.as_ref().err()),
            Err(_) => ("pending", result.as_ref().err()),
        };
        let retry_at = now + chrono::Duration::seconds(30 * 2i64.pow(attempts as u32 - 1));
        sqlx::query(
            "UPDATE email_outbox SET status = $1, attempts = $2, last_error = $3, next_attempt_at = $4, lease_expires_at = NULL, \
             sent_at = CASE WHEN $1 = 'sent' THEN $5 ELSE sent_at END WHERE id = $6",
        )
        .bind(status)
        .bind(attempts)
        .bind(error.map(|e| format!("{e:#}")))
        .bind(meta::format_time(retry_at))
        .bind(meta::now())
        .bind(&id)
        .execute(&meta.pool)
        .await?;
        metrics::counter!("cipherstream_notification_emails_total", "outcome" => status)
            .increment(1);
        if let Some(error) = error {
            tracing::warn!(email_id = %id, attempts, error = format!("{error:#}"), "notification mail not sent");
        }
    }
    Ok(attempted)
}

async fn send_one(
    state: &AppState,
    mailer: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
    event: &str,
    data: &serde_json::Value,
    recipients: &str,
) -> anyhow::Result<()> {
    let (subject, body) = compose(&state.public_base, event, data);
    let mut message = Message::builder().from(from.clone()).subject(subject);
    for to in recipients.split_whitespace() {
        message = message.to(to.parse().with_context(|| format!("recipient {to:?}"))?);
    }
    let message = message.header(ContentType::TEXT_PLAIN).body(body)?;
    mailer.send(message).await?;
    Ok(())
}

/// The subject and plain-text body of a job notification. No download link: a mail
/// is no place for a bearer URL; the API hands one out to key holders.
fn compose(public_base: &str, event: &str, data: &serde_json::Value) -> (String, String) {
    let text = |key: &str| data[key].as_str().unwrap_or("-").to_string();
    let job_id = text("job_id");
    let outcome = match event {
        "job.completed" => "completed",
        "job.failed" => "failed",
        _ => "was cancelled",
    };
    let subject = format!(
        "CipherStream: {} job {job_id} {outcome}",
        text("procedure_name")
    );
    let mut body = format!(
        "Your CipherStream extraction job {job_id} {outcome}.\n\n\
         Procedure:       {}\nStatus:          {}\nRows processed:  {}\nFormat:          {} ({})\n",
        text("procedure_name"),
        text("status"),
        data["rows_processed"],
        text("output_format"),
        text("compression"),
    );
    if let Some(size) = data["file_size_bytes"].as_i64() {
        body.push_str(&format!("File size:       {size} bytes\n"));
    }
    if let Some(expires) = data["expires_at"].as_str() {
        body.push_str(&format!("File expires at: {expires}\n"));
    }
    if let Some(error) = data["error_message"].as_str() {
        body.push_str(&format!("Reason:          {error}\n"));
    }
    if event == "job.completed" {
        body.push_str(&format!(
            "\nDownload it with your API key:\n  GET {public_base}/v1/jobs/{job_id}/download\n"
        ));
    }
    body.push_str("\nYou receive this mail because your organisation enabled job notifications.\n");
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composes_a_completed_mail_without_a_bearer_url() {
        let data = serde_json::json!({"job_id": "appointments_1_ab", "procedure_name": "appointments",
            "status": "completed", "rows_processed": 42, "output_format": "csv", "compression": "gzip",
            "file_size_bytes": 1234, "s3_url": "https://x/v1/files/secret?sig=abc"});
        let (subject, body) = compose("https://api.example", "job.completed", &data);
        assert_eq!(
            subject,
            "CipherStream: appointments job appointments_1_ab completed"
        );
        assert!(body.contains("Rows processed:  42"));
        assert!(body.contains("GET https://api.example/v1/jobs/appointments_1_ab/download"));
        assert!(!body.contains("sig=abc"));
    }

    #[test]
    fn checks_addresses() {
        assert!(check_address("ops@practice.example").is_ok());
        assert!(check_address("not an address").is_err());
        assert!(check_address("a@b@c").is_err());
    }
}
