//! SQL types and values with PostgreSQL's text input and output functions
//! and explicit casts.

use std::cmp::Ordering;
use std::rc::Rc;

use crate::datetime::{self, Interval};
use crate::jsonb::{Json, compare_text};
use crate::numeric::Numeric;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// The type of a string constant or NULL before context resolves it.
    Unknown,
    Bool,
    Int4,
    Int8,
    Numeric,
    Text,
    Jsonb,
    Uuid,
    Date,
    Timestamp,
    Timestamptz,
    Interval,
    TextArray,
}

/// PostgreSQL's type categories (`pg_type.typcategory`), used to find the
/// common type of `COALESCE` and `IN` arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    String,
    Numeric,
    Boolean,
    DateTime,
    Timespan,
    User,
    Array,
    Unknown,
}

impl Ty {
    /// The name PostgreSQL uses in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Ty::Unknown => "unknown",
            Ty::Bool => "boolean",
            Ty::Int4 => "integer",
            Ty::Int8 => "bigint",
            Ty::Numeric => "numeric",
            Ty::Text => "text",
            Ty::Jsonb => "jsonb",
            Ty::Uuid => "uuid",
            Ty::Date => "date",
            Ty::Timestamp => "timestamp without time zone",
            Ty::Timestamptz => "timestamp with time zone",
            Ty::Interval => "interval",
            Ty::TextArray => "text[]",
        }
    }

    pub fn category(self) -> Category {
        match self {
            Ty::Unknown => Category::Unknown,
            Ty::Text => Category::String,
            Ty::Int4 | Ty::Int8 | Ty::Numeric => Category::Numeric,
            Ty::Bool => Category::Boolean,
            Ty::Date | Ty::Timestamp | Ty::Timestamptz => Category::DateTime,
            Ty::Interval => Category::Timespan,
            Ty::Jsonb | Ty::Uuid => Category::User,
            Ty::TextArray => Category::Array,
        }
    }

    /// Whether this is the preferred type of its category (`typispreferred`).
    pub fn is_preferred(self) -> bool {
        matches!(self, Ty::Text | Ty::Bool | Ty::Timestamptz | Ty::Interval)
    }

    /// Whether PostgreSQL has an implicit cast from `self` to `to`.
    pub fn casts_implicitly_to(self, to: Ty) -> bool {
        matches!(
            (self, to),
            (Ty::Int4, Ty::Int8)
                | (Ty::Int4, Ty::Numeric)
                | (Ty::Int8, Ty::Numeric)
                | (Ty::Date, Ty::Timestamp)
                | (Ty::Date, Ty::Timestamptz)
                | (Ty::Timestamp, Ty::Timestamptz)
        )
    }

    /// Whether the text input or output function of this type depends on
    /// session settings, which makes it `STABLE` rather than `IMMUTABLE`.
    fn io_is_stable(self) -> bool {
        matches!(self, Ty::Date | Ty::Timestamp | Ty::Timestamptz | Ty::Interval | Ty::TextArray)
    }

    /// Looks up an explicit cast from `self` to `to`. Returns `None` when
    /// PostgreSQL has no such cast, else whether the cast is `STABLE`.
    pub fn explicit_cast(self, to: Ty) -> Option<bool> {
        use Ty::*;
        if self == to {
            return Some(false);
        }
        match (self, to) {
            (TextArray, Text) => None,
            (_, Text) => Some(self.io_is_stable()),
            (Text, _) => Some(to.io_is_stable()),
            (Int4 | Int8 | Numeric, Int4 | Int8 | Numeric) => Some(false),
            (Int4, Bool) | (Bool, Int4) => Some(false),
            (Jsonb, Bool | Int4 | Int8 | Numeric) => Some(false),
            (Date, Timestamp) | (Timestamp, Date) => Some(false),
            (Date, Timestamptz) | (Timestamptz, Date) | (Timestamp, Timestamptz) | (Timestamptz, Timestamp) => Some(true),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Int4(i32),
    Int8(i64),
    Numeric(Numeric),
    Text(Rc<str>),
    Jsonb(Rc<Json>),
    Uuid([u8; 16]),
    Date(i32),
    Timestamp(i64),
    Timestamptz(i64),
    Interval(Interval),
    TextArray(Rc<[Option<String>]>),
}

impl Value {
    pub fn text(s: impl Into<Rc<str>>) -> Value {
        Value::Text(s.into())
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Parses text with the input function of `ty`, as a string constant
    /// or a cast from text does. `now` resolves `now`, `today` and friends.
    pub fn input(ty: Ty, text: &str, now: i64) -> Result<Value, String> {
        let invalid = || format!("invalid input syntax for type {}: \"{text}\"", ty.name());
        Ok(match ty {
            Ty::Text | Ty::Unknown => Value::text(text),
            Ty::Bool => Value::Bool(parse_bool(text).ok_or_else(invalid)?),
            Ty::Int4 => {
                let v = parse_int(text).ok_or_else(invalid)?;
                Value::Int4(i32::try_from(v).map_err(|_| format!("value \"{text}\" is out of range for type integer"))?)
            }
            Ty::Int8 => Value::Int8(parse_int(text).ok_or_else(invalid)?.try_into().map_err(|_| format!("value \"{text}\" is out of range for type bigint"))?),
            Ty::Numeric => Value::Numeric(Numeric::parse(text).map_err(|()| invalid())?),
            Ty::Jsonb => Value::Jsonb(Rc::new(Json::parse(text)?)),
            Ty::Uuid => Value::Uuid(parse_uuid(text).ok_or_else(invalid)?),
            Ty::Date => Value::Date(datetime::parse_date(text, now)?),
            Ty::Timestamp => Value::Timestamp(datetime::parse_timestamp(text, now)?),
            Ty::Timestamptz => Value::Timestamptz(datetime::parse_timestamptz(text, now)?),
            Ty::Interval => Value::Interval(Interval::parse(text)?),
            Ty::TextArray => Value::TextArray(parse_text_array(text).ok_or_else(|| format!("malformed array literal: \"{text}\""))?.into()),
        })
    }

    /// Formats a non-null value with its type's output function.
    pub fn output(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => if *b { "true" } else { "false" }.into(),
            Value::Int4(v) => v.to_string(),
            Value::Int8(v) => v.to_string(),
            Value::Numeric(n) => n.to_text(),
            Value::Text(s) => s.to_string(),
            Value::Jsonb(j) => j.to_text(),
            Value::Uuid(b) => format_uuid(b),
            Value::Date(d) => datetime::format_date(*d),
            Value::Timestamp(t) => datetime::format_timestamp(*t, false),
            Value::Timestamptz(t) => datetime::format_timestamp(*t, true),
            Value::Interval(iv) => iv.to_text(),
            Value::TextArray(items) => format_text_array(items),
        }
    }

    /// Applies an explicit cast from `from` to `to` to a non-null value.
    /// The analyzer has already checked that the cast exists.
    pub fn cast(self, from: Ty, to: Ty, now: i64) -> Result<Value, String> {
        if from == to || self.is_null() {
            return Ok(self);
        }
        if to == Ty::Text {
            return Ok(Value::text(self.output()));
        }
        if let Value::Text(s) = &self {
            return Value::input(to, s, now);
        }
        let int_out_of_range = || "integer out of range".to_string();
        Ok(match (self, to) {
            (Value::Int4(v), Ty::Int8) => Value::Int8(i64::from(v)),
            (Value::Int4(v), Ty::Numeric) => Value::Numeric(Numeric::from_i64(i64::from(v))),
            (Value::Int8(v), Ty::Int4) => Value::Int4(i32::try_from(v).map_err(|_| int_out_of_range())?),
            (Value::Int8(v), Ty::Numeric) => Value::Numeric(Numeric::from_i64(v)),
            (Value::Numeric(n), Ty::Int4) => Value::Int4(i32::try_from(n.to_i64("integer")?).map_err(|_| int_out_of_range())?),
            (Value::Numeric(n), Ty::Int8) => Value::Int8(n.to_i64("bigint")?),
            (Value::Int4(v), Ty::Bool) => Value::Bool(v != 0),
            (Value::Bool(b), Ty::Int4) => Value::Int4(i32::from(b)),
            (Value::Jsonb(j), to) => {
                let target = to.name();
                match (&*j, to) {
                    (Json::Bool(b), Ty::Bool) => Value::Bool(*b),
                    (Json::Number(n), Ty::Numeric) => Value::Numeric(n.clone()),
                    (Json::Number(n), Ty::Int8) => Value::Int8(n.to_i64("bigint")?),
                    (Json::Number(n), Ty::Int4) => Value::Int4(i32::try_from(n.to_i64("integer")?).map_err(|_| int_out_of_range())?),
                    (other, _) => {
                        let kind = match other {
                            Json::Array(_) => "array",
                            Json::Object(_) => "object",
                            Json::String(_) => "string",
                            Json::Number(_) => "numeric",
                            Json::Bool(_) => "boolean",
                            Json::Null => "null",
                        };
                        return Err(format!("cannot cast jsonb {kind} to type {target}"));
                    }
                }
            }
            (Value::Date(d), Ty::Timestamp) => Value::Timestamp(datetime::date_to_timestamp(d)?),
            (Value::Date(d), Ty::Timestamptz) => Value::Timestamptz(datetime::date_to_timestamp(d)?),
            (Value::Timestamp(t) | Value::Timestamptz(t), Ty::Date) => Value::Date(datetime::timestamp_to_date(t)),
            (Value::Timestamp(t), Ty::Timestamptz) => Value::Timestamptz(t),
            (Value::Timestamptz(t), Ty::Timestamp) => Value::Timestamp(t),
            (v, to) => return Err(format!("cannot cast {v:?} to type {}", to.name())),
        })
    }

    /// Compares two non-null values of the same type.
    pub fn compare(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Int4(a), Value::Int4(b)) => a.cmp(b),
            (Value::Int8(a), Value::Int8(b)) => a.cmp(b),
            (Value::Numeric(a), Value::Numeric(b)) => a.compare(b),
            (Value::Text(a), Value::Text(b)) => compare_text(a, b),
            (Value::Jsonb(a), Value::Jsonb(b)) => a.compare_top(b),
            (Value::Uuid(a), Value::Uuid(b)) => a.cmp(b),
            (Value::Date(a), Value::Date(b)) => a.cmp(b),
            (Value::Timestamp(a), Value::Timestamp(b)) | (Value::Timestamptz(a), Value::Timestamptz(b)) => a.cmp(b),
            (Value::Interval(a), Value::Interval(b)) => a.compare(b),
            (Value::TextArray(a), Value::TextArray(b)) => {
                for (x, y) in a.iter().zip(b.iter()) {
                    let o = match (x, y) {
                        (Some(x), Some(y)) => compare_text(x, y),
                        (None, None) => Ordering::Equal,
                        (None, Some(_)) => Ordering::Greater,
                        (Some(_), None) => Ordering::Less,
                    };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                a.len().cmp(&b.len())
            }
            // The analyzer coerces both sides to one type first.
            (a, b) => unreachable!("comparison of mismatched values {a:?} and {b:?}"),
        }
    }
}

/// Parses a boolean the way `boolin` does: any unique prefix of `true`,
/// `false`, `yes`, `no`, plus `on`, `off`, `1`, `0`, ignoring case and
/// surrounding whitespace.
pub fn parse_bool(text: &str) -> Option<bool> {
    let s = text.trim_matches(|c: char| c.is_ascii_whitespace()).to_ascii_lowercase();
    if s.is_empty() {
        return None;
    }
    let prefix_of = |word: &str| word.starts_with(s.as_str());
    match s.as_str() {
        "1" => Some(true),
        "0" => Some(false),
        "on" => Some(true),
        "of" | "off" => Some(false),
        _ if prefix_of("true") || prefix_of("yes") => Some(true),
        _ if prefix_of("false") || prefix_of("no") => Some(false),
        _ => None,
    }
}

/// Parses an integer the way `pg_strtoint64` does in PostgreSQL 15:
/// surrounding whitespace, an optional sign and decimal digits only.
fn parse_int(text: &str) -> Option<i128> {
    let s = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if digits.len() > 30 {
        // Surely out of range; i128 cannot hold it, so report a huge value.
        return Some(i128::MAX);
    }
    s.parse::<i128>().ok()
}

fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let s = match text.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}')?,
        None => text,
    };
    let bytes = s.as_bytes();
    let mut out = [0u8; 16];
    let mut i = 0;
    for (k, byte) in out.iter_mut().enumerate() {
        // A hyphen may follow any group of four hex digits.
        if k > 0 && k % 2 == 0 && bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        let hi = (*bytes.get(i)? as char).to_digit(16)?;
        let lo = (*bytes.get(i + 1)? as char).to_digit(16)?;
        *byte = (hi * 16 + lo) as u8;
        i += 2;
    }
    if i != bytes.len() {
        return None;
    }
    Some(out)
}

pub fn format_uuid(b: &[u8; 16]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Parses a one-dimensional text array literal such as `{a,"b c",NULL}`.
fn parse_text_array(text: &str) -> Option<Vec<Option<String>>> {
    let s = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    let chars: Vec<char> = inner.chars().collect();
    let mut items = Vec::new();
    if chars.iter().all(|c| c.is_ascii_whitespace()) {
        return Some(items);
    }
    let mut i = 0;
    loop {
        while chars.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
            i += 1;
        }
        let mut item = String::new();
        let mut quoted = false;
        // Characters after the last quoted or escaped one, so trailing
        // whitespace of an unquoted element can be dropped.
        let mut protected_len = 0;
        loop {
            match chars.get(i) {
                None | Some(',') if !quoted => break,
                None => return None,
                Some('{') | Some('}') if !quoted => return None,
                Some('"') => {
                    quoted = !quoted;
                    protected_len = item.len();
                    i += 1;
                }
                Some('\\') => {
                    item.push(*chars.get(i + 1)?);
                    protected_len = item.len();
                    i += 2;
                }
                Some(&c) => {
                    item.push(c);
                    if quoted {
                        protected_len = item.len();
                    }
                    i += 1;
                }
            }
        }
        let trimmed_len = item.trim_end_matches(|c: char| c.is_ascii_whitespace()).len().max(protected_len);
        item.truncate(trimmed_len);
        let was_plain = !chars[..i].iter().rev().take_while(|c| **c != ',').any(|c| *c == '"' || *c == '\\');
        if item.is_empty() && was_plain {
            return None;
        }
        if was_plain && item.eq_ignore_ascii_case("null") {
            items.push(None);
        } else {
            items.push(Some(item));
        }
        if chars.get(i) == Some(&',') {
            i += 1;
            continue;
        }
        return Some(items);
    }
}

fn format_text_array(items: &[Option<String>]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|item| match item {
            None => "NULL".into(),
            Some(s) => {
                let needs_quotes = s.is_empty()
                    || s.eq_ignore_ascii_case("null")
                    || s.chars().any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_ascii_whitespace());
                if needs_quotes {
                    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
                } else {
                    s.clone()
                }
            }
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}
