//! Differential test: the plugin against a real PostgreSQL.
//!
//! For each (condition, event) pair PostgreSQL answers
//! `SELECT EXISTS (SELECT 1 FROM (SELECT $1::text AS event_name, ...) e WHERE <condition>)`
//! and the plugin must give the same answer: true, false, or an error.
//! Everything runs in one transaction so `now()` is fixed, with a savepoint
//! per pair so an error does not abort the rest.
//!
//! The database URL comes from `TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). An unreachable database fails
//! the test unless `GRITO_SKIP_POSTGRES=1`. `GRITO_DIFF_CASES` sets the
//! number of generated pairs (default 2500) and `GRITO_DIFF_SEED` the seed.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::time::Instant;

use bytes::{BufMut, BytesMut};
use grito_condition_sql::{Event, evaluate};
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, NoTls};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

const QUERY: &str = "SELECT EXISTS (SELECT 1 FROM (SELECT $1::text AS event_name, $2::uuid AS user_id, \
     $3::text AS source, $4::timestamptz AS occurred_at, $5::jsonb AS payload) e WHERE ";

/// Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
const PG_EPOCH_OFFSET: i64 = 946_684_800_000_000;

#[derive(Debug)]
struct PgUuid([u8; 16]);

impl ToSql for PgUuid {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        out.put_slice(&self.0);
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::UUID
    }
    to_sql_checked!();
}

#[derive(Debug)]
struct PgTimestamptz(i64);

impl ToSql for PgTimestamptz {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        out.put_i64(self.0 - PG_EPOCH_OFFSET);
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }
    to_sql_checked!();
}

/// JSON text sent in jsonb's binary format: a version byte, then the text,
/// so PostgreSQL parses exactly the text the plugin parses.
#[derive(Debug)]
struct PgJsonb<'a>(&'a str);

impl ToSql for PgJsonb<'_> {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        out.put_u8(1);
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }
    to_sql_checked!();
}

#[derive(Debug, Clone)]
struct TestEvent {
    event_name: String,
    user_id: [u8; 16],
    source: String,
    /// Microseconds since the Unix epoch.
    occurred_at: i64,
    payload: String,
}

fn format_uuid(b: &[u8; 16]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Formats microseconds since the epoch as RFC 3339 in UTC, as the host does.
fn format_rfc3339(micros: i64) -> String {
    let days = micros.div_euclid(86_400_000_000);
    let rem = micros.rem_euclid(86_400_000_000);
    let (y, m, d) = civil_from_days(days);
    let secs = rem / 1_000_000;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z", secs / 3600, secs / 60 % 60, secs % 60, rem % 1_000_000)
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[derive(Debug, Clone, PartialEq)]
enum Answer {
    True,
    False,
    Error(String),
}

impl Answer {
    fn agrees(&self, other: &Answer) -> bool {
        matches!((self, other), (Answer::True, Answer::True) | (Answer::False, Answer::False) | (Answer::Error(_), Answer::Error(_)))
    }
}

struct Harness {
    client: Client,
    now: i64,
}

impl Harness {
    fn connect() -> Option<Harness> {
        let url = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let mut client = match Client::connect(&url, NoTls) {
            Ok(c) => c,
            Err(e) => {
                if std::env::var("GRITO_SKIP_POSTGRES").as_deref() == Ok("1") {
                    eprintln!("skipping the differential test: PostgreSQL at {url} is unreachable ({e}) and GRITO_SKIP_POSTGRES=1");
                    return None;
                }
                panic!("PostgreSQL at {url} is unreachable: {e}. Start it, set TEST_DATABASE_URL, or set GRITO_SKIP_POSTGRES=1 to skip.");
            }
        };
        client
            .batch_execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'; SET statement_timeout = '10s'; BEGIN")
            .expect("session setup failed");
        let collation: String = client.query_one("SHOW lc_collate", &[]).expect("SHOW lc_collate failed").get(0);
        assert!(
            matches!(collation.as_str(), "C" | "POSIX" | "C.UTF-8" | "C.utf8"),
            "the test database's collation is {collation}; the plugin orders text by code point like C and C.UTF-8"
        );
        let now: i64 = client
            .query_one("SELECT (extract(epoch FROM now()) * 1000000)::int8", &[])
            .expect("reading now() failed")
            .get(0);
        Some(Harness { client, now })
    }

    fn postgres_answer(&mut self, condition: &str, event: &TestEvent) -> Answer {
        let sql = format!("{QUERY}{condition})");
        self.client.batch_execute("SAVEPOINT pair").expect("SAVEPOINT failed");
        let result = self.client.query_one(
            sql.as_str(),
            &[
                &event.event_name,
                &PgUuid(event.user_id),
                &event.source,
                &PgTimestamptz(event.occurred_at),
                &PgJsonb(&event.payload),
            ],
        );
        match result {
            Ok(row) => {
                self.client.batch_execute("RELEASE SAVEPOINT pair").expect("RELEASE failed");
                if row.get::<_, bool>(0) { Answer::True } else { Answer::False }
            }
            Err(e) => {
                self.client.batch_execute("ROLLBACK TO SAVEPOINT pair").expect("ROLLBACK TO SAVEPOINT failed");
                let message = e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string());
                Answer::Error(message)
            }
        }
    }

    fn plugin_answer(&self, condition: &str, event: &TestEvent) -> Answer {
        let user_id = format_uuid(&event.user_id);
        let occurred_at = format_rfc3339(event.occurred_at);
        let e = Event {
            event_name: &event.event_name,
            user_id: &user_id,
            source: &event.source,
            occurred_at: &occurred_at,
            payload: &event.payload,
        };
        match evaluate(&e, condition, self.now) {
            Ok(true) => Answer::True,
            Ok(false) => Answer::False,
            Err(err) => Answer::Error(err.to_string()),
        }
    }
}

/// A small deterministic generator driven by seeds that proptest draws.
struct Gen {
    state: u64,
}

impl Gen {
    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const KEYS: &[&str] = &["plan", "amount", "n", "s", "flag", "ts", "d", "tags", "nested", "items", "bairro", "é", "a b", "Plan"];
const STRINGS: &[&str] = &[
    "pro", "Pro", "PRO", "basic", "", " pro ", "abc", "123", "0", "-5", " 12 ", "1e3", "12.5", "12.50", "NaN", "Infinity",
    "true", "t", "no", "off", "yes", "2024-01-01", "2024-02-30", "2024-01-01T10:00:00Z", "2024-01-01 10:00:00+03",
    "2024-13-01", "now", "today", "São Paulo", "café", "Ünïcödé", "日本", "emoji 😀", "a%b", "a_b", "a\\b", "50%",
    "{\"x\": 1}", "[1, 2]", "null", "99999999999", "2147483648", "-2147483648", "1.5", "-0", "0.0001",
];
const NUMBERS: &[&str] = &["0", "1", "-1", "42", "100", "100.0", "1e2", "12.5", "-0.5", "2147483647", "2147483648", "9223372036854775807", "123456789012345678901234567890", "0.1", "1.000000000000000000001"];

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Gen {
    fn json_value(&mut self, depth: usize) -> String {
        let k = if depth >= 3 { self.below(5) } else { self.below(8) };
        match k {
            0 => "null".into(),
            1 => self.pick(&["true", "false"]).into(),
            2 => self.pick(NUMBERS).into(),
            3 | 4 => json_string(self.pick(STRINGS)),
            5 => self.json_object(depth + 1),
            _ => {
                let n = self.below(4);
                let items: Vec<String> = (0..n).map(|_| self.json_value(depth + 1)).collect();
                format!("[{}]", items.join(", "))
            }
        }
    }

    fn json_object(&mut self, depth: usize) -> String {
        let n = self.below(if depth == 0 { 9 } else { 4 });
        let mut parts = Vec::new();
        for _ in 0..n {
            let key = self.pick(KEYS);
            let value = self.json_value(depth);
            parts.push(format!("{}: {}", json_string(key), value));
        }
        format!("{{{}}}", parts.join(", "))
    }

    fn event(&mut self, now: i64) -> TestEvent {
        let mut user_id = [0u8; 16];
        for b in user_id.iter_mut() {
            *b = self.next() as u8;
        }
        let day = 86_400_000_000i64;
        TestEvent {
            event_name: self.pick(&["user.signed_up", "plan.subscribed", "payment.failed", "Plan.Subscribed", "", "evento.é"]).into(),
            user_id,
            source: self.pick(&["app", "stripe", "APP", "intelbras", ""]).into(),
            occurred_at: now - (self.next() % (60 * day as u64)) as i64 + day,
            payload: self.json_object(0),
        }
    }

    fn key(&mut self) -> String {
        sql_string(self.pick(KEYS))
    }

    fn json_literal(&mut self) -> String {
        let v = if self.chance(60) { self.json_object(1) } else { self.json_value(1) };
        sql_string(&v)
    }

    fn text_expr(&mut self, depth: usize) -> String {
        let leaf = depth == 0 || self.chance(35);
        if leaf {
            return match self.below(8) {
                0..=2 => format!("payload->>{}", self.key()),
                3 => "event_name".into(),
                4 => "e.source".into(),
                5 => sql_string(self.pick(STRINGS)),
                6 => format!("payload#>>'{{{},{}}}'", self.pick(&["nested", "items", "tags"]), self.pick(&["0", "plan", "a", "-1", "x"])),
                _ => format!("payload->{}->>{}", self.key(), if self.chance(50) { self.key() } else { self.below(3).to_string() }),
            };
        }
        let d = depth - 1;
        match self.below(11) {
            0 => format!("lower({})", self.text_expr(d)),
            1 => format!("upper({})", self.text_expr(d)),
            2 => format!("trim({})", self.text_expr(d)),
            3 => format!("coalesce({}, {})", self.text_expr(d), self.text_expr(d)),
            4 => format!("jsonb_typeof({})", self.jsonb_expr(d)),
            5 => format!("({})::text", self.num_expr(d)),
            6 => format!("{}::text", self.jsonb_expr(d)),
            7 => "user_id::text".into(),
            8 => format!("CAST({} AS text)", self.ts_expr(d)),
            9 => format!("trim(both 'x' from {})", self.text_expr(d)),
            _ => format!("({})::text", self.bool_expr(d)),
        }
    }

    fn num_expr(&mut self, depth: usize) -> String {
        let leaf = depth == 0 || self.chance(35);
        if leaf {
            return match self.below(7) {
                0 | 1 => format!("(payload->>{})::{}", self.key(), self.pick(&["int", "bigint", "numeric", "integer", "int8"])),
                2 => format!("(payload->{})::{}", self.key(), self.pick(&["int", "numeric", "bigint"])),
                3 => self.pick(NUMBERS).into(),
                4 => format!("-{}", self.pick(NUMBERS)),
                5 => format!("length({})", self.text_expr(0)),
                _ => format!("jsonb_array_length(payload->{})", self.key()),
            };
        }
        let d = depth - 1;
        match self.below(8) {
            0 => format!("{} + {}", self.num_expr(d), self.num_expr(d)),
            1 => format!("{} - {}", self.num_expr(d), self.num_expr(d)),
            2 => format!("({}) * ({})", self.num_expr(d), self.num_expr(d)),
            3 => format!("(payload->>{})::int / {}", self.key(), self.pick(&["2", "0", "-3", "7"])),
            4 => format!("coalesce({}, {})", self.num_expr(d), self.num_expr(d)),
            5 => format!("-({})", self.num_expr(d)),
            6 => format!("length({})", self.text_expr(d)),
            _ => format!("(payload->>{})::int % {}", self.key(), self.pick(&["2", "0", "5"])),
        }
    }

    fn jsonb_expr(&mut self, depth: usize) -> String {
        let leaf = depth == 0 || self.chance(40);
        if leaf {
            return match self.below(6) {
                0 => "payload".into(),
                1 | 2 => format!("payload->{}", self.key()),
                3 => format!("payload->{}->{}", self.key(), self.below(3)),
                4 => format!("{}::jsonb", self.json_literal()),
                _ => format!("payload#>'{{{},{}}}'", self.pick(KEYS), self.pick(&["0", "1", "plan", "a"])),
            };
        }
        let d = depth - 1;
        match self.below(3) {
            0 => format!("({})::jsonb", self.text_expr(d)),
            1 => format!("coalesce({}, {})", self.jsonb_expr(d), self.jsonb_expr(d)),
            _ => format!("{}->{}", self.jsonb_expr(d), self.key()),
        }
    }

    fn ts_expr(&mut self, depth: usize) -> String {
        let interval = |g: &mut Gen| {
            sql_string(g.pick(&["14 days", "1 day", "30 days", "1 month", "2 hours", "1 year 2 mons", "-1 day +02:00:00", "1.5 days", "90 minutes", "1 week", "3 days ago"]))
        };
        let leaf = depth == 0 || self.chance(40);
        if leaf {
            return match self.below(8) {
                0 | 1 => "occurred_at".into(),
                2 => "now()".into(),
                3 => format!("now() - interval {}", interval(self)),
                4 => format!("(payload->>{})::timestamptz", self.pick(&["'ts'", "'d'", "'s'"])),
                5 => format!("{}::timestamptz", sql_string(self.pick(&["2024-01-01", "2024-01-01T10:00:00Z", "2024-01-01 10:00:00-03", "epoch", "infinity", "2026-12-01"]))),
                6 => format!("(payload->>{})::date", self.pick(&["'d'", "'ts'", "'s'"])),
                _ => "current_date".into(),
            };
        }
        let d = depth - 1;
        match self.below(4) {
            0 => format!("{} + interval {}", self.ts_expr(d), interval(self)),
            1 => format!("{} - interval {}", self.ts_expr(d), interval(self)),
            2 => format!("coalesce({}, now())", self.ts_expr(d)),
            _ => format!("({})::date", self.ts_expr(d)),
        }
    }

    fn comparison_op(&mut self) -> &'static str {
        self.pick(&["=", "<>", "!=", "<", "<=", ">", ">="])
    }

    fn bool_expr(&mut self, depth: usize) -> String {
        let leaf = depth == 0 || self.chance(30);
        if leaf {
            return self.predicate();
        }
        let d = depth - 1;
        match self.below(9) {
            0 | 1 => format!("{} AND {}", self.bool_expr(d), self.bool_expr(d)),
            2 | 3 => format!("{} OR {}", self.bool_expr(d), self.bool_expr(d)),
            4 => format!("NOT {}", self.bool_expr(d)),
            5 => format!("({}) IS {}{}", self.bool_expr(d), if self.chance(50) { "NOT " } else { "" }, self.pick(&["TRUE", "FALSE", "UNKNOWN"])),
            6 => format!("({}) = ({})", self.bool_expr(d), self.bool_expr(d)),
            7 => format!("({} OR {}) AND NOT ({})", self.bool_expr(d), self.bool_expr(d), self.bool_expr(d)),
            _ => format!("({})", self.bool_expr(d)),
        }
    }

    fn predicate(&mut self) -> String {
        let not = |g: &mut Gen| if g.chance(30) { "NOT " } else { "" };
        match self.below(24) {
            0 => format!("{} IS {}NULL", self.text_expr(1), not(self)),
            1 => format!("{} {} {}", self.text_expr(1), self.comparison_op(), self.text_expr(1)),
            2 => format!("{} {} {}", self.text_expr(1), self.comparison_op(), sql_string(self.pick(STRINGS))),
            3 => format!("{} {} {}", self.num_expr(1), self.comparison_op(), self.num_expr(1)),
            4 => format!("{} {} {}", self.num_expr(1), self.comparison_op(), sql_string(self.pick(NUMBERS))),
            5 => format!("{} {} {}", self.jsonb_expr(1), self.comparison_op(), self.jsonb_expr(1)),
            6 => format!("{} {} {}", self.ts_expr(1), self.comparison_op(), self.ts_expr(1)),
            7 => format!("payload ? {}", self.key()),
            8 => format!("{} {} array[{}, {}]", self.jsonb_expr(0), self.pick(&["?|", "?&"]), self.key(), self.key()),
            9 => format!("{} {} {}", self.jsonb_expr(1), self.pick(&["@>", "<@"]), self.json_literal()),
            10 => {
                let pattern = self.pick(&["pro%", "%o", "_ro", "a\\%b", "a\\_b", "%\\\\%", "%", "", "P%", "%é%", "a\\", "\\", "%a_b%", "50\\%"]);
                format!("{} {}{} {}", self.text_expr(1), not(self), self.pick(&["LIKE", "ILIKE"]), sql_string(pattern))
            }
            11 => {
                let items: Vec<String> = (0..1 + self.below(4))
                    .map(|_| if self.chance(20) { "NULL".into() } else { sql_string(self.pick(STRINGS)) })
                    .collect();
                format!("{} {}IN ({})", self.text_expr(1), not(self), items.join(", "))
            }
            12 => {
                let items: Vec<String> = (0..1 + self.below(4))
                    .map(|_| if self.chance(20) { "NULL".into() } else { self.pick(NUMBERS).to_string() })
                    .collect();
                format!("{} {}IN ({})", self.num_expr(1), not(self), items.join(", "))
            }
            13 => format!("{} {}BETWEEN {} AND {}", self.num_expr(1), not(self), self.pick(NUMBERS), self.pick(NUMBERS)),
            14 => format!("{} IS {}DISTINCT FROM {}", self.text_expr(1), not(self), self.text_expr(1)),
            15 => format!("(payload->>{})::boolean", self.key()),
            16 => format!("(payload->{})::boolean {} true", self.key(), self.comparison_op()),
            17 => self.pick(&["true", "false", "NULL", "'t'", "'yes'"]).into(),
            // Type errors on purpose: both sides must agree that they fail.
            18 => format!("payload->>{} = {}", self.key(), self.pick(NUMBERS)),
            19 => format!("{} {} {}", sql_string(self.pick(STRINGS)), self.comparison_op(), self.pick(NUMBERS)),
            20 => format!("occurred_at > now() - interval {}", sql_string(self.pick(&["14 days", "30 days", "1 day", "2 months"]))),
            21 => format!("{} {} {}", self.text_expr(1), self.comparison_op(), self.num_expr(0)),
            22 => format!("jsonb_array_length({}) > {}", self.jsonb_expr(1), self.below(3)),
            _ => format!("{} {}IN ({}, {})", self.text_expr(1), not(self), self.text_expr(0), sql_string(self.pick(STRINGS))),
        }
    }
}

/// Conditions written by hand for the cases most likely to go wrong.
const HAND_WRITTEN: &[&str] = &[
    "payload->>'plan' is null",
    "payload->>'plan' IS NOT NULL",
    "(payload->>'amount')::numeric > 100",
    "(payload->>'amount')::int > 100",
    "payload->>'missing' = 'x'",
    "payload->'missing'->>'deeper' is null",
    "payload->>'amount' = '123'",
    "payload->>'amount' = 123",
    "(payload->>'amount')::int = 123",
    "(payload->'amount')::int = 123",
    "'5' > 3",
    "'5' > '30'",
    "'abc'::int = 1",
    "'5.5' > 3",
    "payload->>'plan' IN ('pro', NULL)",
    "payload->>'plan' NOT IN ('pro', NULL)",
    "payload->>'plan' NOT IN ('basic', NULL)",
    "payload->>'plan' IN (NULL)",
    "NULL IN (1, 2)",
    "1 IN (1, NULL)",
    "2 NOT IN (1, NULL)",
    "payload->>'plan' LIKE 'p%'",
    "payload->>'plan' LIKE 'a\\%b'",
    "'a%b' LIKE 'a\\%b'",
    "'axb' LIKE 'a\\%b'",
    "'a_b' LIKE 'a\\_b'",
    "'a\\b' LIKE 'a\\\\b'",
    "'abc' LIKE 'a\\'",
    "'a' LIKE 'a\\'",
    "'abc' LIKE 'ab!c' ESCAPE '!'",
    "'ab!c' LIKE 'ab!!c' ESCAPE '!'",
    "'abc' LIKE 'abc' ESCAPE ''",
    "'abc' LIKE 'abc' ESCAPE 'xy'",
    "'PRO' ILIKE 'pro'",
    "'ÉCOLE' ILIKE 'école'",
    "'ÉCOLE' NOT ILIKE 'é%'",
    "occurred_at > now() - interval '14 days'",
    "occurred_at > now() - interval '1 month'",
    "occurred_at < now() - '14 days'",
    "occurred_at + interval '1 day' > now()",
    "now() - occurred_at > interval '7 days'",
    "now() - occurred_at < '7 days'",
    "occurred_at::date = current_date",
    "occurred_at > '2020-01-01'",
    "occurred_at > '2020-01-01'::date",
    "occurred_at > 'garbage'",
    "current_date - 1 < occurred_at::date",
    "interval '1 month' = interval '30 days'",
    "interval '1 day' = interval '24 hours'",
    "interval '1.5 days' = interval '36 hours'",
    "'2024-01-31'::date + interval '1 month' = '2024-02-29'",
    "'2024-01-01T10:00:00+03:00'::timestamptz = '2024-01-01 07:00:00Z'",
    "'2024-01-01 10:00:00.1234567'::timestamptz::text = '2024-01-01 10:00:00.123457+00'",
    "(interval '1 year 2 mons -3 days 04:05:06')::text = '1 year 2 mons -3 days +04:05:06'",
    "now()::text <> ''",
    "true AND NULL",
    "false AND NULL",
    "NOT NULL",
    "NULL IS NULL",
    "NULL::boolean IS UNKNOWN",
    "(NULL AND false) IS FALSE",
    "(NULL OR true) IS TRUE",
    "NOT payload->>'plan' = 'pro'",
    "NOT payload ? 'plan'",
    "payload->>'plan' = 'pro' IS NULL",
    "payload->>'plan' IS NULL = true",
    "1 = 1 = true",
    "1 < 2 < 3",
    "payload->>'plan' IS DISTINCT FROM 'pro'",
    "payload->>'plan' IS NOT DISTINCT FROM NULL",
    "payload ? 'plan'",
    "payload ?| array['plan', 'amount']",
    "payload ?& array['plan', 'amount']",
    "payload ?| '{plan,zzz}'",
    "payload @> '{\"plan\": \"pro\"}'",
    "'{\"plan\": \"pro\"}' <@ payload",
    "payload @> '{}'",
    "'[1, 2, [3]]'::jsonb @> '[[3]]'",
    "'[1, 2]'::jsonb @> '1'",
    "'1'::jsonb @> '[1]'",
    "'[]'::jsonb < 'null'::jsonb",
    "'1'::jsonb < '[1]'::jsonb",
    "'{\"a\": 1}'::jsonb > '[1, 2, 3]'::jsonb",
    "'\"a\"'::jsonb < '1'::jsonb",
    "'1.0'::jsonb = '1'::jsonb",
    "'{\"b\": 1, \"a\": 2}'::jsonb = '{\"a\": 2, \"b\": 1}'",
    "'{\"a\": 1, \"a\": 2}'::jsonb->>'a' = '2'",
    "'{\"a\": [1, 2.50, \"x\", null, {\"b\": true}]}'::jsonb->>'a' = '[1, 2.50, \"x\", null, {\"b\": true}]'",
    "payload #>> '{nested,plan}' = 'pro'",
    "payload #> '{}' = payload",
    "'[1,2,3]'::jsonb->-1 = '3'",
    "'[1,2,3]'::jsonb #>> '{-1}' = '3'",
    "'[1,2,3]'::jsonb #>> '{ 1}' = '2'",
    "jsonb_array_length(payload->'tags') > 0",
    "jsonb_array_length(payload) > 0",
    "jsonb_array_length('1') > 0",
    "jsonb_typeof(payload->'amount') = 'number'",
    "coalesce(payload->>'plan', 'free') = 'free'",
    "coalesce(payload->>'plan', 1) = 'free'",
    "coalesce((payload->>'n')::int, 1.5) > 1",
    "coalesce(NULL, NULL) IS NULL",
    "lower(payload->>'plan') = 'pro'",
    "upper('straße') = 'STRASSE'",
    "lower('İ') = 'i'",
    "length('日本') = 2",
    "trim('  x  ') = 'x'",
    "trim(leading 'x' from 'xxaxx') = 'axx'",
    "trim(trailing from '  a  ') = '  a'",
    "2147483647 + 1 > 0",
    "2147483647::bigint + 1 > 0",
    "-2147483648 < 0",
    "- 2147483648 < 0",
    "9223372036854775807 + 1 > 0",
    "'2147483648'::int > 0",
    "' 12 '::int = 12",
    "'+12'::int = 12",
    "'1e3'::numeric = 1000",
    "'NaN'::numeric > 1e100",
    "'Infinity'::numeric > 1e100",
    "1.5::int = 2",
    "2.5::int = 3",
    "(-2.5)::int = -3",
    "0.1 + 0.2 = 0.3",
    "1 / 0 = 1",
    "7 / 2 = 3",
    "-7 / 2 = -3",
    "-7 % 3 = -1",
    "1.0 = 1",
    "'t'::boolean",
    "'tr'::boolean",
    "'o'::boolean",
    "'of'::boolean = false",
    "'yes'",
    "'maybe'",
    "payload",
    "payload->>'plan'",
    "1",
    "user_id = '00000000-0000-0000-0000-000000000000'",
    "user_id::text LIKE '%-%'",
    "user_id = 'not-a-uuid'",
    "user_id = event_name",
    "event_name = 'plan.subscribed' AND source = 'app'",
    "e.event_name LIKE 'plan.%'",
    "E'a\\nb' LIKE 'a_b'",
    "E'a\\tb' LIKE 'a_b'",
    "E'\\u00e9' = 'é'",
    "'it''s' = E'it\\'s'",
    "'a'\n'b' = 'ab'",
    "(payload->>'d')::date > '2020-01-01'",
    "(payload->>'ts')::timestamptz < now()",
    "false AND (payload->>'plan')::int > 0",
    "(payload->>'plan')::int > 0 AND false",
    "true OR (payload->>'plan')::int > 0",
    "occurred_at < now() - interval '1000 days' AND (payload->>'plan')::int > 0",
    "(payload->>'plan')::int > 0 AND occurred_at < now() - interval '1000 days'",
    "occurred_at < now() - interval '1000 days' AND (payload->>'s')::timestamptz > now()",
    "(payload->>'s')::timestamptz > now() AND occurred_at < now() - interval '1000 days'",
    "coalesce(now(), (payload->>'plan')::int::text::timestamptz) > occurred_at",
    "false AND 'abc'::int = 1",
    "NULL AND (payload->>'s')::timestamptz > now()",
    "(payload->>'s')::timestamptz > now() AND NULL",
];

fn hand_events(now: i64) -> Vec<TestEvent> {
    let base = |payload: &str| TestEvent {
        event_name: "plan.subscribed".into(),
        user_id: [0x12; 16],
        source: "app".into(),
        occurred_at: now - 3 * 86_400_000_000,
        payload: payload.into(),
    };
    vec![
        base(r#"{"plan": "pro", "amount": 150}"#),
        base(r#"{"plan": "basic", "amount": "123", "tags": ["a", "b"], "nested": {"plan": "pro"}, "d": "2024-05-01", "ts": "2024-05-01T10:00:00Z", "s": "x"}"#),
        base(r#"{"plan": null, "amount": "12.5", "n": null, "tags": []}"#),
        base(r#"{}"#),
        base(r#"{"plan": "a%b", "amount": 1e2, "tags": "not an array"}"#),
        base(r#"{"plan": "PRO", "amount": "abc"}"#),
    ]
}

#[test]
fn differential_against_postgres() {
    let Some(mut harness) = Harness::connect() else { return };
    let started = Instant::now();
    let cases: usize = std::env::var("GRITO_DIFF_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2500);
    let seed: u64 = std::env::var("GRITO_DIFF_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x6772_6974_6f00_0001);

    let mut pairs: Vec<(String, TestEvent)> = Vec::new();
    for event in hand_events(harness.now) {
        for condition in HAND_WRITTEN {
            pairs.push((condition.to_string(), event.clone()));
        }
    }
    let hand_count = pairs.len();

    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));
    let seeds = any::<u64>();
    for _ in 0..cases {
        let case_seed = seeds.new_tree(&mut runner).expect("seed strategy").current();
        let mut g = Gen { state: case_seed };
        let depth = 1 + g.below(3);
        let condition = g.bool_expr(depth);
        let event = g.event(harness.now);
        pairs.push((condition, event));
    }

    let mut disagreements = Vec::new();
    let (mut trues, mut falses, mut errors) = (0, 0, 0);
    for (condition, event) in &pairs {
        let pg = harness.postgres_answer(condition, event);
        let plugin = harness.plugin_answer(condition, event);
        match pg {
            Answer::True => trues += 1,
            Answer::False => falses += 1,
            Answer::Error(_) => errors += 1,
        }
        if !pg.agrees(&plugin) {
            disagreements.push(format!(
                "condition: {condition}\n  event: name={:?} source={:?} occurred_at={} payload={}\n  postgres: {pg:?}\n  plugin:   {plugin:?}",
                event.event_name,
                event.source,
                format_rfc3339(event.occurred_at),
                event.payload
            ));
        }
    }
    let total = pairs.len();
    eprintln!(
        "differential: {total} pairs ({hand_count} hand-written, {cases} generated, seed {seed}): \
         PostgreSQL answered {trues} true, {falses} false, {errors} errors; {} disagreements; {:.1} s",
        disagreements.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        disagreements.is_empty(),
        "{} of {total} pairs disagree with PostgreSQL:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}
