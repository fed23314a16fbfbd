//! Decides which device events are check-ins and builds their drafts:
//! the shift (`turno`) and class (`turma`) from the device's local time,
//! the user from the identity map, and an idempotency key that collapses
//! the terminal's repeated pushes.

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value, json};

use crate::config::{Class, Config, Device, Shifts};
use crate::push::{DeviceEvent, get};

/// The event name of a granted entry.
pub const CHECKED_IN: &str = "event.checked_in";
/// The identity-map source for people known to the terminals.
pub const SOURCE: &str = "intelbras";

/// A granted entry read from a device event.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// `UserID`, else `CardNo`: the person's id on the terminal.
    pub external_id: String,
    pub device_user_id: Option<String>,
    pub card_no: Option<String>,
    pub door: i64,
    pub method: Option<i64>,
    pub at: DateTime<Utc>,
}

/// A check-in ready to hand to the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub event_name: &'static str,
    pub user_id: Option<String>,
    /// The external id to resolve later, when `user_id` is none.
    pub external_id: Option<String>,
    /// RFC 3339 in UTC.
    pub occurred_at: String,
    pub payload: Map<String, Value>,
    pub idempotency_key: String,
}

/// Returns the granted entry in `event`, or why `event` is not a check-in.
pub fn granted_entry(event: &DeviceEvent, zone: Tz) -> Result<Entry, String> {
    if !event.code.eq_ignore_ascii_case("AccessControl") {
        return Err(format!("`{}` is not an access event", event.code));
    }
    if !event.action.is_empty() && !event.action.eq_ignore_ascii_case("Pulse") {
        return Err(format!("access event with action `{}` is not an entry", event.action));
    }
    let data = &event.data;
    if let Some(code) = get(data, "ErrorCode").and_then(integer).filter(|code| *code != 0) {
        return Err(format!("access denied (ErrorCode {code})"));
    }
    if let Some(status) = get(data, "Status").filter(|status| !granted_status(status)) {
        return Err(format!("access denied (Status {status})"));
    }
    if let Some(kind) = get(data, "Type").and_then(Value::as_str).filter(|kind| kind.eq_ignore_ascii_case("Exit")) {
        return Err(format!("`{kind}` is a way out, not a check-in"));
    }

    let device_user_id = get(data, "UserID").and_then(text);
    let card_no = get(data, "CardNo").and_then(text);
    let Some(external_id) = device_user_id.clone().or_else(|| card_no.clone()) else {
        return Err("access event names neither UserID nor CardNo".to_owned());
    };
    let Some(at) = event_time(event, zone) else {
        return Err("access event has no UTC, CreateTime or local time".to_owned());
    };

    Ok(Entry {
        external_id,
        device_user_id,
        card_no,
        door: get(data, "Door").and_then(integer).unwrap_or(0),
        method: get(data, "Method").and_then(integer),
        at,
    })
}

/// Builds the check-in draft for `entry` read by `device`. `user_id` comes
/// from the host's identity map; none makes the host park the draft.
pub fn draft(entry: &Entry, device: &Device, config: &Config, user_id: Option<String>) -> Draft {
    let local = entry.at.with_timezone(&device.time_zone);
    let turno = shift(local.time(), &config.shifts);
    let turma = class_at(&config.classes, &device.unidade, local.naive_local(), config.early_minutes);

    let mut payload = Map::new();
    payload.insert("unidade".into(), json!(device.unidade));
    payload.insert("turma".into(), json!(turma));
    payload.insert("turno".into(), json!(turno));
    payload.insert("device_id".into(), json!(device.id));
    payload.insert("door".into(), json!(entry.door));
    payload.insert("method".into(), json!(entry.method));
    payload.insert("card_no".into(), json!(entry.card_no));
    payload.insert("device_user_id".into(), json!(entry.device_user_id));
    payload.insert("device_time".into(), json!(local.to_rfc3339()));

    let external_id = user_id.is_none().then(|| entry.external_id.clone());
    Draft {
        event_name: CHECKED_IN,
        user_id,
        external_id,
        occurred_at: entry.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        payload,
        idempotency_key: format!("{SOURCE}:{}:{}:{}:{}", device.id, entry.door, entry.external_id, entry.at.timestamp()),
    }
}

/// `manhã`, `tarde` or `noite` for a local time of day. Times before the
/// morning start belong to the night shift.
pub fn shift(time: NaiveTime, shifts: &Shifts) -> &'static str {
    if time < shifts.morning || time >= shifts.night {
        "noite"
    } else if time < shifts.afternoon {
        "manhã"
    } else {
        "tarde"
    }
}

/// Returns the class at `unidade` whose window contains `local`, opening
/// `early_minutes` before its start. When several match, the one whose start
/// is nearest wins, and among equals the first in the config.
pub fn class_at(classes: &[Class], unidade: &str, local: NaiveDateTime, early_minutes: u32) -> Option<String> {
    let early = Duration::minutes(i64::from(early_minutes));
    let mut best: Option<(Duration, &Class)> = None;

    for class in classes.iter().filter(|class| class.unidade == unidade) {
        // A check-in may belong to a class that started the day before (one
        // crossing midnight) or that starts just after midnight.
        for offset in [-1, 0, 1] {
            let day = local.date() + Duration::days(offset);
            if !class.weekdays.contains(&day.weekday()) {
                continue;
            }
            let start = day.and_time(class.start);
            let end = if class.end > class.start { day.and_time(class.end) } else { (day + Duration::days(1)).and_time(class.end) };
            if local < start - early || local >= end {
                continue;
            }
            let distance = (local - start).abs();
            if best.is_none_or(|(nearest, _)| distance < nearest) {
                best = Some((distance, class));
            }
        }
    }
    best.map(|(_, class)| class.turma.clone())
}

/// Returns the instant of the event: `UTC`, else `CreateTime` (Unix seconds), else a
/// local `LocaleTime` or the push's `Time` read in the device's zone.
fn event_time(event: &DeviceEvent, zone: Tz) -> Option<DateTime<Utc>> {
    let data = &event.data;
    let epoch = ["UTC", "CreateTime"].into_iter().find_map(|key| get(data, key).and_then(integer).filter(|seconds| *seconds > 0));
    if let Some(seconds) = epoch {
        return DateTime::from_timestamp(seconds, 0);
    }
    let local = get(data, "LocaleTime").and_then(Value::as_str).or(event.push_time.as_deref())?;
    let naive = NaiveDateTime::parse_from_str(local.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
    // A local time repeated by a DST change takes its first instant.
    zone.from_local_datetime(&naive).earliest().map(|time| time.with_timezone(&Utc))
}

/// Status 1 (or `true`) is a granted access; Dahua firmware sends 0 for denied.
fn granted_status(status: &Value) -> bool {
    match status {
        Value::Bool(granted) => *granted,
        other => integer(other) == Some(1),
    }
}

/// An integer sent as a JSON number or as a numeric string.
fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64().or_else(|| number.as_f64().filter(|float| float.fract() == 0.0).map(|float| float as i64)),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// A non-empty id sent as a string or a number.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Weekday;

    use super::*;

    fn hm(hour: u32, minute: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(hour, minute, 0).unwrap()
    }

    fn access(data: Value) -> DeviceEvent {
        DeviceEvent { code: "AccessControl".into(), action: "Pulse".into(), data: data.as_object().unwrap().clone(), push_time: None }
    }

    fn local(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    fn class(turma: &str, weekdays: &[Weekday], start: NaiveTime, end: NaiveTime) -> Class {
        Class { unidade: "Centro".into(), turma: turma.into(), weekdays: weekdays.to_vec(), start, end }
    }

    #[test]
    fn shift_boundaries_are_inclusive_starts() {
        let shifts = Shifts::default();
        for (time, expected) in [
            (hm(0, 0), "noite"),
            (hm(4, 59), "noite"),
            (hm(5, 0), "manhã"),
            (hm(11, 59), "manhã"),
            (hm(12, 0), "tarde"),
            (hm(17, 59), "tarde"),
            (hm(18, 0), "noite"),
            (hm(23, 59), "noite"),
        ] {
            assert_eq!(shift(time, &shifts), expected, "{time}");
        }
    }

    #[test]
    fn granted_entry_reads_device_fields() {
        let entry = granted_entry(
            &access(json!({"UserID": "1001", "CardNo": "A1B2C3D4", "Door": 1, "Method": 1, "Status": 1, "ErrorCode": 0, "Type": "Entry", "UTC": 1758798062})),
            chrono_tz::America::Sao_Paulo,
        )
        .unwrap();
        assert_eq!(entry.external_id, "1001");
        assert_eq!(entry.card_no.as_deref(), Some("A1B2C3D4"));
        assert_eq!(entry.door, 1);
        assert_eq!(entry.method, Some(1));
        assert_eq!(entry.at.to_rfc3339(), "2025-09-25T11:01:02+00:00");
    }

    #[test]
    fn card_number_stands_in_for_missing_user() {
        let entry = granted_entry(&access(json!({"UserID": "", "CardNo": "A1B2C3D4", "UTC": 1758798062})), chrono_tz::UTC).unwrap();
        assert_eq!(entry.external_id, "A1B2C3D4");
        assert_eq!(entry.device_user_id, None);
    }

    #[test]
    fn denied_and_other_events_are_not_entries() {
        let zone = chrono_tz::America::Sao_Paulo;
        for (event, reason) in [
            (access(json!({"UserID": "1", "ErrorCode": 16, "Status": 0, "UTC": 1})), "ErrorCode 16"),
            (access(json!({"UserID": "1", "Status": 0, "UTC": 1})), "Status 0"),
            (access(json!({"UserID": "1", "Status": false, "UTC": 1})), "Status false"),
            (access(json!({"UserID": "1", "Type": "Exit", "UTC": 1})), "way out"),
            (access(json!({"UTC": 1})), "neither UserID nor CardNo"),
            (access(json!({"UserID": "1"})), "no UTC"),
            (DeviceEvent { code: "DoorStatus".into(), action: "Pulse".into(), data: Map::new(), push_time: None }, "not an access event"),
            (DeviceEvent { code: "AccessControl".into(), action: "Start".into(), data: Map::new(), push_time: None }, "action `Start`"),
        ] {
            let error = granted_entry(&event, zone).unwrap_err();
            assert!(error.contains(reason), "{error}");
        }
    }

    #[test]
    fn local_push_time_is_read_in_device_zone() {
        let mut event = access(json!({"UserID": "1"}));
        event.push_time = Some("2025-09-25 08:01:02".into());
        let entry = granted_entry(&event, chrono_tz::America::Sao_Paulo).unwrap();
        assert_eq!(entry.at.to_rfc3339(), "2025-09-25T11:01:02+00:00");
    }

    #[test]
    fn class_window_opens_early() {
        let classes = [class("Capoeira", &[Weekday::Thu], hm(8, 0), hm(9, 30))];
        // 2025-09-25 is a Thursday.
        assert_eq!(class_at(&classes, "Centro", local("2025-09-25 07:45"), 15).as_deref(), Some("Capoeira"));
        assert_eq!(class_at(&classes, "Centro", local("2025-09-25 07:44"), 15), None);
        assert_eq!(class_at(&classes, "Centro", local("2025-09-25 09:29"), 15).as_deref(), Some("Capoeira"));
        assert_eq!(class_at(&classes, "Centro", local("2025-09-25 09:30"), 15), None);
        assert_eq!(class_at(&classes, "Centro", local("2025-09-26 08:00"), 15), None, "Friday");
        assert_eq!(class_at(&classes, "Norte", local("2025-09-25 08:00"), 15), None, "other unit");
    }

    #[test]
    fn class_crossing_midnight_keeps_its_start_day() {
        let classes = [class("Vigília", &[Weekday::Fri], hm(22, 0), hm(1, 0))];
        assert_eq!(class_at(&classes, "Centro", local("2025-09-26 23:30"), 0).as_deref(), Some("Vigília"));
        assert_eq!(class_at(&classes, "Centro", local("2025-09-27 00:30"), 0).as_deref(), Some("Vigília"), "Saturday after midnight");
        assert_eq!(class_at(&classes, "Centro", local("2025-09-28 00:30"), 0), None, "Sunday after midnight");
    }

    #[test]
    fn early_window_reaches_across_midnight() {
        let classes = [class("Madrugada", &[Weekday::Sat], hm(0, 10), hm(2, 0))];
        assert_eq!(class_at(&classes, "Centro", local("2025-09-26 23:58"), 15).as_deref(), Some("Madrugada"));
    }

    #[test]
    fn nearest_start_wins_between_overlapping_classes() {
        let classes = [
            class("Judô", &[Weekday::Thu], hm(7, 0), hm(9, 0)),
            class("Capoeira", &[Weekday::Thu], hm(8, 0), hm(10, 0)),
        ];
        assert_eq!(class_at(&classes, "Centro", local("2025-09-25 07:55"), 15).as_deref(), Some("Capoeira"));
        assert_eq!(class_at(&classes, "Centro", local("2025-09-25 07:20"), 15).as_deref(), Some("Judô"));
    }
}
