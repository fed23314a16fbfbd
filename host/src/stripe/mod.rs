//! `POST /webhooks/stripe`: verifies the `Stripe-Signature` header against
//! the raw body, translates the Stripe event into Grito events, and stores
//! each through the same path as `POST /events`, or parks it while its user
//! is unknown.
//!
//! Settings: `STRIPE_WEBHOOK_SECRET` (one endpoint secret, or several
//! separated by commas while rotating) and `STRIPE_TOLERANCE` (how far the
//! signed timestamp may be from the server clock, default `300s`). Without a
//! secret the route returns 503 `stripe_not_configured` and stores nothing.

pub mod signature;
pub mod translate;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;

use crate::api::{ApiError, AppState, parse_json, read_body};
use crate::config::{Source, parse_duration};
use crate::dispatcher::{Clock, SystemClock};
use crate::inbound::{self, DraftOutcome, ExternalIdentity};

pub use translate::{SOURCE, StripeEvent, Translation, translate};

/// The identity map's `source` for Stripe customer ids.
pub const IDENTITY_SOURCE: &str = "stripe";
/// The request header Stripe signs with.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// `STRIPE_WEBHOOK_SECRET` and `STRIPE_TOLERANCE`.
#[derive(Clone, PartialEq, Eq)]
pub struct StripeSettings {
    /// Endpoint secrets (`whsec_…`); empty when Stripe is not configured.
    pub secrets: Vec<String>,
    pub tolerance: Duration,
}

impl std::fmt::Debug for StripeSettings {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("StripeSettings")
            .field(
                "secrets",
                &format_args!("{} configured", self.secrets.len()),
            )
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl StripeSettings {
    pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

    pub fn from_source(source: &Source) -> anyhow::Result<Self> {
        let secrets = source
            .get("STRIPE_WEBHOOK_SECRET")
            .map(|text| {
                text.split(',')
                    .map(str::trim)
                    .filter(|secret| !secret.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let tolerance = match source.get("STRIPE_TOLERANCE") {
            None => Self::DEFAULT_TOLERANCE,
            Some(text) => parse_duration(&text)
                .map_err(|error| anyhow::anyhow!("invalid STRIPE_TOLERANCE `{text}`: {error}"))?,
        };
        Ok(Self { secrets, tolerance })
    }
}

/// The Stripe route's settings and the clock for its timestamp check,
/// injectable for tests.
#[derive(Clone)]
pub struct StripeWebhook {
    pub settings: StripeSettings,
    pub clock: Arc<dyn Clock>,
}

impl StripeWebhook {
    pub fn new(settings: StripeSettings) -> Self {
        Self {
            settings,
            clock: Arc::new(SystemClock),
        }
    }

    /// Builds a webhook with no secret, so every request gets `stripe_not_configured`.
    pub fn disabled() -> Self {
        Self::new(StripeSettings {
            secrets: Vec::new(),
            tolerance: StripeSettings::DEFAULT_TOLERANCE,
        })
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

/// The response body sent to Stripe. Any 2xx stops Stripe's retries, so parked and
/// ignored events are 200 too.
#[derive(Debug, Serialize)]
pub struct Received {
    pub ok: bool,
    pub stripe_event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub events: Vec<DraftOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
}

/// Verifies, translates and stores one Stripe event. Checks run in order:
/// configuration, body size, signature, JSON, event shape; nothing is
/// written unless all pass.
pub async fn post_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Received>, ApiError> {
    let webhook = &state.stripe;
    if webhook.settings.secrets.is_empty() {
        return Err(not_configured());
    }
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    if let Err(error) = verify(webhook, &headers, &bytes) {
        tracing::warn!(error = error.code(), "Stripe webhook rejected");
        return Err(error.into());
    }
    let event = StripeEvent::parse(&parse_json(&bytes)?)?;

    let translation = translate(&event);
    let received = store_translation(&state, &event, translation)
        .await
        .map_err(|error| ApiError::from_store(&error))?;
    Ok(Json(received))
}

/// Learns the customer's user when the object names both, then stores or
/// parks each draft.
async fn store_translation(
    state: &AppState,
    event: &StripeEvent,
    translation: Translation,
) -> anyhow::Result<Received> {
    let store = state.store.as_ref();
    if let (Some(user_id), Some(customer)) = (translation.user_id, &translation.customer) {
        inbound::set_identity(
            store,
            &state.signals,
            IDENTITY_SOURCE,
            customer,
            user_id,
            false,
        )
        .await?;
    }

    if let Some(reason) = &translation.ignored {
        tracing::info!(
            stripe_event_id = event.id,
            stripe_event_type = event.event_type,
            reason,
            "Stripe event ignored"
        );
    }
    let identity = ExternalIdentity {
        source: IDENTITY_SOURCE.to_owned(),
        external_id: translation.customer.clone(),
    };
    let mut events = Vec::new();
    for draft in translation.drafts {
        events.push(
            inbound::store_or_park(store, &state.signals, draft, translation.user_id, &identity)
                .await?,
        );
    }

    Ok(Received {
        ok: true,
        stripe_event_id: event.id.clone(),
        event_type: event.event_type.clone(),
        events,
        ignored: translation.ignored,
    })
}

fn verify(
    webhook: &StripeWebhook,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<i64, signature::SignatureError> {
    let header = match headers.get(SIGNATURE_HEADER) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| signature::SignatureError::Malformed("not ASCII text"))?,
        ),
    };
    let settings = &webhook.settings;
    signature::verify(
        header,
        body,
        &settings.secrets,
        settings.tolerance,
        webhook.clock.now(),
    )
}

fn not_configured() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "stripe_not_configured",
        "Stripe webhooks are disabled because STRIPE_WEBHOOK_SECRET is not set; set it to the endpoint's signing \
         secret (whsec_…) from the Stripe dashboard",
        "os webhooks da Stripe estão desativados porque STRIPE_WEBHOOK_SECRET não está definida; defina-a com o \
         segredo de assinatura do endpoint (whsec_…) do painel da Stripe",
    )
}
