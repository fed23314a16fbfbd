//! `grito plugins list` and `grito plugins check FILE.wasm`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;

use super::{NoIdentities, PluginHost, PluginStatus};
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
}

pub async fn run(command: PluginsCommand, settings: &Settings) -> anyhow::Result<()> {
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
