//! Grito's condition-sql plugin: evaluates an automation's `condition_sql`
//! text over an event with the meaning PostgreSQL 15 gives to
//!
//! ```sql
//! SELECT EXISTS (SELECT 1 FROM (SELECT $1::text AS event_name, $2::uuid AS user_id,
//!     $3::text AS source, $4::timestamptz AS occurred_at, $5::jsonb AS payload) e
//!   WHERE <condition>)
//! ```
//!
//! in a session with `TimeZone` UTC and a database collation that orders
//! text by code point (`C` or glibc's `C.UTF-8`). The condition never runs
//! in a database, so the same text works with SQLite.
//!
//! The parser and evaluator are plain Rust; the WIT export for the
//! `condition` world is compiled only for wasm32.

mod analyze;
mod datetime;
mod error;
mod eval;
mod jsonb;
mod lexer;
mod numeric;
mod parser;
mod value;

#[cfg(target_arch = "wasm32")]
mod wasm;

use std::rc::Rc;

pub use error::{Error, ErrorKind};
pub use lexer::MAX_CONDITION_BYTES;
pub use parser::MAX_DEPTH;

use analyze::{Analyzer, Ir};
use eval::{Evaluator, Row};
use value::Value;

/// An event as the host hands it over, with text fields as in the WIT
/// `event` record.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub event_name: &'a str,
    /// A UUID in any form PostgreSQL's `uuid` input accepts.
    pub user_id: &'a str,
    pub source: &'a str,
    /// A timestamp with time zone, normally RFC 3339.
    pub occurred_at: &'a str,
    /// The payload as JSON text.
    pub payload: &'a str,
}

/// A parsed and type-checked condition.
#[derive(Debug, Clone)]
pub struct Condition {
    ir: Ir,
}

impl Condition {
    /// Parses and type-checks condition text. `now_micros` (microseconds
    /// since the Unix epoch) resolves constants such as `'today'::date`,
    /// which PostgreSQL also resolves before running a query.
    pub fn compile(text: &str, now_micros: i64) -> Result<Condition, Error> {
        let node = parser::parse(text)?;
        let ir = Analyzer::new(now_micros).condition(&node)?;
        Ok(Condition { ir })
    }

    /// Evaluates the condition against an event. Returns true only when the
    /// condition is TRUE; FALSE and NULL both return false.
    pub fn evaluate(&self, event: &Event<'_>, now_micros: i64) -> Result<bool, Error> {
        let row = row_from_event(event, now_micros)?;
        Evaluator { row: &row, now: now_micros }.matches(&self.ir)
    }
}

/// Checks condition text without an event: syntax, names and types.
pub fn check(condition: &str, now_micros: i64) -> Result<(), Error> {
    Condition::compile(condition, now_micros).map(|_| ())
}

/// Parses, checks and evaluates a condition against an event at the time
/// `now_micros`, which `now()` returns.
pub fn evaluate(event: &Event<'_>, condition: &str, now_micros: i64) -> Result<bool, Error> {
    Condition::compile(condition, now_micros)?.evaluate(event, now_micros)
}

fn row_from_event(event: &Event<'_>, now: i64) -> Result<Row, Error> {
    let invalid = |field: &str, message: String| Error {
        kind: ErrorKind::InvalidEvent,
        message: format!("event field {field} is invalid: {message}"),
        token: None,
    };
    let user_id = Value::input(value::Ty::Uuid, event.user_id, now).map_err(|m| invalid("user_id", m))?;
    let occurred_at = Value::input(value::Ty::Timestamptz, event.occurred_at, now).map_err(|m| invalid("occurred_at", m))?;
    let payload = jsonb::Json::parse(event.payload).map_err(|m| invalid("payload", m))?;
    Ok(Row {
        event_name: Value::text(event.event_name),
        user_id,
        source: Value::text(event.source),
        occurred_at,
        payload: Value::Jsonb(Rc::new(payload)),
    })
}
