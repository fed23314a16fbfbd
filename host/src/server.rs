//! `grito serve`: the HTTP server and, beside it, the workers.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::api::{AppState, app};
use crate::config::Settings;
use crate::signals::Signals;
use crate::store::{self, DatabaseUrl};

/// Shown when `EVENTS_API_KEY` is missing: the service never runs open.
pub const MISSING_KEY_MESSAGE: &str = "EVENTS_API_KEY is not set, so grito will not start: \
every POST /events must carry this key in X-Api-Key. Set it to a long random secret, \
for example EVENTS_API_KEY=$(openssl rand -hex 32). / EVENTS_API_KEY não está definida, \
então o grito não inicia: defina uma chave longa e aleatória.";

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let Some(events_api_key) = settings.events_api_key.clone() else {
        anyhow::bail!(MISSING_KEY_MESSAGE);
    };
    if events_api_key.len() < 16 {
        tracing::warn!("EVENTS_API_KEY is shorter than 16 characters; use a long random secret in production");
    }

    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        database = describe_database(&settings.database),
        "starting grito"
    );
    let store = store::connect(&settings.database).await?;
    tracing::info!(backend = store.backend(), "database ready, migrations applied");

    let signals = Arc::new(Signals::default());
    let state = AppState {
        store: store.clone(),
        signals: signals.clone(),
        events_api_key: events_api_key.into(),
        max_body_bytes: settings.max_body_bytes,
        admin_api_key: settings.admin_api_key.as_deref().map(Into::into),
        stripe: Arc::new(crate::stripe::StripeWebhook::new(settings.stripe.clone())),
        normalizers: Default::default(),
        admin: crate::admin::AdminSettings::new(settings.mailer.templates_dir.clone(), settings.metrics_token.clone()),
    };
    let plugins = crate::engine::workers::start_plugins(&settings, store.clone()).await?;
    let state = AppState { normalizers: crate::normalizers::Normalizers::new(plugins.clone(), settings.ingest.clone()), ..state };
    let workers = if settings.api_only {
        tracing::info!("API_ONLY=true: no workers in this process; run `grito worker` to process and deliver events");
        None
    } else {
        Some(Workers::spawn(&settings, store.clone(), signals.clone(), plugins)?)
    };

    let listener = tokio::net::TcpListener::bind(settings.bind)
        .await
        .with_context(|| format!("cannot listen on BIND={}", settings.bind))?;
    tracing::info!(address = %listener.local_addr()?, "listening");

    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("HTTP server failed")?;

    if let Some(workers) = workers {
        workers.stop().await;
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The workers `grito serve` runs beside the HTTP server.
struct Workers {
    dispatcher: crate::dispatcher::DispatcherHandle,
    automation: crate::engine::workers::AutomationWorkers,
    stop_jobs: tokio::sync::watch::Sender<bool>,
    inactivity: tokio::task::JoinHandle<()>,
}

impl Workers {
    fn spawn(settings: &Settings, store: Arc<dyn store::Store>, signals: Arc<Signals>, plugins: crate::plugins::PluginHost) -> anyhow::Result<Self> {
        let dispatcher = crate::dispatcher::spawn(store.clone(), signals.clone(), settings.dispatcher.clone())?;
        let (stop_jobs, jobs_stopped) = tokio::sync::watch::channel(false);
        let inactivity =
            crate::jobs::spawn_inactivity_schedule(store.clone(), signals.clone(), settings.inactivity.clone(), jobs_stopped);
        let automation = crate::engine::workers::spawn(store, signals, Arc::new(plugins), settings)?;
        Ok(Self { dispatcher, automation, stop_jobs, inactivity })
    }

    /// Lets each worker finish what it has in hand, then stops it.
    async fn stop(self) {
        self.dispatcher.stop().await;
        self.automation.stop().await;
        let _ = self.stop_jobs.send(true);
        let _ = self.inactivity.await;
    }
}

/// The database for the first log line: the SQLite file as an absolute path,
/// or the PostgreSQL URL without its password.
pub fn describe_database(database: &DatabaseUrl) -> String {
    match database {
        DatabaseUrl::Sqlite(path) => format!("sqlite://{} (embedded)", absolute(path).display()),
        DatabaseUrl::Postgres(_) => database.describe(),
    }
}

fn absolute(path: &Path) -> std::path::PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
