//! Fuzz-style property test for the parser and evaluator: arbitrary text and
//! soups of SQL tokens must never panic and must finish quickly.

use std::time::{Duration, Instant};

use grito_condition_sql::{Event, check, evaluate};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const TOKENS: &[&str] = &[
    "(", ")", ",", "::", ".", "[", "]", ";", "'", "''", "'x'", "E'\\n'", "E'\\u00e9'", "\"payload\"", "payload", "e", "e.payload",
    "event_name", "user_id", "source", "occurred_at", "->", "->>", "#>", "#>>", "?", "?|", "?&", "@>", "<@", "=", "<>", "!=", "<",
    "<=", ">", ">=", "+", "-", "*", "/", "%", "^", "||", "~~", "AND", "OR", "NOT", "IS", "NULL", "TRUE", "FALSE", "UNKNOWN",
    "DISTINCT", "FROM", "IN", "BETWEEN", "LIKE", "ILIKE", "ESCAPE", "ISNULL", "NOTNULL", "CAST", "AS", "int", "text", "jsonb",
    "numeric", "boolean", "date", "timestamptz", "interval", "'14 days'", "now()", "coalesce", "lower", "upper", "length", "trim",
    "both", "leading", "jsonb_array_length", "jsonb_typeof", "array", "select", "exists", "--", "/*", "$1", "0", "1", "-1", "1.5",
    "1e400", "2147483648", "'{a,b}'", "'{\"a\": 1}'", "'[1,2]'", "'abc'", "'%'", "'\\'", "current_date", "current_timestamp",
];

const NOW: i64 = 1_796_414_400_000_000;

/// Parses, checks and evaluates `text`, asserting only that it returns
/// within a time bound (a panic fails the test by itself).
fn exercise(text: &str) {
    let started = Instant::now();
    let _ = check(text, NOW);
    let event = Event {
        event_name: "plan.subscribed",
        user_id: "12121212-1212-1212-1212-121212121212",
        source: "app",
        occurred_at: "2026-12-01T17:54:44.903507Z",
        payload: r#"{"plan": "pro", "a": {"b": [1, "2", null]}, "n": "12"}"#,
    };
    let _ = evaluate(&event, text, NOW);
    // Generous for unoptimized builds; release builds take microseconds.
    assert!(started.elapsed() < Duration::from_millis(250), "took {:?}: {text:?}", started.elapsed());
}

/// Runs the properties on a thread with a stack big enough for unoptimized
/// builds, whose frames are many times larger than in the wasm build.
fn run_with_big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new().stack_size(64 << 20).spawn(f).expect("spawn").join().expect("property failed");
}

#[test]
fn arbitrary_text_never_panics() {
    run_with_big_stack(|| {
        let mut runner = TestRunner::new(Config { cases: 3000, failure_persistence: None, ..Config::default() });
        runner
            .run(&any::<String>(), |text| {
                exercise(&text);
                Ok(())
            })
            .expect("arbitrary text");
    });
}

#[test]
fn token_soup_never_panics() {
    run_with_big_stack(|| {
        let mut runner = TestRunner::new(Config { cases: 5000, failure_persistence: None, ..Config::default() });
        let soup = prop::collection::vec(prop::sample::select(TOKENS), 0..80);
        runner
            .run(&soup, |tokens| {
                exercise(&tokens.join(" "));
                exercise(&tokens.concat());
                Ok(())
            })
            .expect("token soup");
    });
}
