//! The command line: `serve`, `demo generate`, `customer …`, `key …`, `maintenance
//! announce`, `migrate`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::io::Write as _;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::app::{self, Application};
use crate::config::{Config, Overrides, Role};
use crate::crypto::{self, MasterKey};
use crate::demo::{self, GenerateOptions};
use crate::meta::Meta;
use crate::tenancy::{self, NewCustomer};

/// CipherStream: extract practice-management data over one HTTP API.
#[derive(Debug, Parser)]
#[command(name = "cipherstream", version, about)]
pub struct Cli {
    /// Configuration file (default: ./cipherstream.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (metadata, demo practice, master key).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Metadata database URL (sqlite://… or postgres://…).
    #[arg(long, global = true, value_name = "URL")]
    pub metadata_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Demo practice data.
    #[command(subcommand)]
    Demo(DemoCommand),
    /// Manage customers.
    #[command(subcommand)]
    Customer(CustomerCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Announce maintenance to integrators (a `system.maintenance` webhook event).
    #[command(subcommand)]
    Maintenance(MaintenanceCommand),
    /// Create or update the metadata database schema, then exit.
    Migrate,
    /// Decrypt a downloaded job file (CSE1 format) with the customer's data key.
    Decrypt {
        /// The base64 data key (shown at customer creation); or set CIPHERSTREAM_DATA_KEY.
        #[arg(long, env = "CIPHERSTREAM_DATA_KEY", hide_env_values = true)]
        key: String,
        /// The encrypted file (`….cse`).
        input: PathBuf,
        /// Where to write the decrypted file.
        output: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Generate (once) a demo practice in the data directory and serve it as customer `demo`.
    #[arg(long)]
    pub demo: bool,
    /// Patients in the generated demo practice.
    #[arg(long, default_value_t = 2000, requires = "demo")]
    pub demo_patients: u32,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<SocketAddr>,
    /// Which parts run in this process.
    #[arg(long, value_enum)]
    pub role: Option<Role>,
}

#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Create the practice schema in a database and fill it with deterministic data.
    Generate {
        /// Target database: sqlite://file.db, mysql://… or postgres://…
        #[arg(long, value_name = "URL")]
        target: String,
        /// Number of patients; everything else scales from it.
        #[arg(long, default_value_t = 1000)]
        patients: u32,
        /// Random seed: the same seed, size and --as-of give the same rows.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// The practice's "today" (YYYY-MM-DD); default: today (UTC).
        #[arg(long, value_name = "DATE")]
        as_of: Option<NaiveDate>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CustomerCommand {
    /// Create a customer; prints its API key and data key (shown once).
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Slug id (default: from the name).
        #[arg(long)]
        id: Option<String>,
        /// The practice database URL.
        #[arg(long, value_name = "URL")]
        source_url: String,
        /// Allowed client CIDRs (repeatable).
        #[arg(long = "ip-allow", value_name = "CIDR")]
        ip_allowlist: Vec<String>,
        /// Requests per minute.
        #[arg(long)]
        rate_limit_per_minute: Option<i64>,
    },
    /// List customers.
    List,
    /// Replace a customer's data key; prints the new key (shown once).
    RotateKey {
        #[arg(long)]
        customer: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// Queue `system.maintenance` for every subscribed endpoint of every customer.
    Announce {
        /// What happens, for the integrators' operators.
        #[arg(long)]
        message: String,
        /// Start of the window (RFC 3339).
        #[arg(long, value_name = "TIME")]
        starts_at: String,
        /// End of the window (RFC 3339).
        #[arg(long, value_name = "TIME")]
        ends_at: Option<String>,
        /// info, warning or critical.
        #[arg(long, default_value = "info")]
        severity: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key for a customer (shown once).
    Create {
        #[arg(long)]
        customer: String,
        #[arg(long)]
        name: Option<String>,
        /// When the key stops working (RFC 3339).
        #[arg(long, value_name = "TIME")]
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
        /// Addresses or CIDRs the key may be used from (repeatable).
        #[arg(long = "ip-allow", value_name = "CIDR")]
        ip_allowlist: Vec<String>,
        /// Requests per minute for this key, on top of the customer's quota.
        #[arg(long)]
        rate_limit_per_minute: Option<i64>,
    },
    /// Revoke an API key.
    Revoke {
        #[arg(long)]
        customer: String,
        /// The key id (key_…).
        key_id: String,
    },
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let overrides = Overrides {
        data_dir: cli.data_dir.clone(),
        metadata_url: cli.metadata_url.clone(),
        bind: match &cli.command {
            Command::Serve(args) => args.bind,
            _ => None,
        },
        role: match &cli.command {
            Command::Serve(args) => args.role,
            _ => None,
        },
    };
    let config = Config::load(cli.config.as_deref(), &overrides)?;
    match cli.command {
        Command::Serve(args) => serve(config, args).await,
        Command::Demo(DemoCommand::Generate {
            target,
            patients,
            seed,
            as_of,
        }) => {
            let as_of = as_of.unwrap_or_else(|| chrono::Utc::now().date_naive());
            let report = demo::generate(GenerateOptions {
                target_url: target,
                patients,
                seed,
                as_of,
            })
            .await?;
            for (table, rows) in &report.tables {
                println!("{table:<24} {rows:>10}");
            }
            println!("generated in {:.1} s", report.elapsed.as_secs_f64());
            Ok(())
        }
        Command::Customer(command) => {
            let (meta, master) = open_meta(&config).await?;
            match command {
                CustomerCommand::Create {
                    name,
                    id,
                    source_url,
                    ip_allowlist,
                    rate_limit_per_minute,
                } => {
                    let input = NewCustomer {
                        id,
                        name,
                        source_url,
                        ip_allowlist,
                        rate_limit_per_minute,
                    };
                    let (customer, key, data_key) =
                        tenancy::create_customer(&meta, &master, input).await?;
                    let out = serde_json::json!({"customer": customer, "api_key": key.api_key, "api_key_id": key.info.id, "data_key": data_key});
                    println!("{}", serde_json::to_string_pretty(&out)?);
                }
                CustomerCommand::RotateKey { customer } => {
                    let (customer, data_key) =
                        tenancy::rotate_data_key(&meta, &master, &customer).await?;
                    let out = serde_json::json!({"customer": customer, "data_key": data_key});
                    println!("{}", serde_json::to_string_pretty(&out)?);
                }
                CustomerCommand::List => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&tenancy::list_customers(&meta).await?)?
                    );
                }
            }
            Ok(())
        }
        Command::Key(command) => {
            let (meta, _) = open_meta(&config).await?;
            match command {
                KeyCommand::Create {
                    customer,
                    name,
                    expires_at,
                    ip_allowlist,
                    rate_limit_per_minute,
                } => {
                    let limits = tenancy::KeyLimits {
                        expires_at,
                        ip_allowlist,
                        rate_limit_per_minute,
                    };
                    let key =
                        tenancy::create_key(&meta, &customer, name.as_deref(), &limits).await?;
                    println!("{}", serde_json::to_string_pretty(&key)?);
                }
                KeyCommand::Revoke { customer, key_id } => {
                    tenancy::revoke_key(&meta, &customer, &key_id).await?;
                    println!("revoked {key_id}");
                }
            }
            Ok(())
        }
        Command::Decrypt { key, input, output } => {
            use std::io::IsTerminal;
            let bytes =
                crypto::cse1::decrypt_file(&key, &input, &output, std::io::stderr().is_terminal())?;
            eprintln!("decrypted {bytes} bytes into {}", output.display());
            Ok(())
        }
        Command::Maintenance(MaintenanceCommand::Announce {
            message,
            starts_at,
            ends_at,
            severity,
        }) => {
            let (meta, _) = open_meta(&config).await?;
            let announcement = crate::webhooks::Maintenance {
                message,
                starts_at,
                ends_at,
                severity: Some(severity),
            };
            if let Err(errors) = announcement.check() {
                let text: Vec<String> = errors
                    .iter()
                    .map(|(f, m)| format!("--{}: {m}", f.replace('_', "-")))
                    .collect();
                anyhow::bail!("{}", text.join("; "));
            }
            let (event_id, deliveries) =
                crate::webhooks::announce_maintenance(&meta, &announcement).await?;
            tenancy::record(
                &meta,
                tenancy::AuditEntry {
                    action: "maintenance.announce".into(),
                    detail: serde_json::json!({"event_id": event_id, "deliveries": deliveries, "via": "cli"}),
                    ..Default::default()
                },
            )
            .await;
            println!(
                "{}",
                serde_json::json!({"event_id": event_id, "deliveries": deliveries})
            );
            Ok(())
        }
        Command::Migrate => {
            open_meta(&config).await?;
            println!("metadata database is up to date");
            Ok(())
        }
    }
}

async fn open_meta(config: &Config) -> anyhow::Result<(Meta, MasterKey)> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let master = match &config.master_key {
        Some(key) => MasterKey::from_base64(secrecy::ExposeSecret::expose_secret(key))?,
        None => MasterKey::load_or_create(&config.data_dir)?,
    };
    Ok((Meta::open(&config.metadata_url()).await?, master))
}

async fn serve(config: Config, args: ServeArgs) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    let addr = app.local_addr()?;
    let base = app
        .state()
        .config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    if args.demo {
        let api_key = prepare_demo(&app, args.demo_patients).await?;
        let month = (chrono::Utc::now().date_naive() - chrono::Duration::days(30)).format("%Y-%m");
        let banner = format!(
            "\n  CipherStream demo is running.\n  API key (customer `demo`): {api_key}\n  Swagger UI:                {base}/docs\n  Try it:\n    \
             curl -H 'Authorization: Bearer {api_key}' '{base}/v1/extract/appointments?from_date={month}-01&to_date={month}-28&format=csv'\n"
        );
        // A closed stdout (a detached terminal) must not stop the server.
        let _ = writeln!(std::io::stdout(), "{banner}");
    }
    tracing::info!(%addr, "listening");
    let shutdown = CancellationToken::new();
    app::shutdown_on_signals(shutdown.clone());
    app.run(shutdown).await
}

/// File of the demo customer's secrets, written once with mode 0600.
pub const DEMO_CREDENTIALS: &str = "demo-credentials.json";
/// The generated demo practice database inside the data directory.
pub const DEMO_PRACTICE: &str = "demo-practice.db";

/// Generates the demo practice and customer on first start; returns the API key.
async fn prepare_demo(app: &Application, patients: u32) -> anyhow::Result<String> {
    let state = app.state();
    let data_dir = std::fs::canonicalize(&state.config.data_dir)?;
    let practice = data_dir.join(DEMO_PRACTICE);
    let url = format!("sqlite://{}", practice.display());
    if !practice.exists() {
        println!(
            "Generating the demo practice ({patients} patients) into {} …",
            practice.display()
        );
        let partial = data_dir.join(format!("{DEMO_PRACTICE}.partial"));
        let _ = std::fs::remove_file(&partial);
        let as_of = chrono::Utc::now().date_naive();
        let report = demo::generate(GenerateOptions {
            target_url: format!("sqlite://{}", partial.display()),
            patients,
            seed: 42,
            as_of,
        })
        .await?;
        // Published only once complete, so an interrupted first start regenerates.
        std::fs::rename(&partial, &practice)?;
        println!("  done in {:.1} s", report.elapsed.as_secs_f64());
    }
    let credentials_path = data_dir.join(DEMO_CREDENTIALS);
    if tenancy::get_customer(&state.meta, "demo").await?.is_none() {
        let input = NewCustomer {
            id: Some("demo".into()),
            name: "Demo Dental".into(),
            source_url: url,
            ip_allowlist: vec![],
            rate_limit_per_minute: None,
        };
        let (customer, key, data_key) =
            tenancy::create_customer(&state.meta, &state.master, input).await?;
        write_credentials(&credentials_path, &customer.id, &key.api_key, &data_key)?;
        return Ok(key.api_key);
    }
    if let Ok(text) = std::fs::read_to_string(&credentials_path) {
        let value: serde_json::Value =
            serde_json::from_str(&text).context("reading demo-credentials.json")?;
        if let Some(key) = value["api_key"].as_str() {
            if tenancy::authenticate(&state.meta, key).await?.is_some() {
                return Ok(key.to_string());
            }
        }
    }
    // The stored key was lost or revoked: issue a new one (the data key cannot be shown again).
    let key = tenancy::create_key(&state.meta, "demo", Some("demo"), &Default::default()).await?;
    write_credentials(&credentials_path, "demo", &key.api_key, "")?;
    Ok(key.api_key)
}

fn write_credentials(
    path: &Path,
    customer_id: &str,
    api_key: &str,
    data_key: &str,
) -> anyhow::Result<()> {
    let json =
        serde_json::json!({"customer_id": customer_id, "api_key": api_key, "data_key": data_key});
    crypto::write_private(path, serde_json::to_string_pretty(&json)?.as_bytes())
}
