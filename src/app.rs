//! Building and running the server: the piece tests start on port 0.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::catalog::Catalog;
use crate::config::{Config, Role};
use crate::crypto::MasterKey;
use crate::http::{self, AppState};
use crate::jobs;
use crate::meta::Meta;
use crate::source::Sources;
use crate::storage::Storage;
use crate::webhooks;

/// A bound, ready-to-serve application.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Opens the metadata database (migrating it), loads the master key and the
    /// catalog, and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        let public_base = config.public_base(listener.local_addr()?);
        // A bad webhook CA file stops the start, not the dispatcher later.
        webhooks::http_client(&config.webhook_settings())?;
        let state = build_state(config, public_base).await?;
        Ok(Application { listener, state })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The shared state (for the CLI and tests).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves (and, in roles `worker` and `all`, runs job workers) until `shutdown`
    /// fires, then finishes in-flight requests and hands running jobs back to the queue.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let role = self.state.config.role;
        let mut workers = match role {
            Role::Api => Vec::new(),
            Role::Worker | Role::All => jobs::spawn_workers(
                self.state.clone(),
                self.state.config.job_settings(),
                shutdown.clone(),
            ),
        };
        if role != Role::Api {
            let every = std::time::Duration::from_millis(self.state.config.job_poll_interval_ms);
            workers.push(jobs::schedules::spawn_scheduler(
                self.state.clone(),
                every,
                shutdown.clone(),
            ));
            workers.push(webhooks::spawn_dispatcher(
                self.state.clone(),
                self.state.config.webhook_settings(),
                shutdown.clone(),
            )?);
            if let Some(smtp) = self.state.config.smtp_settings() {
                workers.push(webhooks::email::spawn_mailer(
                    self.state.clone(),
                    smtp,
                    every,
                    shutdown.clone(),
                )?);
            }
        }
        let served = if role == Role::Worker {
            shutdown.cancelled().await;
            Ok(())
        } else {
            let app = http::router(self.state).into_make_service_with_connect_info::<SocketAddr>();
            let stop = shutdown.clone();
            axum::serve(self.listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
                .context("serving HTTP")
        };
        shutdown.cancel();
        for worker in workers {
            let _ = worker.await;
        }
        served
    }
}

/// The state every role shares, without binding anything.
pub async fn build_state(config: Config, public_base: String) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let master = match &config.master_key {
        Some(key) => MasterKey::from_base64(key.expose_secret()).context("master_key")?,
        None => MasterKey::load_or_create(&config.data_dir)?,
    };
    let catalog = match &config.catalog_dir {
        Some(dir) => Catalog::from_dir(dir)?,
        None => Catalog::builtin()?,
    };
    let meta = Meta::open(&config.metadata_url()).await?;
    // Install the metrics recorder before anything counts.
    http::metrics::handle();
    let storage = Storage::local(
        config.data_dir.join("files"),
        master.derive("download-urls"),
    )?;
    Ok(AppState {
        sync_slots: Arc::new(Semaphore::new(config.max_concurrent_sync)),
        config: Arc::new(config),
        meta,
        master: Arc::new(master),
        catalog: Arc::new(catalog),
        sources: Arc::new(Sources::default()),
        storage: Arc::new(storage),
        public_base: public_base.into(),
        rate_limiter: Default::default(),
    })
}

/// Fires the token on SIGINT or SIGTERM.
pub fn shutdown_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            if let Ok(mut s) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                s.recv().await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
        tracing::info!("shutting down: finishing in-flight requests");
        token.cancel();
    });
}
