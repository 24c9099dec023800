//! Settings: defaults < `cipherstream.toml` < `CIPHERSTREAM_*` environment < CLI flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Which parts of the platform this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Only the HTTP API.
    Api,
    /// Only the background workers.
    Worker,
    /// Everything in one process.
    #[default]
    All,
}

/// Every setting of the platform. Field names are the TOML keys; the environment
/// variable is `CIPHERSTREAM_` + the upper-cased name (`__` for nesting).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub bind: SocketAddr,
    /// Directory for the SQLite metadata, the demo practice, the master key and local files.
    pub data_dir: PathBuf,
    /// Metadata database: `sqlite://…` or `postgres://…`. Default: `metadata.db` in the data directory.
    pub metadata_url: Option<String>,
    /// Token for `/admin/v1`. Without one the admin API is disabled.
    #[serde(skip_serializing)]
    pub admin_token: Option<SecretString>,
    /// Base64 of the 32-byte master key that wraps customer data keys. Default: generated once into the data directory.
    #[serde(skip_serializing)]
    pub master_key: Option<SecretString>,
    /// Which parts run in this process.
    pub role: Role,
    /// A directory of catalog files that replaces the built-in catalog.
    pub catalog_dir: Option<PathBuf>,
    /// Time limit of an advanced request (`/v1/advanced/*`), in seconds: the practice
    /// database's statement limit and the server's deadline.
    pub advanced_timeout_seconds: u64,
    /// Time limit of a synchronous extraction, in seconds.
    pub sync_timeout_seconds: u64,
    /// `mode=auto` becomes a job above this many estimated rows.
    pub job_row_threshold: u64,
    /// `mode=auto` becomes a job above this estimated output size, in bytes.
    pub job_size_threshold_bytes: u64,
    /// Largest accepted `limit`.
    pub max_limit: u64,
    /// Connections per customer source pool.
    pub source_pool_size: u32,
    /// Log format: `text` or `json`.
    pub log_format: LogFormat,
    /// Public base URL used in printed links and download URLs (defaults to `http://{bind}`).
    pub public_url: Option<String>,
    /// Synchronous extractions allowed at once; past it `mode=auto` makes a job.
    pub max_concurrent_sync: usize,
    /// Job workers in this process (roles `worker` and `all`).
    pub job_workers: usize,
    /// Jobs of one customer running at once.
    pub job_per_customer_cap: i64,
    /// A running job's lease, in seconds; renewed while it runs, requeued when it lapses.
    pub job_lease_seconds: u64,
    /// Automatic retries of a job after transient failures.
    pub job_max_retries: i64,
    /// First retry delay in seconds; doubles with every retry.
    pub job_retry_backoff_seconds: f64,
    /// A job running longer is cancelled ("cancelled by system timeout").
    pub job_max_runtime_seconds: u64,
    /// How long job files are kept after completion, in seconds.
    pub file_retention_seconds: u64,
    /// Lifetime of a presigned download URL, in seconds.
    pub download_url_ttl_seconds: u64,
    /// How often idle workers look for queued jobs, in milliseconds.
    pub job_poll_interval_ms: u64,
    /// Proxies (CIDRs or addresses) whose `X-Forwarded-For` names the client; others' is ignored.
    pub trusted_proxies: Vec<String>,
    /// Audit entries older than this many days are removed.
    pub audit_retention_days: u64,
    /// Requests per minute for customers without their own `rate_limit_per_minute`; none: unlimited.
    pub default_rate_limit_per_minute: Option<u64>,
    /// Accept webhook URLs on loopback hosts, `http://` included (local development, tests).
    pub webhook_allow_loopback: bool,
    /// Accept webhook URLs that resolve to private, link-local or other non-public addresses.
    pub webhook_allow_private: bool,
    /// PEM file of extra root certificates trusted for webhook receivers (a private CA).
    pub webhook_ca_file: Option<PathBuf>,
    /// Webhook calls in flight at once in this process.
    pub webhook_concurrency: usize,
    /// How often an idle dispatcher looks for due deliveries, in milliseconds.
    pub webhook_poll_interval_ms: u64,
    /// Consecutive failed calls that open an endpoint's circuit.
    pub webhook_circuit_failure_threshold: i64,
    /// Seconds an open circuit waits before one probe call.
    pub webhook_circuit_cooldown_seconds: u64,
    /// An endpoint whose calls all fail for this many seconds is disabled.
    pub webhook_disable_after_seconds: u64,
    /// How long the log of finished deliveries (and sent mails) is kept, in seconds.
    pub webhook_log_retention_seconds: u64,
    /// How long a rotated-out webhook secret keeps signing beside the new one, by default.
    pub webhook_secret_grace_seconds: u64,
    /// SMTP server for email notifications; without one, email notifications are off.
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub smtp_username: Option<String>,
    #[serde(skip_serializing)]
    pub smtp_password: Option<SecretString>,
    /// `none`, `starttls` or `tls`.
    pub smtp_tls: crate::webhooks::email::SmtpTls,
    /// The From: of notification mails.
    pub smtp_from: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./cipherstream-data"),
            metadata_url: None,
            admin_token: None,
            master_key: None,
            role: Role::All,
            catalog_dir: None,
            sync_timeout_seconds: 60,
            advanced_timeout_seconds: 180,
            job_row_threshold: 100_000,
            job_size_threshold_bytes: 50 * 1024 * 1024,
            max_limit: 10_000_000,
            source_pool_size: 8,
            log_format: LogFormat::Text,
            public_url: None,
            max_concurrent_sync: 8,
            job_workers: 2,
            job_per_customer_cap: 2,
            job_lease_seconds: 30,
            job_max_retries: 3,
            job_retry_backoff_seconds: 5.0,
            job_max_runtime_seconds: 3600,
            file_retention_seconds: 12 * 3600,
            download_url_ttl_seconds: 12 * 3600,
            job_poll_interval_ms: 500,
            default_rate_limit_per_minute: None,
            trusted_proxies: Vec::new(),
            audit_retention_days: 365,
            webhook_allow_loopback: false,
            webhook_allow_private: false,
            webhook_ca_file: None,
            webhook_concurrency: 16,
            webhook_poll_interval_ms: 250,
            webhook_circuit_failure_threshold: 5,
            webhook_circuit_cooldown_seconds: 60,
            webhook_disable_after_seconds: 3 * 24 * 3600,
            webhook_secret_grace_seconds: 24 * 3600,
            webhook_log_retention_seconds: 30 * 24 * 3600,
            smtp_host: None,
            smtp_port: 587,
            smtp_username: None,
            smtp_password: None,
            smtp_tls: crate::webhooks::email::SmtpTls::Starttls,
            smtp_from: "CipherStream <notifications@localhost>".into(),
        }
    }
}

/// Values given as CLI flags; `None` leaves the lower layers in force.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_url: Option<String>,
}

impl Config {
    /// Loads the layers. `file` is `--config`; without it `./cipherstream.toml` is read when present.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                anyhow::ensure!(
                    path.exists(),
                    "config file {} does not exist",
                    path.display()
                );
                figment = figment.merge(Toml::file(path));
            }
            None => figment = figment.merge(Toml::file("cipherstream.toml")),
        }
        let config: Config = figment
            // Variables of the same prefix that are not settings: the log filter, the
            // decrypt command's key and the test suite's database URLs.
            .merge(
                Env::prefixed("CIPHERSTREAM_")
                    .ignore(&["log", "data_key", "test_mysql_url", "test_postgres_url"])
                    .split("__"),
            )
            .merge(Serialized::defaults(overrides))
            .extract()
            .context("reading configuration")?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the settings once, at startup.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.sync_timeout_seconds > 0,
            "sync_timeout_seconds must be at least 1"
        );
        anyhow::ensure!(self.max_limit > 0, "max_limit must be at least 1");
        anyhow::ensure!(
            self.advanced_timeout_seconds > 0,
            "advanced_timeout_seconds must be at least 1"
        );
        anyhow::ensure!(
            self.source_pool_size > 0,
            "source_pool_size must be at least 1"
        );
        for proxy in &self.trusted_proxies {
            anyhow::ensure!(
                parse_net(proxy).is_some(),
                "trusted_proxies: {proxy:?} is not an IP address or CIDR (e.g. 10.0.0.0/8)"
            );
        }
        anyhow::ensure!(
            self.webhook_circuit_failure_threshold > 0,
            "webhook_circuit_failure_threshold must be at least 1"
        );
        anyhow::ensure!(
            self.webhook_concurrency > 0,
            "webhook_concurrency must be at least 1"
        );
        if let Some(url) = &self.metadata_url {
            anyhow::ensure!(
                url.starts_with("sqlite:")
                    || url.starts_with("postgres:")
                    || url.starts_with("postgresql:"),
                "metadata_url must start with sqlite: or postgres:, got {:?}",
                url.split(':').next().unwrap_or_default()
            );
        }
        Ok(())
    }

    /// The metadata database URL, defaulting to SQLite in the data directory.
    pub fn metadata_url(&self) -> String {
        match &self.metadata_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("metadata.db").display()
            ),
        }
    }

    /// Worker behaviour.
    pub fn job_settings(&self) -> crate::jobs::JobSettings {
        crate::jobs::JobSettings {
            workers: self.job_workers,
            per_customer_cap: self.job_per_customer_cap,
            lease: Duration::from_secs(self.job_lease_seconds),
            max_retries: self.job_max_retries,
            retry_backoff: Duration::from_secs_f64(self.job_retry_backoff_seconds),
            max_runtime: Duration::from_secs(self.job_max_runtime_seconds),
            retention: Duration::from_secs(self.file_retention_seconds),
            poll_interval: Duration::from_millis(self.job_poll_interval_ms),
            progress_interval: Duration::from_millis(500),
        }
    }

    /// The trusted proxies, parsed (checked at startup).
    pub fn trusted_proxy_nets(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|p| parse_net(p))
            .collect()
    }

    /// Dispatcher behaviour.
    pub fn webhook_settings(&self) -> crate::webhooks::WebhookSettings {
        crate::webhooks::WebhookSettings {
            guard: crate::webhooks::guard::Guard {
                allow_loopback: self.webhook_allow_loopback,
                allow_private: self.webhook_allow_private,
            },
            ca_file: self.webhook_ca_file.clone(),
            concurrency: self.webhook_concurrency,
            poll_interval: Duration::from_millis(self.webhook_poll_interval_ms),
            circuit_failure_threshold: self.webhook_circuit_failure_threshold,
            circuit_cooldown: Duration::from_secs(self.webhook_circuit_cooldown_seconds),
            disable_after: Duration::from_secs(self.webhook_disable_after_seconds),
            log_retention: Duration::from_secs(self.webhook_log_retention_seconds),
        }
    }

    /// The SMTP server, when one is configured.
    pub fn smtp_settings(&self) -> Option<crate::webhooks::email::SmtpSettings> {
        Some(crate::webhooks::email::SmtpSettings {
            host: self.smtp_host.clone()?,
            port: self.smtp_port,
            username: self.smtp_username.clone(),
            password: self.smtp_password.clone(),
            tls: self.smtp_tls,
            from: self.smtp_from.clone(),
        })
    }

    /// The base of URLs handed to clients.
    pub fn public_base(&self, bound: SocketAddr) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
            .trim_end_matches('/')
            .to_string()
    }

    /// The synchronous extraction time limit.
    pub fn sync_timeout(&self) -> Duration {
        Duration::from_secs(self.sync_timeout_seconds)
    }
}

/// A CIDR, or a single address as a one-address network.
fn parse_net(text: &str) -> Option<ipnet::IpNet> {
    text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}
