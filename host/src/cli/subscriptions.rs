//! `grito subscriptions`: list, show, add, enable, disable, set-events,
//! set-url, rotate-secret, delete. Secrets are printed only by `add` (when
//! generated) and `rotate-secret`, once.

use clap::Subcommand;
use uuid::Uuid;

use super::{print_json, time_or_dash};
use crate::admin::{SubscriptionView, field_problems, name_taken, rotate};
use crate::config::Settings;
use crate::store::{self, NewSubscription, Store, Subscription, SubscriptionChanges, SubscriptionDeletion};

/// The `grito subscriptions` subcommands.
#[derive(Debug, Subcommand)]
pub enum SubscriptionsCommand {
    /// List every webhook subscription (secrets are never shown).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one subscription (its secret is never shown).
    Show {
        /// Subscription id or destination_name.
        subscription: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Add a subscription. Prints a generated signing secret once when
    /// --secret is omitted.
    Add {
        /// destination_name: a unique display name, for example CRM-Doadores.
        #[arg(long)]
        name: String,
        /// endpoint_url: the http or https URL that receives the webhooks.
        #[arg(long)]
        url: String,
        /// event_filter: comma-separated event names to deliver, for example
        /// user.signed_up,payment.failed.
        #[arg(long, value_delimiter = ',', required = true)]
        events: Vec<String>,
        /// Signing secret (at least 16 characters); a random one is generated
        /// and printed once when omitted.
        #[arg(long)]
        secret: Option<String>,
        /// Store it disabled (enabled = false): no deliveries until `enable`.
        #[arg(long)]
        disabled: bool,
    },
    /// Enable a subscription: new matching events are delivered to it again.
    Enable {
        /// Subscription id or destination_name.
        subscription: String,
    },
    /// Disable a subscription: no new deliveries, its history is kept.
    Disable {
        /// Subscription id or destination_name.
        subscription: String,
    },
    /// Replace a subscription's event_filter.
    SetEvents {
        /// Subscription id or destination_name.
        subscription: String,
        /// Comma-separated event names, for example user.signed_up,payment.failed.
        #[arg(value_delimiter = ',', required = true)]
        events: Vec<String>,
    },
    /// Replace a subscription's endpoint_url.
    SetUrl {
        /// Subscription id or destination_name.
        subscription: String,
        /// The new http or https URL.
        url: String,
    },
    /// Give a subscription a new random signing secret and print it once;
    /// the old one stops working at once.
    RotateSecret {
        /// Subscription id or destination_name.
        subscription: String,
    },
    /// Delete a subscription. Refused while deliveries reference it, unless
    /// --force.
    Delete {
        /// Subscription id or destination_name.
        subscription: String,
        /// Also delete its deliveries and their attempts.
        #[arg(long)]
        force: bool,
    },
}

/// Runs a `grito subscriptions` subcommand against the configured database.
pub async fn run(command: SubscriptionsCommand, settings: &Settings) -> anyhow::Result<()> {
    let store = store::connect(&settings.database).await?;
    let result = run_with(store.as_ref(), command).await;
    store.close().await;
    result
}

async fn run_with(store: &dyn Store, command: SubscriptionsCommand) -> anyhow::Result<()> {
    match command {
        SubscriptionsCommand::List { json } => list(store, json).await,
        SubscriptionsCommand::Show { subscription, json } => {
            let subscription = find(store, &subscription).await?;
            if json {
                return print_json(&SubscriptionView::from(subscription));
            }
            print_detail(&subscription);
            Ok(())
        }
        SubscriptionsCommand::Add { name, url, events, secret, disabled } => add(store, name, url, events, secret, !disabled).await,
        SubscriptionsCommand::Enable { subscription } => set_enabled(store, &subscription, true).await,
        SubscriptionsCommand::Disable { subscription } => set_enabled(store, &subscription, false).await,
        SubscriptionsCommand::SetEvents { subscription, events } => {
            check(None, None, Some(&events))?;
            let changes = SubscriptionChanges { event_filter: Some(events), ..Default::default() };
            let updated = update(store, &subscription, changes).await?;
            tracing::info!(subscription_id = %updated.id, event_filter = ?updated.event_filter, "subscription events set from the command line");
            println!("subscription {} now receives {}", updated.destination_name, updated.event_filter.join(","));
            Ok(())
        }
        SubscriptionsCommand::SetUrl { subscription, url } => {
            check(None, Some(&url), None)?;
            let changes = SubscriptionChanges { endpoint_url: Some(url), ..Default::default() };
            let updated = update(store, &subscription, changes).await?;
            tracing::info!(subscription_id = %updated.id, "subscription endpoint set from the command line");
            println!("subscription {} now delivers to {}", updated.destination_name, updated.endpoint_url);
            Ok(())
        }
        SubscriptionsCommand::RotateSecret { subscription } => {
            let id = find(store, &subscription).await?.id;
            let Some((subscription, secret)) = rotate(store, id).await? else {
                return Err(not_found(&subscription));
            };
            tracing::info!(subscription_id = %id, "subscription secret rotated from the command line");
            println!("new signing secret of {} (shown once; give it to the receiver, the old one no longer signs):", subscription.destination_name);
            println!("{secret}");
            Ok(())
        }
        SubscriptionsCommand::Delete { subscription, force } => delete(store, &subscription, force).await,
    }
}

async fn list(store: &dyn Store, json: bool) -> anyhow::Result<()> {
    let subscriptions = store.list_subscriptions().await?;
    if json {
        let views: Vec<SubscriptionView> = subscriptions.into_iter().map(Into::into).collect();
        return print_json(&views);
    }
    if subscriptions.is_empty() {
        println!("no subscriptions; add one with `grito subscriptions add`");
        return Ok(());
    }
    println!("{:<36}  {:<8}  {:<24}  {:<40}  URL", "ID", "STATE", "NAME", "EVENTS");
    for subscription in subscriptions {
        println!(
            "{:<36}  {:<8}  {:<24}  {:<40}  {}",
            subscription.id,
            state(&subscription),
            subscription.destination_name,
            subscription.event_filter.join(","),
            subscription.endpoint_url
        );
    }
    Ok(())
}

fn print_detail(subscription: &Subscription) {
    println!("subscription  {}", subscription.id);
    println!("name          {}", subscription.destination_name);
    println!("state         {}", state(subscription));
    println!("url           {}", subscription.endpoint_url);
    println!("events        {}", subscription.event_filter.join(","));
    println!("created at    {}", time_or_dash(subscription.created_at));
}

async fn add(store: &dyn Store, name: String, url: String, events: Vec<String>, secret: Option<String>, enabled: bool) -> anyhow::Result<()> {
    let problems = field_problems(Some(&name), Some(&url), Some(&events), secret.as_deref());
    report(problems)?;
    if name_taken(store, &name, None).await? {
        anyhow::bail!(
            "a subscription named `{name}` already exists; choose another --name, or change that one with \
             `grito subscriptions set-url|set-events {name} …`"
        );
    }

    let generated = secret.is_none();
    let secret = secret.unwrap_or_else(crate::seed::random_secret);
    let subscription = store
        .create_subscription(NewSubscription { destination_name: name, endpoint_url: url, secret: secret.clone(), enabled, event_filter: events })
        .await?;
    tracing::info!(subscription_id = %subscription.id, destination = subscription.destination_name, "subscription created from the command line");
    println!(
        "added subscription {} ({}) -> {} for {}",
        subscription.destination_name,
        subscription.id,
        subscription.endpoint_url,
        subscription.event_filter.join(",")
    );
    if generated {
        println!("its signing secret (shown once; give it to the receiver):");
        println!("{secret}");
    }
    Ok(())
}

async fn set_enabled(store: &dyn Store, subscription: &str, enabled: bool) -> anyhow::Result<()> {
    let changes = SubscriptionChanges { enabled: Some(enabled), ..Default::default() };
    let updated = update(store, subscription, changes).await?;
    tracing::info!(subscription_id = %updated.id, enabled, "subscription updated from the command line");
    println!("subscription {} is {}", updated.destination_name, state(&updated));
    Ok(())
}

async fn update(store: &dyn Store, subscription: &str, changes: SubscriptionChanges) -> anyhow::Result<Subscription> {
    let id = find(store, subscription).await?.id;
    store.update_subscription(id, changes).await?.ok_or_else(|| not_found(subscription))
}

async fn delete(store: &dyn Store, subscription: &str, force: bool) -> anyhow::Result<()> {
    let found = find(store, subscription).await?;
    match store.delete_subscription(found.id, force).await? {
        SubscriptionDeletion::Deleted { deliveries } => {
            tracing::info!(subscription_id = %found.id, deleted_deliveries = deliveries, "subscription deleted from the command line");
            println!("deleted subscription {} ({}) and {deliveries} of its deliveries", found.destination_name, found.id);
            Ok(())
        }
        SubscriptionDeletion::HasDeliveries(count) => anyhow::bail!(
            "subscription {} has {count} deliveries, so it was not deleted; run `grito subscriptions disable {}` to \
             stop it and keep them, or repeat with --force to delete them too",
            found.destination_name,
            found.destination_name
        ),
        SubscriptionDeletion::NotFound => Err(not_found(subscription)),
    }
}

/// Finds a subscription by id, then by destination_name.
async fn find(store: &dyn Store, id_or_name: &str) -> anyhow::Result<Subscription> {
    let by_id = match Uuid::parse_str(id_or_name) {
        Ok(id) => store.get_subscription(id).await?,
        Err(_) => None,
    };
    let found = match by_id {
        Some(subscription) => Some(subscription),
        None => store.find_subscription_by_destination(id_or_name).await?,
    };
    found.ok_or_else(|| not_found(id_or_name))
}

fn check(name: Option<&str>, url: Option<&str>, events: Option<&[String]>) -> anyhow::Result<()> {
    report(field_problems(name, url, events, None))
}

/// Fails with every problem, one per line, named by its option.
fn report(problems: Vec<(String, String)>) -> anyhow::Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = problems.iter().map(|(field, message)| format!("  {} ({field}) {message}", option_of(field))).collect();
    anyhow::bail!("invalid subscription, nothing was changed; fix these and run the command again:\n{}", lines.join("\n"))
}

fn option_of(field: &str) -> &'static str {
    match field {
        "destination_name" => "--name",
        "endpoint_url" => "--url",
        "event_filter" => "--events",
        "secret" => "--secret",
        _ => "value",
    }
}

fn not_found(id_or_name: &str) -> anyhow::Error {
    anyhow::anyhow!("subscription `{id_or_name}` not found; `grito subscriptions list` shows ids and names")
}

fn state(subscription: &Subscription) -> &'static str {
    if subscription.enabled { "enabled" } else { "disabled" }
}
