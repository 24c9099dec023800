//! The test harness: real servers on port 0, real practice databases generated once
//! per test run into SQLite, MariaDB and PostgreSQL with the same seed.

use std::path::PathBuf;
use std::sync::OnceLock;

use cipherstream::config::Config;
use cipherstream::demo::{self, GenerateOptions};
use cipherstream::Application;
use sqlx::Connection;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const SEED: u64 = 7;
pub const PATIENTS: u32 = 150;

/// Base URL of the MariaDB server for tests (no database part).
pub fn mysql_base() -> String {
    std::env::var("CIPHERSTREAM_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// Base URL of the PostgreSQL server for tests (no database part).
pub fn postgres_base() -> String {
    std::env::var("CIPHERSTREAM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Reports a missing database server: a failure in CI, a skip elsewhere.
pub fn unavailable(what: &str, error: impl std::fmt::Display) -> Option<String> {
    assert!(!in_ci(), "{what} is required when CI=true: {error}");
    eprintln!("skipping {what}: {error}");
    None
}

/// Creates (or recreates) a database on a server and returns its URL.
pub async fn fresh_database(base: &str, name: &str) -> Result<String, String> {
    if base.starts_with("mysql") {
        let mut conn = sqlx::MySqlConnection::connect(base)
            .await
            .map_err(|e| e.to_string())?;
        sqlx::raw_sql(&format!(
            "DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}` CHARACTER SET utf8mb4"
        ))
        .execute(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    } else {
        let mut conn = sqlx::PgConnection::connect(&format!("{base}/postgres"))
            .await
            .map_err(|e| e.to_string())?;
        sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(format!("{base}/{name}"))
}

/// Drops the test databases of earlier test processes that are no longer running
/// (their names carry the process id), so repeated runs do not pile them up.
async fn sweep_stale_databases() {
    let stale = |name: &str| {
        let pid = name
            .trim_start_matches("cs_it_practice_")
            .trim_start_matches("cs_it_meta_");
        let pid = pid.split('_').next().unwrap_or_default();
        pid.parse::<u32>().is_ok_and(|pid| {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        })
    };
    if let Ok(mut conn) = sqlx::MySqlConnection::connect(&mysql_base()).await {
        let names: Vec<String> = sqlx::query_scalar("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'cs\\_it\\_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
        for name in names.iter().filter(|n| stale(n)) {
            let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS `{name}`"))
                .execute(&mut conn)
                .await;
        }
    }
    if let Ok(mut conn) =
        sqlx::PgConnection::connect(&format!("{}/postgres", postgres_base())).await
    {
        let names: Vec<String> =
            sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'cs\\_it\\_%'")
                .fetch_all(&mut conn)
                .await
                .unwrap_or_default();
        for name in names.iter().filter(|n| stale(n)) {
            let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut conn)
                .await;
        }
    }
}

/// The same generated practice in each kind of database.
pub struct Practices {
    pub sqlite: String,
    pub mysql: Option<String>,
    pub postgres: Option<String>,
    _dir: TempDir,
}

impl Practices {
    /// (label, url) of every available source.
    pub fn all(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![("sqlite", self.sqlite.clone())];
        if let Some(url) = &self.mysql {
            out.push(("mariadb", url.clone()));
        }
        if let Some(url) = &self.postgres {
            out.push(("postgres", url.clone()));
        }
        out
    }
}

/// Generated once per test run, on a runtime of its own so every test can use it.
pub fn practices() -> &'static Practices {
    static PRACTICES: OnceLock<Practices> = OnceLock::new();
    PRACTICES.get_or_init(|| {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            runtime.block_on(async {
                sweep_stale_databases().await;
                let dir = tempfile::tempdir().expect("tempdir");
                let as_of = chrono::Utc::now().date_naive();
                let generate = |url: String| async move {
                    demo::generate(GenerateOptions {
                        target_url: url.clone(),
                        patients: PATIENTS,
                        seed: SEED,
                        as_of,
                    })
                    .await
                    .map(|_| url)
                    .map_err(|e| format!("{e:#}"))
                };
                let sqlite = generate(format!(
                    "sqlite://{}",
                    dir.path().join("practice.db").display()
                ))
                .await
                .expect("sqlite practice");
                let db = format!("cs_it_practice_{}", std::process::id());
                let mysql = match fresh_database(&mysql_base(), &db).await {
                    Ok(url) => Some(generate(url).await.expect("mariadb practice")),
                    Err(e) => unavailable("MariaDB", e),
                };
                let postgres = match fresh_database(&postgres_base(), &db).await {
                    Ok(url) => Some(generate(url).await.expect("postgres practice")),
                    Err(e) => unavailable("PostgreSQL", e),
                };
                Practices {
                    sqlite,
                    mysql,
                    postgres,
                    _dir: dir,
                }
            })
        })
        .join()
        .expect("generating the test practices")
    })
}

/// Which metadata database a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaBackend {
    Sqlite,
    Postgres,
}

/// A running server with its own data directory.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    shutdown: CancellationToken,
    _dir: TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
    /// Starts a server on SQLite metadata.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(MetaBackend::Sqlite, |_| {})
            .await
            .expect("sqlite metadata is always available")
    }

    /// Starts a server on the given metadata backend (None when PostgreSQL is unavailable outside CI).
    pub async fn spawn_with(
        backend: MetaBackend,
        adjust: impl FnOnce(&mut Config),
    ) -> Option<TestApp> {
        // Warnings and errors of the server show in a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("warn")
            .try_init();
        let dir = tempfile::tempdir().expect("tempdir");
        let metadata_url = match backend {
            MetaBackend::Sqlite => None,
            MetaBackend::Postgres => {
                let name = format!(
                    "cs_it_meta_{}_{}",
                    std::process::id(),
                    cipherstream::crypto::random_hex(4)
                );
                match fresh_database(&postgres_base(), &name).await {
                    Ok(url) => Some(url),
                    Err(e) => return unavailable("PostgreSQL metadata", e).map(|_| unreachable!()),
                }
            }
        };
        let mut config = Config {
            bind: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            metadata_url,
            admin_token: Some(ADMIN_TOKEN.to_string().into()),
            ..Config::default()
        };
        adjust(&mut config);
        let app = Application::build(config).await.expect("building the app");
        let addr = app.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(app.run(shutdown.clone()));
        Some(TestApp {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            data_dir: dir.path().to_path_buf(),
            shutdown,
            _dir: dir,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates a customer through the admin API; returns (api_key, full response).
    pub async fn create_customer(&self, id: &str, source_url: &str) -> (String, serde_json::Value) {
        let response = self
            .client
            .post(self.url("/admin/v1/customers"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({"id": id, "name": format!("Practice {id}"), "source_url": source_url}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "creating customer {id}");
        let body: serde_json::Value = response.json().await.unwrap();
        (body["api_key"].as_str().unwrap().to_string(), body)
    }

    /// GET with an API key.
    pub async fn get(&self, key: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }
}

/// Asserts a problem+json answer with `status` and returns its body.
pub async fn expect_problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status(), status, "{:?}", response.url().path());
    let content_type = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/problem+json"),
        "content type {content_type}"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["type"].as_str().unwrap().starts_with("https://"));
    assert!(body["title"].is_string() && body["detail"].is_string());
    assert!(
        body["request_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("req_")),
        "{body}"
    );
    body
}

/// Held by a test while it switches MariaDB's (server-wide) general query log on and off.
pub static GENERAL_LOG: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
