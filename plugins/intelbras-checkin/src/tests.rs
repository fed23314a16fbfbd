//! End-to-end tests of `normalize` over the device pushes in
//! `tests/fixtures/intelbras/`, with the config file the ingest tests use.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;

const CONFIG_TOML: &str = include_str!("../../../tests/fixtures/intelbras/config.toml");
const MULTIPART: &str = "multipart/x-mixed-replace; boundary=myboundary";

/// A host double: records log lines and maps only the identities it was given.
#[derive(Default)]
struct FakeHost {
    identities: HashMap<String, String>,
    logs: Vec<(Level, String)>,
}

impl Host for FakeHost {
    fn log(&mut self, level: Level, message: &str) {
        self.logs.push((level, message.to_owned()));
    }

    fn lookup_identity(&mut self, source: &str, external_id: &str) -> Option<String> {
        assert_eq!(source, "intelbras");
        self.identities.get(external_id).cloned()
    }
}

fn config_json() -> String {
    let table: toml::Table = CONFIG_TOML.parse().unwrap();
    serde_json::to_string(&table).unwrap()
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../../tests/fixtures/intelbras/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("cannot read {path}: {error}"))
}

fn run(query: &str, content_type: &str, body: &[u8], host: &mut FakeHost) -> Result<Vec<Draft>, Error> {
    let headers = vec![("content-type".to_owned(), content_type.to_owned())];
    let request = Request { query, headers: &headers, body };
    normalize(&request, &config_json(), host)
}

fn known_host() -> FakeHost {
    let mut host = FakeHost::default();
    host.identities.insert("1001".into(), "2f1c7a4e-8d1b-4c5e-9a7f-0b6d3e2c1a90".into());
    host
}

#[test]
fn single_push_becomes_one_check_in() {
    let mut host = known_host();
    let drafts = run("SN=SS5530CENTRO01", MULTIPART, &fixture("single.multipart"), &mut host).unwrap();

    assert_eq!(drafts.len(), 1);
    let draft = &drafts[0];
    assert_eq!(draft.event_name, "event.checked_in");
    assert_eq!(draft.user_id.as_deref(), Some("2f1c7a4e-8d1b-4c5e-9a7f-0b6d3e2c1a90"));
    assert_eq!(draft.external_id, None);
    assert_eq!(draft.occurred_at, "2025-09-25T11:01:02Z");
    assert_eq!(draft.idempotency_key, "intelbras:centro-catraca-1:0:1001:1758798062");
    assert_eq!(
        Value::Object(draft.payload.clone()),
        json!({
            "unidade": "Centro",
            "turma": "Capoeira Infantil",
            "turno": "manhã",
            "device_id": "centro-catraca-1",
            "door": 0,
            "method": 1,
            "card_no": "A1B2C3D4",
            "device_user_id": "1001",
            "device_time": "2025-09-25T08:01:02-03:00"
        })
    );
}

#[test]
fn batch_with_image_keeps_granted_entries() {
    let mut host = known_host();
    let drafts = run("SN=SS5530CENTRO01", MULTIPART, &fixture("batch-with-image.multipart"), &mut host).unwrap();

    let users: Vec<&str> = drafts.iter().map(|draft| draft.payload["device_user_id"].as_str().unwrap()).collect();
    assert_eq!(users, ["1001", "1002"]);
    assert_eq!(drafts[1].user_id, None, "1002 is not in the identity map");
    assert_eq!(drafts[1].external_id.as_deref(), Some("1002"));
    let denied = host.logs.iter().find(|(_, line)| line.contains("ErrorCode 16"));
    assert_eq!(denied.map(|(level, _)| *level), Some(Level::Debug), "{:?}", host.logs);
}

#[test]
fn text_form_push_becomes_check_in() {
    let drafts = run("SN=SS5530CENTRO01", "text/plain", &fixture("text-form.txt"), &mut known_host()).unwrap();

    assert_eq!(drafts.len(), 1);
    assert_eq!(drafts[0].payload["device_user_id"], "1004");
    assert_eq!(drafts[0].payload["card_no"], "D4E5F6A7");
    assert_eq!(drafts[0].payload["device_time"], "2025-09-25T08:11:02-03:00");
}

#[test]
fn denied_door_and_heartbeat_give_nothing() {
    for (name, content_type) in [("denied.json", "application/json"), ("door-status.txt", "text/plain"), ("heartbeat.txt", "text/plain")] {
        let mut host = known_host();
        let drafts = run("SN=SS5530CENTRO01", content_type, &fixture(name), &mut host).unwrap();
        assert!(drafts.is_empty(), "{name}: {drafts:?}");
        assert!(host.logs.iter().all(|(level, _)| *level == Level::Debug), "{name}: {:?}", host.logs);
        assert_eq!(host.logs.len(), 1, "{name}: one debug line per push: {:?}", host.logs);
    }
}

#[test]
fn malformed_json_is_invalid_push() {
    let error = run("SN=SS5530CENTRO01", "application/json", &fixture("malformed.json"), &mut known_host()).unwrap_err();
    assert_eq!(error.code, "invalid_push");
    assert!(error.message.contains("not valid JSON"), "{}", error.message);
}

#[test]
fn unknown_device_is_rejected() {
    let error = run("SN=NOPE", "application/json", &fixture("unknown-user.json"), &mut known_host()).unwrap_err();
    assert_eq!(error.code, "unknown_device");
    assert!(error.message.contains("SN `NOPE`"), "{}", error.message);

    let error = run("", "application/json", &fixture("unknown-user.json"), &mut known_host()).unwrap_err();
    assert!(error.message.contains("names no device"), "{}", error.message);
}

#[test]
fn token_name_header_selects_device() {
    let headers = vec![("x-grito-token-name".to_owned(), "centro".to_owned())];
    let body = fixture("denied.json");
    let request = Request { query: "", headers: &headers, body: &body };
    let config = Config::parse(&config_json()).unwrap();
    assert_eq!(find_device(&config, &request).unwrap().id, "centro-catraca-1");
}

#[test]
fn device_parameter_and_encoded_serial_select_device() {
    let config = Config::parse(&config_json()).unwrap();
    for query in ["device=norte-porta-1", "token=x&SN=ss3530norte01", "sn=SS3530%4EORTE01"] {
        let request = Request { query, headers: &[], body: b"" };
        assert_eq!(find_device(&config, &request).unwrap().id, "norte-porta-1", "{query}");
    }
}

#[test]
fn unknown_user_keeps_identity_for_parking() {
    let drafts = run("SN=SS5530CENTRO01", "application/json", &fixture("unknown-user.json"), &mut known_host()).unwrap();

    assert_eq!(drafts[0].user_id, None);
    assert_eq!(drafts[0].external_id.as_deref(), Some("9090"));
}

#[test]
fn repeated_push_gives_same_idempotency_key() {
    let body = fixture("single.multipart");
    let first = run("SN=SS5530CENTRO01", MULTIPART, &body, &mut known_host()).unwrap();
    let second = run("SN=SS5530CENTRO01", MULTIPART, &body, &mut known_host()).unwrap();
    assert_eq!(first[0].idempotency_key, second[0].idempotency_key);
}

#[test]
fn evening_entry_is_night_shift_class() {
    let drafts = run("SN=SS5530CENTRO01", "application/json", &fixture("evening.json"), &mut known_host()).unwrap();
    assert_eq!(drafts[0].payload["turno"], "noite");
    assert_eq!(drafts[0].payload["turma"], "Jiu-Jitsu Adulto");
}

#[test]
fn unit_time_zone_moves_shift_and_class() {
    // 2025-09-25 08:01:02 in São Paulo is 07:01:02 in Manaus.
    let drafts = run("SN=SS3530NORTE01", MULTIPART, &fixture("single.multipart"), &mut known_host()).unwrap();
    assert_eq!(drafts[0].payload["device_time"], "2025-09-25T07:01:02-04:00");
    assert_eq!(drafts[0].payload["turma"], "Reforço Escolar");
    assert_eq!(drafts[0].payload["unidade"], "Norte");
}

#[test]
fn utc_midnight_is_previous_local_day() {
    // 2025-09-26 02:30 UTC is Thursday 23:30 in São Paulo: night shift, and
    // no Friday class applies.
    let body = json!({"Events": [{"Code": "AccessControl", "Action": "Pulse", "Data": {"UserID": "1001", "Status": 1, "ErrorCode": 0, "UTC": 1758853800}}]});
    let drafts = run("SN=SS5530CENTRO01", "application/json", body.to_string().as_bytes(), &mut known_host()).unwrap();
    assert_eq!(drafts[0].payload["device_time"], "2025-09-25T23:30:00-03:00");
    assert_eq!(drafts[0].payload["turno"], "noite");
    assert_eq!(drafts[0].payload["turma"], Value::Null);
}

#[test]
fn shift_boundary_follows_local_clock() {
    // São Paulo is UTC-3: 14:59:59/15:00:00 UTC straddle noon, 07:59:59/08:00:00 UTC straddle 05:00.
    for (utc, expected) in [(1758812399, "manhã"), (1758812400, "tarde"), (1758787199, "noite"), (1758787200, "manhã")] {
        let body = json!({"Events": [{"Code": "AccessControl", "Data": {"UserID": "1001", "UTC": utc}}]});
        let drafts = run("SN=SS5530CENTRO01", "application/json", body.to_string().as_bytes(), &mut known_host()).unwrap();
        assert_eq!(drafts[0].payload["turno"], expected, "UTC {utc}");
    }
}

#[test]
fn invalid_config_is_reported() {
    let headers = vec![];
    let request = Request { query: "", headers: &headers, body: b"" };
    let error = normalize(&request, r#"{"devices": [{"device_id": "a"}]}"#, &mut FakeHost::default()).unwrap_err();
    assert_eq!(error.code, "invalid_config");
    assert!(error.message.contains("unidade"), "{}", error.message);
}

#[test]
fn historical_daylight_saving_is_applied() {
    // São Paulo kept daylight saving time (UTC-2) until February 2019:
    // 2018-12-06 10:00 UTC was 08:00 local, a Thursday morning class.
    let body = json!({"Events": [{"Code": "AccessControl", "Data": {"UserID": "1001", "UTC": 1544090400}}]});
    let drafts = run("SN=SS5530CENTRO01", "application/json", body.to_string().as_bytes(), &mut known_host()).unwrap();
    assert_eq!(drafts[0].payload["device_time"], "2018-12-06T08:00:00-02:00");
    assert_eq!(drafts[0].payload["turma"], "Capoeira Infantil");
}
