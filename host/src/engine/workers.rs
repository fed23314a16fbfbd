//! Starting and stopping the automation engine and the mailer beside the
//! HTTP server (`grito serve`) or without it (`grito worker`).

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Engine, Plugins};
use crate::config::Settings;
use crate::mailer::{Mailer, Templates};
use crate::plugins::PluginHost;
use crate::signals::Signals;
use crate::store::Store;

/// The running engine and mailer tasks.
pub struct AutomationWorkers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl AutomationWorkers {
    /// Asks both workers to stop and waits until they have. A pass in
    /// progress finishes first, so no run is left half written.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts the plugin host (loading the built-in plugins and watching
/// `PLUGINS_DIR`), for the engine and for checks of saved automations.
/// Plugins look identities up in the store's identity map.
pub async fn start_plugins(settings: &Settings, store: Arc<dyn Store>) -> anyhow::Result<PluginHost> {
    let identities = Arc::new(crate::normalizers::StoreIdentities::new(store));
    PluginHost::start(settings.plugins.clone(), identities).await
}

/// Spawns the automation engine and the mailer.
pub fn spawn(
    store: Arc<dyn Store>,
    signals: Arc<Signals>,
    plugins: Arc<dyn Plugins>,
    settings: &Settings,
) -> anyhow::Result<AutomationWorkers> {
    let (stop, stopped) = watch::channel(false);
    let templates = Templates::new(settings.mailer.templates_dir.clone());
    let mailer = Mailer::new(store.clone(), settings.mailer.clone())?;
    let engine = Engine::new(store, plugins, templates, signals.clone(), settings.engine.clone());

    let tasks = vec![
        tokio::spawn(engine.run(stopped.clone())),
        tokio::spawn(mailer.run(signals, stopped)),
    ];
    Ok(AutomationWorkers { stop, tasks })
}
