//! `grito seed`: the brief's example rows, the `CRM-Doadores` subscription and
//! the `Boas-vindas` automation.

use serde_json::json;

use crate::store::{NewAutomation, NewSubscription, SeedOutcome, Store};

pub const SUBSCRIPTION_NAME: &str = "CRM-Doadores";
pub const SUBSCRIPTION_URL: &str = "https://meu-crm.org/webhooks/grito";
pub const AUTOMATION_NAME: &str = "Boas-vindas";

/// The brief's subscription, pointed at `endpoint_url` and signed with `secret`.
pub fn subscription(endpoint_url: &str, secret: &str) -> NewSubscription {
    NewSubscription {
        destination_name: SUBSCRIPTION_NAME.to_owned(),
        endpoint_url: endpoint_url.to_owned(),
        secret: secret.to_owned(),
        enabled: true,
        event_filter: ["user.signed_up", "donation.created", "plan.subscribed", "payment.failed"]
            .map(str::to_owned)
            .to_vec(),
    }
}

/// The brief's welcome automation: an email with template `welcome_01`.
pub fn automation() -> NewAutomation {
    NewAutomation {
        name: AUTOMATION_NAME.to_owned(),
        is_active: true,
        match_event: "user.signed_up".to_owned(),
        condition_sql: None,
        action: json!({
            "type": "email",
            "template_id": "welcome_01",
            "to": "{{payload.email}}",
            "variables": {"nome": "{{payload.name}}"}
        }),
    }
}

/// Writes both rows unless rows with their names already exist.
pub async fn run(store: &dyn Store, endpoint_url: &str, secret: &str) -> anyhow::Result<SeedOutcome> {
    store.seed(subscription(endpoint_url, secret), automation()).await
}

/// A random 32-byte secret, hex encoded, for subscriptions created without one.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    hex::encode(bytes)
}
