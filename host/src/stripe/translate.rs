//! Translation of Stripe events into Grito event drafts.
//!
//! | Stripe event | Grito event | idempotency key |
//! |---|---|---|
//! | `checkout.session.completed`, `mode=subscription` | `plan.subscribed` | `stripe:plan.subscribed:{subscription}` |
//! | `checkout.session.completed` (or `.async_payment_succeeded`), `mode=payment`, paid | `payment.succeeded` | `stripe:payment.succeeded:{payment_intent or session}` |
//! | `checkout.session.async_payment_failed`, `mode=payment` | `payment.failed` | `stripe:payment.failed:{payment_intent or session}` |
//! | `invoice.payment_succeeded`, `invoice.paid` (amount paid above 0) | `payment.succeeded` | `stripe:payment.succeeded:{invoice}` |
//! | `invoice.payment_failed` | `payment.failed` | `stripe:payment.failed:{invoice}:{attempt_count}` |
//! | `customer.subscription.created`, active or trialing | `plan.subscribed` | `stripe:plan.subscribed:{subscription}` |
//! | `customer.subscription.updated`, `incomplete` → `active` | `plan.subscribed` | `stripe:plan.subscribed:{subscription}` |
//! | `customer.subscription.updated`, to `canceled` or `incomplete_expired` | `plan.canceled` | `stripe:plan.canceled:{subscription}` |
//! | `customer.subscription.updated`, anything else | `plan.updated` | `stripe:plan.updated:{event id}` |
//! | `customer.subscription.deleted` | `plan.canceled` | `stripe:plan.canceled:{subscription}` |
//!
//! Keys follow the Stripe object where one object arrives through several
//! event types, so Stripe's repeats and overlaps store one event. Both API
//! shapes are read: before 2025-03-31 (`invoice.subscription`,
//! `invoice.charge`, `subscription.current_period_end`) and after
//! (`invoice.parent.subscription_details`, `invoice.payments`,
//! `subscription.items.data[].current_period_end`).

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::api::ApiError;
use crate::store::EventDraft;

/// The `source` of every event Stripe produces.
pub const SOURCE: &str = "stripe";

/// The fields of a Stripe event envelope that translation reads.
#[derive(Debug, Clone)]
pub struct StripeEvent {
    pub id: String,
    pub event_type: String,
    pub created: DateTime<Utc>,
    pub livemode: bool,
    pub object: Map<String, Value>,
    /// `data.previous_attributes` of `*.updated` events.
    pub previous_attributes: Option<Map<String, Value>>,
}

impl StripeEvent {
    /// Reads an event envelope; 400 `invalid_stripe_event` when a field is missing.
    pub fn parse(body: &Value) -> Result<Self, ApiError> {
        let id = body
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty());
        let event_type = body
            .get("type")
            .and_then(Value::as_str)
            .filter(|kind| !kind.is_empty());
        let created = body
            .get("created")
            .and_then(Value::as_i64)
            .and_then(|seconds| DateTime::from_timestamp(seconds, 0));
        let object = body.pointer("/data/object").and_then(Value::as_object);
        let (Some(id), Some(event_type), Some(created), Some(object)) =
            (id, event_type, created, object)
        else {
            let missing: Vec<&str> = [
                ("id", id.is_none()),
                ("type", event_type.is_none()),
                ("created", created.is_none()),
                ("data.object", object.is_none()),
            ]
            .into_iter()
            .filter_map(|(field, absent)| absent.then_some(field))
            .collect();
            let list = missing.join(", ");
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_stripe_event",
                format!("the body is not a Stripe event: missing or invalid {list}"),
                format!("o corpo não é um evento da Stripe: ausente ou inválido {list}"),
            )
            .with_fields(missing));
        };
        Ok(Self {
            id: id.to_owned(),
            event_type: event_type.to_owned(),
            created,
            livemode: body
                .get("livemode")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            object: object.clone(),
            previous_attributes: body
                .pointer("/data/previous_attributes")
                .and_then(Value::as_object)
                .cloned(),
        })
    }
}

/// The Grito drafts of one Stripe event, and the identity it names.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    /// Zero or one draft today; a list so one Stripe event could yield more.
    pub drafts: Vec<EventDraft>,
    /// The reason nothing is stored, when `drafts` is empty.
    pub ignored: Option<String>,
    /// The Grito user named by the object (`client_reference_id` or
    /// `metadata.user_id`), when it is a UUID.
    pub user_id: Option<Uuid>,
    /// The Stripe customer id (`cus_…`), when the object has one.
    pub customer: Option<String>,
}

/// Translates one Stripe event.
pub fn translate(event: &StripeEvent) -> Translation {
    let object = &event.object;
    let customer = id_of(object.get("customer"));
    let user_id = user_id_of(event);

    let result = match event.event_type.as_str() {
        "checkout.session.completed" => checkout_completed(event),
        "checkout.session.async_payment_succeeded" => checkout_payment(event, true),
        "checkout.session.async_payment_failed" => checkout_payment(event, false),
        "invoice.payment_succeeded" | "invoice.paid" => invoice_paid(event),
        "invoice.payment_failed" => invoice_failed(event),
        "customer.subscription.created" => subscription_created(event),
        "customer.subscription.updated" => subscription_updated(event),
        "customer.subscription.deleted" => Ok(subscription_draft(
            event,
            "plan.canceled",
            Key::Subscription,
        )),
        other => Err(format!("Stripe event type {other} is not translated")),
    };
    match result {
        Ok(draft) => Translation {
            drafts: vec![draft],
            ignored: None,
            user_id,
            customer,
        },
        Err(reason) => Translation {
            drafts: Vec::new(),
            ignored: Some(reason),
            user_id,
            customer,
        },
    }
}

type Outcome = Result<EventDraft, String>;

fn checkout_completed(event: &StripeEvent) -> Outcome {
    let session = &event.object;
    match text(session, "mode") {
        Some("subscription") => {
            let Some(subscription) = id_of(session.get("subscription")) else {
                return Err("subscription checkout session has no subscription id".to_owned());
            };
            let mut payload = person(session);
            payload.insert("plan".into(), plan_from_metadata(session, None));
            payload.insert(
                "stripe".into(),
                stripe_ids(event, Some(&subscription), None),
            );
            Ok(draft(
                event,
                "plan.subscribed",
                format!("stripe:plan.subscribed:{subscription}"),
                payload,
            ))
        }
        Some("payment") => checkout_payment(event, true),
        other => Err(format!(
            "checkout session mode {} is not translated",
            other.unwrap_or("(none)")
        )),
    }
}

/// Translates a one-time payment made through Checkout. Card payments are `paid` on
/// completion; delayed methods (boleto) finish with an `async_payment_*` event.
fn checkout_payment(event: &StripeEvent, succeeded: bool) -> Outcome {
    let session = &event.object;
    if text(session, "mode") != Some("payment") {
        return Err("checkout session is not in payment mode".to_owned());
    }
    if succeeded && text(session, "payment_status") != Some("paid") {
        return Err(format!(
            "checkout session payment_status is {}, not paid",
            text(session, "payment_status").unwrap_or("(none)")
        ));
    }

    let payment_intent = id_of(session.get("payment_intent"));
    let anchor = payment_intent
        .clone()
        .unwrap_or_else(|| text(session, "id").unwrap_or(&event.id).to_owned());
    let method = session
        .get("payment_method_types")
        .and_then(Value::as_array)
        .filter(|types| types.len() == 1)
        .and_then(|types| types[0].as_str());
    let mut payload = person(session);
    payload.insert(
        "donation".into(),
        money(
            session.get("amount_total"),
            text(session, "currency"),
            method,
            payment_intent.as_deref(),
        ),
    );
    payload.insert("stripe".into(), stripe_ids(event, None, None));
    let name = if succeeded {
        "payment.succeeded"
    } else {
        "payment.failed"
    };
    Ok(draft(
        event,
        name,
        format!("stripe:{name}:{anchor}"),
        payload,
    ))
}

fn invoice_paid(event: &StripeEvent) -> Outcome {
    let invoice = &event.object;
    let invoice_id = text(invoice, "id").ok_or("invoice has no id")?;
    let paid = invoice
        .get("amount_paid")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if paid <= 0 {
        return Err(format!(
            "invoice {invoice_id} charged nothing (amount_paid is {paid})"
        ));
    }

    let mut payload = invoice_person(invoice);
    payload.insert(
        "donation".into(),
        money(
            invoice.get("amount_paid"),
            text(invoice, "currency"),
            None,
            invoice_transaction(invoice).as_deref(),
        ),
    );
    payload.insert(
        "stripe".into(),
        stripe_ids(
            event,
            invoice_subscription(invoice).as_deref(),
            Some(invoice_id),
        ),
    );
    Ok(draft(
        event,
        "payment.succeeded",
        format!("stripe:payment.succeeded:{invoice_id}"),
        payload,
    ))
}

fn invoice_failed(event: &StripeEvent) -> Outcome {
    let invoice = &event.object;
    let invoice_id = text(invoice, "id").ok_or("invoice has no id")?;
    let attempt = invoice.get("attempt_count").and_then(Value::as_i64);
    let key = match attempt {
        Some(attempt) => format!("stripe:payment.failed:{invoice_id}:{attempt}"),
        None => format!("stripe:payment.failed:{}", event.id),
    };

    let mut payload = invoice_person(invoice);
    payload.insert(
        "donation".into(),
        money(
            invoice.get("amount_due"),
            text(invoice, "currency"),
            None,
            invoice_transaction(invoice).as_deref(),
        ),
    );
    payload.insert("attempt_count".into(), json!(attempt));
    payload.insert(
        "next_payment_attempt".into(),
        json!(timestamp(invoice.get("next_payment_attempt"))),
    );
    payload.insert(
        "stripe".into(),
        stripe_ids(
            event,
            invoice_subscription(invoice).as_deref(),
            Some(invoice_id),
        ),
    );
    Ok(draft(event, "payment.failed", key, payload))
}

fn subscription_created(event: &StripeEvent) -> Outcome {
    match text(&event.object, "status") {
        Some("active" | "trialing") => Ok(subscription_draft(
            event,
            "plan.subscribed",
            Key::Subscription,
        )),
        other => Err(format!(
            "new subscription status is {}, not active or trialing",
            other.unwrap_or("(none)")
        )),
    }
}

fn subscription_updated(event: &StripeEvent) -> Outcome {
    let status = text(&event.object, "status");
    let previous = event
        .previous_attributes
        .as_ref()
        .and_then(|previous| text(previous, "status"));
    let changed = previous.is_some() && previous != status;

    // A subscription that started `incomplete` produced no plan.subscribed
    // when created; its first successful payment makes it active.
    let (name, key) = match (status, previous) {
        (Some("canceled" | "incomplete_expired"), _) if changed => {
            ("plan.canceled", Key::Subscription)
        }
        (Some("active"), Some("incomplete")) => ("plan.subscribed", Key::Subscription),
        _ => ("plan.updated", Key::Event),
    };
    Ok(subscription_draft(event, name, key))
}

enum Key {
    /// One event per subscription, whichever Stripe event brings it.
    Subscription,
    /// One event per Stripe event.
    Event,
}

fn subscription_draft(event: &StripeEvent, name: &str, key: Key) -> EventDraft {
    let subscription = &event.object;
    let subscription_id = text(subscription, "id").unwrap_or(&event.id);
    let key = match key {
        Key::Subscription => format!("stripe:{name}:{subscription_id}"),
        Key::Event => format!("stripe:{name}:{}", event.id),
    };

    let mut payload = Map::new();
    payload.insert("plan".into(), subscription_plan(subscription));
    if let Some(previous) = &event.previous_attributes {
        let changed: Vec<&String> = previous.keys().collect();
        payload.insert("changed".into(), json!(changed));
        if let Some(status) = text(previous, "status") {
            payload.insert("previous_status".into(), json!(status));
        }
    }
    payload.insert(
        "stripe".into(),
        stripe_ids(event, Some(subscription_id), None),
    );
    draft(event, name, key, payload)
}

/// `plan` from a subscription: its first item's price, its status and period.
fn subscription_plan(subscription: &Map<String, Value>) -> Value {
    let item = subscription.pointer_in("/items/data/0");
    let price = item
        .and_then(|item| item.get("price").or_else(|| item.get("plan")))
        .and_then(Value::as_object);
    // Before 2025-03-31 the period is on the subscription, after it on each item.
    let period_end = timestamp(subscription.get("current_period_end"))
        .or_else(|| timestamp(item.and_then(|item| item.get("current_period_end"))));
    let currency = price.and_then(|price| text(price, "currency"));

    let mut plan = plan_from_metadata(subscription, price)
        .as_object()
        .cloned()
        .unwrap_or_default();
    plan.insert("status".into(), json!(text(subscription, "status")));
    plan.insert(
        "product".into(),
        json!(price.and_then(|price| id_of(price.get("product")))),
    );
    plan.insert(
        "interval".into(),
        json!(
            price
                .and_then(|price| price.get("recurring").or_else(|| price.get("interval")))
                .and_then(|recurring| {
                    recurring
                        .as_str()
                        .or_else(|| recurring.get("interval").and_then(Value::as_str))
                })
        ),
    );
    let unit = price.and_then(|price| price.get("unit_amount").or_else(|| price.get("amount")));
    if let Some(cents) = unit.and_then(Value::as_i64) {
        plan.insert(
            "amount".into(),
            json!(major_units(cents, currency.unwrap_or("brl"))),
        );
        plan.insert("amount_cents".into(), json!(cents));
        plan.insert(
            "currency".into(),
            json!(currency.map(str::to_ascii_uppercase)),
        );
    }
    plan.insert("current_period_end".into(), json!(period_end));
    plan.insert(
        "cancel_at_period_end".into(),
        subscription
            .get("cancel_at_period_end")
            .cloned()
            .unwrap_or(Value::Null),
    );
    plan.insert(
        "canceled_at".into(),
        json!(timestamp(subscription.get("canceled_at"))),
    );
    Value::Object(plan)
}

/// `plan: {id, name}` from `metadata.plan_id` / `metadata.plan_name`,
/// else from the price's id and nickname; `status` unknown.
fn plan_from_metadata(object: &Map<String, Value>, price: Option<&Map<String, Value>>) -> Value {
    let metadata = object.get("metadata").and_then(Value::as_object);
    let from_metadata = |key: &str| metadata.and_then(|metadata| text(metadata, key));
    json!({
        "id": from_metadata("plan_id").or_else(|| price.and_then(|price| text(price, "id"))),
        "name": from_metadata("plan_name").or_else(|| price.and_then(|price| text(price, "nickname"))),
        "status": Value::Null,
    })
}

/// `email` and `name` from a checkout session.
fn person(session: &Map<String, Value>) -> Map<String, Value> {
    let details = session.get("customer_details").and_then(Value::as_object);
    let email = details
        .and_then(|details| text(details, "email"))
        .or_else(|| text(session, "customer_email"));
    let name = details.and_then(|details| text(details, "name"));
    let mut payload = Map::new();
    payload.insert("email".into(), json!(email));
    payload.insert("name".into(), json!(name));
    payload
}

fn invoice_person(invoice: &Map<String, Value>) -> Map<String, Value> {
    let mut payload = Map::new();
    payload.insert("email".into(), json!(text(invoice, "customer_email")));
    payload.insert("name".into(), json!(text(invoice, "customer_name")));
    payload
}

/// Returns the invoice's subscription: `subscription` before 2025-03-31,
/// `parent.subscription_details.subscription` after.
fn invoice_subscription(invoice: &Map<String, Value>) -> Option<String> {
    id_of(invoice.get("subscription"))
        .or_else(|| id_of(invoice.pointer_in("/parent/subscription_details/subscription")))
}

/// Returns the charge or payment intent that paid the invoice: `charge` or
/// `payment_intent` before 2025-03-31, the first `payments` entry after
/// (present only when the payload includes it).
fn invoice_transaction(invoice: &Map<String, Value>) -> Option<String> {
    id_of(invoice.get("charge"))
        .or_else(|| id_of(invoice.get("payment_intent")))
        .or_else(|| id_of(invoice.pointer_in("/payments/data/0/payment/payment_intent")))
        .or_else(|| id_of(invoice.pointer_in("/payments/data/0/payment/charge")))
}

/// Builds the `donation` object: `amount` in major units (49.9 for R$ 49,90),
/// `amount_cents` in Stripe's minor units, `currency` in upper case.
fn money(
    amount: Option<&Value>,
    currency: Option<&str>,
    method: Option<&str>,
    transaction: Option<&str>,
) -> Value {
    let cents = amount.and_then(Value::as_i64);
    json!({
        "amount": cents.map(|cents| major_units(cents, currency.unwrap_or("brl"))),
        "amount_cents": cents,
        "currency": currency.map(str::to_ascii_uppercase),
        "method": method,
        "tx_id": transaction,
    })
}

/// Converts Stripe's minor units to major units. Stripe's zero-decimal and
/// three-decimal currencies are listed in its "Supported currencies" page.
pub fn major_units(minor: i64, currency: &str) -> f64 {
    const ZERO_DECIMAL: [&str; 16] = [
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
        "xaf", "xof", "xpf",
    ];
    const THREE_DECIMAL: [&str; 5] = ["bhd", "jod", "kwd", "omr", "tnd"];
    let currency = currency.to_ascii_lowercase();
    let divisor = if ZERO_DECIMAL.contains(&currency.as_str()) {
        1.0
    } else if THREE_DECIMAL.contains(&currency.as_str()) {
        1000.0
    } else {
        100.0
    };
    minor as f64 / divisor
}

/// Collects the Stripe ids an operator or CRM needs to find the objects again.
fn stripe_ids(event: &StripeEvent, subscription: Option<&str>, invoice: Option<&str>) -> Value {
    let object = &event.object;
    let checkout_session = (text(object, "object") == Some("checkout.session"))
        .then(|| text(object, "id"))
        .flatten();
    let subscription = subscription
        .map(str::to_owned)
        .or_else(|| id_of(object.get("subscription")));
    let mut ids = Map::new();
    ids.insert("event_id".into(), json!(event.id));
    ids.insert("event_type".into(), json!(event.event_type));
    ids.insert("livemode".into(), json!(event.livemode));
    for (key, value) in [
        ("customer", id_of(object.get("customer"))),
        ("subscription", subscription),
        (
            "invoice",
            invoice
                .map(str::to_owned)
                .or_else(|| id_of(object.get("invoice"))),
        ),
        ("checkout_session", checkout_session.map(str::to_owned)),
        ("payment_intent", id_of(object.get("payment_intent"))),
    ] {
        if let Some(value) = value {
            ids.insert(key.into(), json!(value));
        }
    }
    Value::Object(ids)
}

fn draft(
    event: &StripeEvent,
    name: &str,
    idempotency_key: String,
    payload: Map<String, Value>,
) -> EventDraft {
    EventDraft {
        event_name: name.to_owned(),
        source: SOURCE.to_owned(),
        occurred_at: event.created,
        payload,
        idempotency_key,
    }
}

/// Finds the Grito user an object names: a checkout session's
/// `client_reference_id`, else `metadata.user_id` of the object, else (for
/// invoices) of the subscription snapshot in `subscription_details` or
/// `parent.subscription_details`. Values that are not UUIDs are ignored.
fn user_id_of(event: &StripeEvent) -> Option<Uuid> {
    let object = &event.object;
    [
        object.get("client_reference_id"),
        object.pointer_in("/metadata/user_id"),
        object.pointer_in("/subscription_details/metadata/user_id"),
        object.pointer_in("/parent/subscription_details/metadata/user_id"),
    ]
    .into_iter()
    .flatten()
    .filter_map(Value::as_str)
    .find_map(|text| {
        let parsed = Uuid::parse_str(text.trim()).ok();
        if parsed.is_none() {
            tracing::warn!(
                stripe_event_id = event.id,
                value = text,
                "Stripe user id is not a UUID; ignored"
            );
        }
        parsed
    })
}

/// Returns the id of an expandable field: the string itself, or the `id` of the
/// expanded object.
fn id_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(id) if !id.is_empty() => Some(id.clone()),
        Value::Object(object) => text(object, "id").map(str::to_owned),
        _ => None,
    }
}

fn text<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object
        .get(key)
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
}

/// Unix seconds as RFC 3339.
fn timestamp(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_i64)
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
        .map(|time| time.to_rfc3339())
}

trait PointerIn {
    fn pointer_in(&self, pointer: &str) -> Option<&Value>;
}

impl PointerIn for Map<String, Value> {
    /// JSON Pointer look-up on a map, like `Value::pointer`.
    fn pointer_in(&self, pointer: &str) -> Option<&Value> {
        let (first, rest) = pointer
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or((pointer.trim_start_matches('/'), ""));
        let value = self.get(first)?;
        if rest.is_empty() {
            Some(value)
        } else {
            value.pointer(&format!("/{rest}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_units_follow_currency_decimals() {
        assert_eq!(major_units(4990, "brl"), 49.9);
        assert_eq!(major_units(4990, "BRL"), 49.9);
        assert_eq!(major_units(500, "jpy"), 500.0);
        assert_eq!(major_units(5120, "kwd"), 5.12);
    }

    #[test]
    fn expandable_fields_yield_their_id() {
        assert_eq!(
            id_of(Some(&json!("cus_test_1"))),
            Some("cus_test_1".to_owned())
        );
        assert_eq!(
            id_of(Some(&json!({"id": "cus_test_2", "object": "customer"}))),
            Some("cus_test_2".to_owned())
        );
        assert_eq!(id_of(Some(&json!(null))), None);
        assert_eq!(id_of(Some(&json!(""))), None);
        assert_eq!(id_of(None), None);
    }
}
