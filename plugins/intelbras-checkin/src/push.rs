//! Reads the device events out of a push body, in any of the forms the
//! terminals send:
//!
//! - multipart (`multipart/x-mixed-replace; boundary=myboundary` or
//!   `multipart/form-data`): text parts hold the events, image parts are skipped;
//! - JSON: `{"Channel":0,"Time":"…","Events":[{"Code":…,"Action":…,"Data":{…}}]}`,
//!   a single `{"Code":…}` object, or an array of them;
//! - text: `Code=AccessControl;action=Pulse;index=0;data={…}` blocks, where
//!   the data JSON may span several lines.

use serde_json::{Map, Value};

use crate::Error;
use crate::multipart;

/// One event the terminal reported, before any decision about it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceEvent {
    /// `AccessControl`, `DoorStatus`, `AlarmLocal`, …
    pub code: String,
    /// `Pulse`, `Start`, `Stop`; empty when absent.
    pub action: String,
    pub data: Map<String, Value>,
    /// The push's `Time` field (device local time), used when the event has no time of its own.
    pub push_time: Option<String>,
}

/// Returns the device events in `body`; an empty list for a heartbeat or an
/// empty push. `content_type` is the request's `Content-Type`, possibly empty.
pub fn device_events(content_type: &str, body: &[u8]) -> Result<Vec<DeviceEvent>, Error> {
    let media_type = multipart::essence(content_type);
    let boundary = multipart::boundary(content_type).or_else(|| sniff_boundary(body));

    match boundary {
        Some(boundary) if media_type.starts_with("multipart/") || media_type.is_empty() || sniff_boundary(body).is_some() => {
            let parts = multipart::parts(body, &boundary);
            if parts.is_empty() {
                return text_events(body);
            }
            let mut events = Vec::new();
            for part in parts {
                let part_type = part.content_type();
                if part_type.starts_with("image/") || part_type == "application/octet-stream" {
                    continue;
                }
                events.extend(text_events(part.body)?);
            }
            Ok(events)
        }
        _ => text_events(body),
    }
}

/// Returns the boundary of a body that starts with a `--boundary` line, for pushes
/// whose `Content-Type` lost its `boundary` parameter.
fn sniff_boundary(body: &[u8]) -> Option<String> {
    let start = body.iter().position(|byte| !byte.is_ascii_whitespace())?;
    let rest = body[start..].strip_prefix(b"--")?;
    let line_end = memchr::memchr(b'\n', rest)?;
    let line = std::str::from_utf8(&rest[..line_end]).ok()?.trim();
    let plausible = !line.is_empty() && line.len() <= 70 && line.bytes().all(|byte| byte.is_ascii_graphic());
    plausible.then(|| line.to_owned())
}

/// Events in one text body or text part.
fn text_events(body: &[u8]) -> Result<Vec<DeviceEvent>, Error> {
    let text = std::str::from_utf8(body).map_err(|error| invalid(format!("the push is not UTF-8 text: {error}")))?;
    let text = text.trim_start_matches('\u{feff}').trim();

    if text.is_empty() || text.eq_ignore_ascii_case("heartbeat") {
        return Ok(Vec::new());
    }
    if text.starts_with('{') || text.starts_with('[') {
        let value: Value = serde_json::from_str(text).map_err(|error| invalid(format!("the push is not valid JSON: {error}")))?;
        return json_events(&value);
    }
    if text.lines().any(|line| starts_with_code(line.trim_start())) {
        return text_form_events(text);
    }
    Err(invalid(format!("the push is neither JSON nor `Code=…;action=…;data=…` text; it starts with `{}`", shorten(text))))
}

fn json_events(value: &Value) -> Result<Vec<DeviceEvent>, Error> {
    match value {
        Value::Array(items) => items.iter().map(|item| json_event(item, None)).collect(),
        Value::Object(object) => {
            let push_time = get(object, "Time").and_then(Value::as_str).map(str::to_owned);
            if let Some(events) = get(object, "Events") {
                let Value::Array(items) = events else {
                    return Err(invalid("the push's `Events` field must be an array".to_owned()));
                };
                return items.iter().map(|item| json_event(item, push_time.clone())).collect();
            }
            if get(object, "Code").is_some() {
                return Ok(vec![json_event(value, None)?]);
            }
            Err(invalid("the JSON push has neither `Events` nor `Code`".to_owned()))
        }
        _ => Err(invalid("the JSON push must be an object or an array".to_owned())),
    }
}

fn json_event(value: &Value, push_time: Option<String>) -> Result<DeviceEvent, Error> {
    let Value::Object(object) = value else {
        return Err(invalid("each entry of `Events` must be an object".to_owned()));
    };
    let code = get(object, "Code").and_then(Value::as_str).ok_or_else(|| invalid("an event has no `Code` string".to_owned()))?;
    let action = get(object, "Action").and_then(Value::as_str).unwrap_or_default();
    let data = match get(object, "Data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(data)) => data.clone(),
        Some(_) => return Err(invalid(format!("the `Data` of a `{code}` event must be an object"))),
    };
    Ok(DeviceEvent { code: code.to_owned(), action: action.to_owned(), data, push_time })
}

/// Parses `Code=…;action=…;index=…;data={…}` blocks. A block runs from a
/// line that starts with `Code=` to the next such line.
fn text_form_events(text: &str) -> Result<Vec<DeviceEvent>, Error> {
    let mut blocks: Vec<String> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if starts_with_code(trimmed) {
            blocks.push(trimmed.to_owned());
        } else if let Some(block) = blocks.last_mut() {
            block.push('\n');
            block.push_str(line);
        }
    }
    blocks.iter().map(|block| text_form_event(block)).collect()
}

fn text_form_event(block: &str) -> Result<DeviceEvent, Error> {
    let mut code = String::new();
    let mut action = String::new();
    let mut data = Map::new();
    let mut rest = block;

    while !rest.is_empty() {
        let (pair, after) = match rest.split_once(';') {
            Some((pair, after)) => (pair, after),
            None => (rest, ""),
        };
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = key.trim();
        if key.eq_ignore_ascii_case("data") {
            // The data JSON runs to the end of the block and may contain `;`.
            let json = rest.split_once('=').map(|(_, json)| json).unwrap_or_default();
            data = parse_data(json, &code)?;
            break;
        }
        if key.eq_ignore_ascii_case("code") {
            code = value.trim().to_owned();
        } else if key.eq_ignore_ascii_case("action") {
            action = value.trim().to_owned();
        }
        rest = after;
    }

    if code.is_empty() {
        return Err(invalid("a `Code=` line has an empty code".to_owned()));
    }
    Ok(DeviceEvent { code, action, data, push_time: None })
}

fn parse_data(json: &str, code: &str) -> Result<Map<String, Value>, Error> {
    let mut values = serde_json::Deserializer::from_str(json.trim()).into_iter::<Value>();
    match values.next() {
        None => Ok(Map::new()),
        Some(Ok(Value::Object(data))) => Ok(data),
        Some(Ok(_)) => Err(invalid(format!("the data of a `{code}` event must be a JSON object"))),
        Some(Err(error)) => Err(invalid(format!("the data of a `{code}` event is not valid JSON: {error}"))),
    }
}

fn starts_with_code(line: &str) -> bool {
    line.get(..5).is_some_and(|prefix| prefix.eq_ignore_ascii_case("code="))
}

/// Looks up `key` in `object`, also in another letter case (`Code`, `code`).
pub fn get<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).or_else(|| object.iter().find(|(name, _)| name.eq_ignore_ascii_case(key)).map(|(_, value)| value))
}

fn shorten(text: &str) -> String {
    let cut: String = text.chars().take(40).collect();
    if cut.len() < text.len() { format!("{cut}…") } else { cut }
}

fn invalid(message: String) -> Error {
    Error { code: "invalid_push", message }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = r#"{"Channel":0,"Time":"2025-09-25 08:01:02","Events":[{"Code":"AccessControl","Action":"Pulse","Index":0,"Data":{"UserID":"1001","Door":0,"Status":1,"ErrorCode":0,"UTC":1758798062}}]}"#;

    #[test]
    fn json_push_yields_its_events() {
        let events = device_events("application/json", INFO.as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].code, "AccessControl");
        assert_eq!(events[0].action, "Pulse");
        assert_eq!(events[0].data["UserID"], "1001");
        assert_eq!(events[0].push_time.as_deref(), Some("2025-09-25 08:01:02"));
    }

    #[test]
    fn multipart_push_skips_images() {
        let body = format!(
            "--myboundary\r\nContent-Type: text/plain\r\nContent-Disposition: form-data; name=\"info\"\r\n\r\n{INFO}\r\n\
             --myboundary\r\nContent-Type: image/jpeg\r\n\r\n\u{1}\u{2}{{not json\r\n--myboundary--\r\n"
        );
        let events = device_events("multipart/x-mixed-replace; boundary=myboundary", body.as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn multipart_without_boundary_parameter_is_sniffed() {
        let body = format!("--myboundary\r\nContent-Type: text/plain\r\n\r\n{INFO}\r\n--myboundary--\r\n");
        let events = device_events("multipart/x-mixed-replace", body.as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn text_form_spans_lines_and_keeps_semicolons() {
        let body = "Code=AccessControl;action=Pulse;index=0;data={\n  \"UserID\" : \"1001\",\n  \"Name\" : \"a;b\"\n}\nCode=DoorStatus;action=Pulse;index=0;data={\"Status\":\"Open\"}\n";
        let events = device_events("text/plain", body.as_bytes()).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].data["Name"], "a;b");
        assert_eq!(events[1].code, "DoorStatus");
    }

    #[test]
    fn heartbeat_and_empty_yield_nothing() {
        assert!(device_events("text/plain", b"Heartbeat").unwrap().is_empty());
        assert!(device_events("", b"  \r\n").unwrap().is_empty());
        assert!(device_events("application/json", br#"{"Channel":0,"Events":[]}"#).unwrap().is_empty());
    }

    #[test]
    fn malformed_pushes_are_rejected() {
        for (content_type, body) in [
            ("application/json", r#"{"Events":[{"Code":"AccessControl","Data":{"UserID":"1"}]"#),
            ("text/plain", "Code=AccessControl;action=Pulse;data={\"UserID\": }"),
            ("text/plain", "hello device"),
            ("application/json", r#"{"Events":{"Code":"AccessControl"}}"#),
            ("application/json", r#"{"Events":[{"Action":"Pulse"}]}"#),
        ] {
            let error = device_events(content_type, body.as_bytes()).unwrap_err();
            assert_eq!(error.code, "invalid_push", "{body}");
        }
    }
}
