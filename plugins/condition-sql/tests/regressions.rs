//! Table tests that need no database: every disagreement the differential
//! test found, with PostgreSQL 15's answer, plus the documented examples.

use grito_condition_sql::{ErrorKind, Event, check, evaluate};

/// 2026-12-04 20:00:00 UTC in microseconds since the Unix epoch.
const NOW: i64 = 1_796_414_400_000_000;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expected {
    True,
    False,
    Error,
}

use Expected::{Error, False, True};

fn run(condition: &str, payload: &str) -> Result<bool, grito_condition_sql::Error> {
    let event = Event {
        event_name: "plan.subscribed",
        user_id: "12121212-1212-1212-1212-121212121212",
        source: "app",
        occurred_at: "2026-12-01T17:54:44.903507Z",
        payload,
    };
    evaluate(&event, condition, NOW)
}

fn check_table(cases: &[(&str, &str, Expected)]) {
    let mut failures = Vec::new();
    for (condition, payload, expected) in cases {
        let got = match run(condition, payload) {
            Ok(true) => True,
            Ok(false) => False,
            Err(_) => Error,
        };
        if got != *expected {
            failures.push(format!("{condition}\n  payload {payload}\n  expected {expected:?}, got {:?}", run(condition, payload)));
        }
    }
    assert!(failures.is_empty(), "{} cases failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn differential_findings() {
    check_table(&[
        // A top-level jsonb scalar is a one-element array to `->` with an index.
        ("jsonb_typeof(payload->'amount'->0) <> 'a_b'", r#"{"amount": "0"}"#, True),
        ("jsonb_array_length(payload->'a b'->0) > 0", r#"{"a b": true}"#, Error),
        ("'\"0\"'::jsonb #> '{0}' IS NULL", "{}", True),
        // NOT IN over constants of one type is `<> ALL`.
        ("jsonb_typeof('{\"nested\": \"São Paulo\"}'::jsonb) NOT IN ('true', '123')", "{}", True),
        ("NOT jsonb_typeof('{}'::jsonb) NOT IN ('12.50', '1e3')", "{}", False),
        ("NOT length('a_b') NOT IN (NULL, 123456789012345678901234567890, 2147483648, -1)", "{}", False),
        // PostgreSQL's date parser skips punctuation around the fields.
        ("CAST((payload->>'ts')::date AS text) = '2024-01-01'", r#"{"ts": ["2024-01-01T10:00:00Z"]}"#, True),
        // A strict call with a NULL constant argument folds to NULL without
        // evaluating its other arguments.
        ("((payload->>'s')::date)::date > (payload->>'d')::date OR occurred_at::text IN ('x')", r#"{"s": "Pro"}"#, False),
        // An OR that folds to TRUE is never evaluated at run time.
        (
            "((payload->>'x')::int IS NULL OR (payload->>'s')::timestamptz::text LIKE 'a' OR user_id::text <> '1') AND NOT occurred_at > now()",
            r#"{"s": {}}"#,
            True,
        ),
        // Along the WHERE clause's AND/OR spine, NULL counts as FALSE, so an
        // AND holding a NULL constant is dropped without running the rest.
        (
            "payload->>'d' != payload->>'amount' AND now() > (payload->>'d')::date OR event_name < lower(payload->'é'->>'é')",
            r#"{"d": "日本"}"#,
            False,
        ),
        // NOT moves inward through OR (De Morgan) before that rule applies.
        (
            "NOT (payload->>'plan' = '123' OR current_date + interval '1 day' = (payload->>'ts')::timestamptz) OR NOT -((payload->'n')::int) = 1",
            r#"{"ts": 100}"#,
            False,
        ),
        // `false = x` becomes `NOT x` in the planner, with the same effect.
        (
            "('{}'::jsonb @> '\"1\"') = (payload->'a'->'d' >= payload->'b' OR (payload->>'ts')::date > now())",
            r#"{"ts": [[null]]}"#,
            False,
        ),
        // Without any of those rules the error surfaces.
        ("(payload->>'ts')::date > now()", r#"{"ts": [[null]]}"#, Error),
    ]);
}

#[test]
fn documented_examples() {
    check_table(&[
        ("payload->>'plan' is null", r#"{"amount": 1}"#, True),
        ("payload->>'plan' is null", r#"{"plan": null}"#, True),
        ("payload->>'plan' is null", r#"{"plan": "pro"}"#, False),
        ("(payload->>'amount')::numeric > 100", r#"{"amount": "100.5"}"#, True),
        ("(payload->>'amount')::numeric > 100", r#"{"amount": 100}"#, False),
        ("(payload->>'amount')::numeric > 100", r#"{"amount": "lots"}"#, Error),
        ("(payload->>'amount')::numeric > 100", r#"{}"#, False),
        ("payload->>'amount' = '123'", r#"{"amount": 123}"#, True),
        ("payload->>'amount' = '123'", r#"{"amount": "123"}"#, True),
        ("payload->'amount' = '123'", r#"{"amount": "123"}"#, False),
        ("payload->>'amount' = 123", r#"{"amount": 123}"#, Error),
        ("'5' > 3", "{}", True),
        ("'abc' > 3", "{}", Error),
        ("'5' > '30'", "{}", True),
        ("payload->>'plan' IN ('pro', NULL)", r#"{"plan": "basic"}"#, False),
        ("payload->>'plan' NOT IN ('pro', NULL)", r#"{"plan": "basic"}"#, False),
        ("payload->>'plan' NOT IN ('pro', NULL)", r#"{"plan": "pro"}"#, False),
        ("payload->>'plan' IN ('pro', NULL)", r#"{"plan": "pro"}"#, True),
        ("payload->>'code' LIKE 'a\\%b'", r#"{"code": "a%b"}"#, True),
        ("payload->>'code' LIKE 'a\\%b'", r#"{"code": "axb"}"#, False),
        // The trailing escape is an error only when matching reaches it.
        ("payload->>'code' LIKE 'a\\'", r#"{"code": "ab"}"#, Error),
        ("payload->>'code' LIKE 'a\\'", r#"{"code": "a"}"#, False),
        ("payload->>'code' LIKE 'a\\'", r#"{"code": "b"}"#, False),
        ("occurred_at > now() - interval '14 days'", "{}", True),
        ("occurred_at > now() - interval '2 days'", "{}", False),
        ("occurred_at + interval '1 month' > now()", "{}", True),
        ("'2024-01-31'::date + interval '1 month' = '2024-02-29'", "{}", True),
        ("'abc'::int = 1", "{}", Error),
        ("false AND 'abc'::int = 1", "{}", Error),
        ("false AND (payload->>'x')::int = 1", r#"{"x": "abc"}"#, False),
        ("2147483647 + 1 > 0", "{}", Error),
        ("jsonb_array_length(payload->'tags') = 2", r#"{"tags": ["a", "b"]}"#, True),
        ("jsonb_array_length(payload->'tags') = 2", r#"{"tags": "a"}"#, Error),
        ("jsonb_array_length(payload->'tags') = 2", r#"{}"#, False),
    ]);
}

#[test]
fn three_valued_logic() {
    check_table(&[
        ("NULL", "{}", False),
        ("NOT NULL", "{}", False),
        ("NULL OR true", "{}", True),
        ("NULL AND false", "{}", False),
        ("(NULL AND true) IS NULL", "{}", True),
        ("(NULL OR false) IS UNKNOWN", "{}", True),
        ("NOT (NULL AND true) IS NOT NULL", "{}", True),
        ("(payload->>'x' = 'a') IS NOT TRUE", "{}", True),
        ("(payload->>'x' = 'a') IS FALSE", "{}", False),
        ("payload->>'x' IS DISTINCT FROM NULL", "{}", False),
        ("payload->>'x' IS NOT DISTINCT FROM NULL", "{}", True),
        ("1 IN (2, NULL)", "{}", False),
        ("(1 IN (2, NULL)) IS NULL", "{}", True),
        ("(1 NOT IN (2, NULL)) IS NULL", "{}", True),
        ("1 NOT IN (1, NULL)", "{}", False),
        ("NULL BETWEEN 1 AND 2 IS NULL", "{}", True),
        ("coalesce(NULL, payload->>'x', 'd') = 'd'", "{}", True),
    ]);
}

#[test]
fn precedence() {
    check_table(&[
        // `->>` binds tighter than `=`, and `::` tighter than `->>`.
        ("payload->>'a' = 'b'", r#"{"a": "b"}"#, True),
        ("payload->>'a'::int = 'b'", r#"{"a": "b"}"#, Error),
        ("payload->'a'->>'b' = 'c'", r#"{"a": {"b": "c"}}"#, True),
        // NOT binds looser than comparison and tighter than AND.
        ("NOT 1 = 2 AND true", "{}", True),
        ("NOT (1 = 1) OR true", "{}", True),
        ("NOT true AND false OR true", "{}", True),
        ("true OR false AND false", "{}", True),
        // IS binds looser than comparison.
        ("1 = 2 IS FALSE", "{}", True),
        ("payload->>'a' IS NULL = true", "{}", True),
        // Unary minus binds looser than `::`.
        ("-1::text = '-1'", "{}", Error),
        ("-(1::int) = -1", "{}", True),
        ("- 2147483648 = -2147483648", "{}", True),
        // Multiplication before addition.
        ("1 + 2 * 3 = 7", "{}", True),
        ("(1 + 2) * 3 = 9", "{}", True),
        // BETWEEN's upper bound stops at AND.
        ("2 BETWEEN 1 AND 3 AND false", "{}", False),
        ("5 NOT BETWEEN 1 AND 3", "{}", True),
        // LIKE binds tighter than `=`.
        ("'a' LIKE 'a' = true", "{}", True),
    ]);
}

#[test]
fn syntax_errors_are_rejected() {
    for condition in ["1 = 2 = 3", "1 < 2 < 3", "payload->>'a' LIKE 'b' LIKE 'c'", "", "(", "payload->>", "1 2"] {
        let err = check(condition, NOW).expect_err(condition);
        assert_eq!(err.kind, ErrorKind::Syntax, "{condition}: {err}");
    }
}

#[test]
fn errors_point_at_tokens() {
    let cases: &[(&str, usize, &str)] = &[
        ("payload->>'plan' = 'a'; DROP TABLE x", 23, ";"),
        ("payload->>'plan' = 'a' -- comment", 24, "--"),
        ("payload->>'plan' /* c */ = 'a'", 18, "/*"),
        ("exists (select 1)", 1, "exists"),
        ("plan = 'pro'", 1, "plan"),
        ("x.payload IS NULL", 1, "x"),
        ("upper(payload) = 'a'", 1, "upper"),
        ("pg_sleep(10) IS NULL", 1, "pg_sleep"),
        ("payload->>'a' = 1", 15, "="),
        ("payload->>'a' || 'b' = 'ab'", 15, "||"),
        ("event_name = 'a' AND source ~ 'b'", 29, "~"),
        ("payload->>'a' = 'b' AND", 24, ""),
        ("(payload->>'a')::int4range IS NULL", 18, "int4range"),
        ("payload->>'a' SIMILAR TO 'b'", 15, "SIMILAR"),
        ("payload @> $1", 12, "$"),
    ];
    for (condition, pos, token) in cases {
        let err = check(condition, NOW).expect_err(condition);
        assert_eq!(err.token.as_ref().map(|(p, _)| *p), Some(*pos), "{condition}: {err}");
        assert_eq!(err.token.as_ref().map(|(_, t)| t.as_str()), Some(*token), "{condition}: {err}");
        let message = err.to_string();
        assert!(message.contains(&format!("character {pos}")), "{condition}: {message}");
    }
}

/// Runs `f` on a thread with a stack big enough for unoptimized builds,
/// whose frames are many times larger than in the release wasm build.
fn with_big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new().stack_size(64 << 20).spawn(f).expect("spawn").join().expect("test thread panicked");
}

#[test]
fn limits_reject_hostile_text() {
    with_big_stack(hostile_text_cases);
}

fn hostile_text_cases() {
    let deep = format!("{}true{}", "(".repeat(10_000), ")".repeat(10_000));
    assert_eq!(check(&deep, NOW).expect_err("deep").kind, ErrorKind::Syntax);

    let nots = format!("{}true", "NOT ".repeat(500));
    assert_eq!(check(&nots, NOW).expect_err("nots").kind, ErrorKind::Syntax);

    let chain = format!("1{} = 1", " + 1".repeat(500));
    assert_eq!(check(&chain, NOW).expect_err("chain").kind, ErrorKind::Syntax);

    let long = format!("event_name = '{}'", "x".repeat(grito_condition_sql::MAX_CONDITION_BYTES));
    assert_eq!(check(&long, NOW).expect_err("long").kind, ErrorKind::Syntax);

    // A long flat chain of AND stays shallow and is accepted.
    let ands = vec!["true"; 1000].join(" AND ");
    assert!(check(&ands, NOW).is_ok());
}

#[test]
fn invalid_event_is_reported() {
    let event = Event { event_name: "x", user_id: "not-a-uuid", source: "app", occurred_at: "2026-01-01T00:00:00Z", payload: "{}" };
    let err = evaluate(&event, "true", NOW).expect_err("bad uuid");
    assert_eq!(err.kind, ErrorKind::InvalidEvent);

    let event = Event { payload: "{not json", user_id: "12121212-1212-1212-1212-121212121212", ..event };
    let err = evaluate(&event, "true", NOW).expect_err("bad payload");
    assert_eq!(err.kind, ErrorKind::InvalidEvent);
}
