#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = grito_condition_sql::check(text, 0);
        let event = grito_condition_sql::Event {
            event_name: "plan.subscribed",
            user_id: "12121212-1212-1212-1212-121212121212",
            source: "app",
            occurred_at: "2026-12-01T17:54:44Z",
            payload: r#"{"plan": "pro", "a": {"b": [1, "2", null]}}"#,
        };
        let _ = grito_condition_sql::evaluate(&event, text, 0);
    }
});
