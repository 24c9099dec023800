//! Building and running the server: the piece tests start on port 0.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::http::{self, AppState};
use crate::meta::Meta;
use crate::source::Sources;

/// A bound, ready-to-serve application.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Opens the metadata database (migrating it), loads the master key and the
    /// catalog, and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
        let state = build_state(config).await?;
        let listener = TcpListener::bind(state.config.bind)
            .await
            .with_context(|| format!("binding {}", state.config.bind))?;
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

    /// Serves until `shutdown` fires, then finishes in-flight requests.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let app = http::router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .context("serving HTTP")
    }
}

/// The state every role shares, without binding anything.
pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
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
    Ok(AppState {
        config: Arc::new(config),
        meta,
        master: Arc::new(master),
        catalog: Arc::new(catalog),
        sources: Arc::new(Sources::default()),
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
