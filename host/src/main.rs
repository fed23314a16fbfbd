//! The `grito` command: the server, its workers and the operator's tools.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use grito::config::{LogFormat, Settings, Source};
use grito::{seed, server, store};

#[derive(Parser)]
#[command(name = "grito", version, about = "Event store, Wasm automations and signed webhooks")]
struct Cli {
    /// Optional TOML file with settings (same names as the environment
    /// variables); the environment wins over it.
    #[arg(long, global = true, env = "GRITO_CONFIG")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server and the workers.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Run the workers (automation engine, mailer, webhook dispatcher) without the HTTP server.
    Worker,
    /// Add, list, change and delete webhook subscriptions.
    Subscriptions {
        #[command(subcommand)]
        command: grito::cli::subscriptions::SubscriptionsCommand,
    },
    /// List and show stored events, and deliver one again.
    Events {
        #[command(subcommand)]
        command: grito::cli::events::EventsCommand,
    },
    /// Compute or check a webhook signature over a body.
    Signature {
        #[command(subcommand)]
        command: grito::cli::signature::SignatureCommand,
    },
    /// List, show and reprocess webhook deliveries.
    Deliveries {
        #[command(subcommand)]
        command: grito::dispatcher::cli::DeliveriesCommand,
    },
    /// Add, list, preview, show, activate, deactivate and delete automations.
    Automations {
        #[command(subcommand)]
        command: grito::engine::cli::AutomationsCommand,
    },
    /// List plugins, or check a plugin file.
    Plugins {
        #[command(subcommand)]
        command: grito::plugins::cli::PluginsCommand,
    },
    /// Run a scheduled job now.
    Jobs {
        #[command(subcommand)]
        command: grito::jobs::cli::JobsCommand,
    },
    /// Map external ids (a Stripe customer, a device badge) to users.
    Identities {
        #[command(subcommand)]
        command: grito::inbound::cli::IdentitiesCommand,
    },
    /// List and publish inbound events parked while their user was unknown.
    Inbound {
        #[command(subcommand)]
        command: grito::inbound::cli::InboundCommand,
    },
    /// Load the example subscription (CRM-Doadores) and automation (Boas-vindas); running it twice adds nothing.
    Seed {
        /// Endpoint URL of the CRM-Doadores subscription.
        #[arg(long, default_value = seed::SUBSCRIPTION_URL)]
        endpoint_url: String,
        /// Signing secret of the subscription; a random one is generated and printed when omitted.
        #[arg(long, env = "SEED_SECRET", hide_env_values = true)]
        secret: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Source::load(cli.config.as_deref()).and_then(|source| Settings::from_source(&source)) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("grito: {error:#}");
            return ExitCode::from(2);
        }
    };
    init_logging(settings.log_format);

    // Long-running commands report a fatal error in their log, where an
    // operator looks; one-shot commands print it once for the person at the prompt.
    let long_running = matches!(cli.command, Command::Serve | Command::Worker);
    let runtime = tokio::runtime::Runtime::new().expect("the Tokio runtime starts");
    match runtime.block_on(run(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if long_running => {
            tracing::error!(error = format!("{error:#}"), "grito failed");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("grito: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => server::serve(settings).await,
        Command::Migrate => {
            tracing::info!(database = server::describe_database(&settings.database), "migrating");
            let store = store::connect(&settings.database).await?;
            store.close().await;
            println!("migrations applied to {}", server::describe_database(&settings.database));
            Ok(())
        }
        Command::Worker => grito::dispatcher::cli::worker(settings).await,
        Command::Subscriptions { command } => grito::cli::subscriptions::run(command, &settings).await,
        Command::Events { command } => grito::cli::events::run(command, &settings).await,
        Command::Signature { command } => grito::cli::signature::run(command),
        Command::Deliveries { command } => grito::dispatcher::cli::run(command, &settings).await,
        Command::Automations { command } => grito::engine::cli::run(command, &settings).await,
        Command::Plugins { command } => grito::plugins::cli::run(command, &settings).await,
        Command::Jobs { command } => grito::jobs::cli::run(command, &settings).await,
        Command::Identities { command } => grito::inbound::cli::run_identities(command, &settings).await,
        Command::Inbound { command } => grito::inbound::cli::run_inbound(command, &settings).await,
        Command::Seed { endpoint_url, secret } => {
            let store = store::connect(&settings.database).await?;
            let generated = secret.is_none();
            let secret = secret.unwrap_or_else(seed::random_secret);
            let outcome = seed::run(store.as_ref(), &endpoint_url, &secret).await?;
            store.close().await;
            if outcome.subscription_created {
                println!("created subscription {} -> {endpoint_url}", seed::SUBSCRIPTION_NAME);
                if generated {
                    println!("its signing secret (shown once; give it to the receiver): {secret}");
                }
            } else {
                println!("subscription {} already exists; left unchanged", seed::SUBSCRIPTION_NAME);
            }
            if outcome.automation_created {
                println!("created automation {}", seed::AUTOMATION_NAME);
            } else {
                println!("automation {} already exists; left unchanged", seed::AUTOMATION_NAME);
            }
            Ok(())
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colours);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}
