//! `grito plugins list`, `grito plugins check FILE.wasm` and `grito plugins new NAME`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;

use super::{NoIdentities, PluginHost, PluginKind, PluginStatus};
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// List built-in plugins and the plugins folder's files, loaded or failed.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Load FILE.wasm with the checks the host applies and print what it is;
    /// exits with status 1 when it is not a usable Grito plugin.
    Check {
        /// The plugin component to check.
        file: PathBuf,
    },
    /// Write a new plugin crate, ready to build for wasm32-wasip2, into DIR/NAME.
    New {
        /// Plugin name: lowercase letters, digits and hyphens, starting with a letter.
        name: String,
        /// Which world the plugin implements.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// Folder in which the crate's folder is created.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

/// The `--kind` of `grito plugins new`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KindArg {
    Action,
    Condition,
    Normalizer,
}

impl From<KindArg> for PluginKind {
    fn from(kind: KindArg) -> Self {
        match kind {
            KindArg::Action => PluginKind::Action,
            KindArg::Condition => PluginKind::Condition,
            KindArg::Normalizer => PluginKind::Normalizer,
        }
    }
}

pub async fn run(command: PluginsCommand, settings: &Settings) -> anyhow::Result<()> {
    if let PluginsCommand::New { name, kind, dir } = &command {
        let created = super::new::create(name, (*kind).into(), dir)?;
        println!("created {} plugin `{name}` in {}", PluginKind::from(*kind), created.display());
        println!("next: cd {} && cargo test && cargo build --release --target wasm32-wasip2", created.display());
        return Ok(());
    }
    let host = PluginHost::open(settings.plugins.clone(), Arc::new(NoIdentities)).await?;
    match command {
        PluginsCommand::List { json } => {
            let statuses = host.list();
            if json {
                println!("{}", serde_json::to_string_pretty(&statuses)?);
            } else {
                print!("{}", table(&statuses));
            }
            Ok(())
        }
        PluginsCommand::New { .. } => unreachable!("handled before the host opens"),
        PluginsCommand::Check { file } => {
            let info = host
                .check_file(&file)
                .await
                .map_err(|error| anyhow::anyhow!("{} is not a usable Grito plugin: {error:#}", file.display()))?;
            println!("file:         {}", file.display());
            println!("name:         {}", info.name);
            println!("version:      {}", info.version);
            println!("kind:         {}", info.kind);
            println!("action types: {}", if info.action_types.is_empty() { "-".to_owned() } else { info.action_types.join(", ") });
            Ok(())
        }
    }
}

fn table(statuses: &[PluginStatus]) -> String {
    let rows: Vec<[String; 7]> = statuses
        .iter()
        .map(|status| {
            let info = status.info.as_ref();
            [
                info.map(|info| info.name.clone()).unwrap_or_else(|| "-".into()),
                info.map(|info| info.version.clone()).unwrap_or_else(|| "-".into()),
                info.map(|info| info.kind.to_string()).unwrap_or_else(|| "-".into()),
                info.map(|info| info.action_types.join(",")).filter(|types| !types.is_empty()).unwrap_or_else(|| "-".into()),
                status.state.to_owned(),
                status.file.clone(),
                status.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["NAME", "VERSION", "KIND", "ACTION TYPES", "STATE", "FILE", "ERROR"].map(String::from);
    let mut widths = header.clone().map(|title| title.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
