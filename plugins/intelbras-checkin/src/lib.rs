//! The `intelbras` normalizer: turns what Intelbras access-control terminals
//! (SS 1530 / SS 3530 / SS 5530 families, Dahua firmware) push to an event
//! server into `event.checked_in` drafts with payload
//! `{unidade, turma, turno, device_id, door, method, card_no, device_user_id, device_time}`.
//!
//! Only granted entries become check-ins. Denied attempts, exits, door
//! status, alarms and heartbeats produce nothing and are logged at debug
//! level. The logic here is plain Rust, tested natively; `wasm.rs` is the
//! WIT glue, compiled only for wasm32.

mod checkin;
mod config;
mod multipart;
mod push;

#[cfg(target_arch = "wasm32")]
mod wasm;

pub use checkin::{CHECKED_IN, Draft, SOURCE};
pub use config::{Config, Device};

/// The plugin name, and so the route `/ingest/intelbras`.
pub const PLUGIN_NAME: &str = "intelbras";
/// The header in which the host names the `INGEST_TOKENS` entry that matched.
pub const TOKEN_NAME_HEADER: &str = "x-grito-token-name";

/// An error returned to the host: a stable code and a message naming the cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: &'static str,
    pub message: String,
}

/// The inbound request, as the host hands it over.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    /// Raw query string without `?`.
    pub query: &'a str,
    /// Header names in lowercase.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Request<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// Log levels of the host's `log` import that this plugin uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Warn,
}

/// The host imports: logging and identity look-up.
pub trait Host {
    fn log(&mut self, level: Level, message: &str);
    /// Returns the Grito user id mapped to `(source, external_id)`, if any.
    fn lookup_identity(&mut self, source: &str, external_id: &str) -> Option<String>;
}

/// Turns one push into check-in drafts.
pub fn normalize(request: &Request, config_text: &str, host: &mut dyn Host) -> Result<Vec<Draft>, Error> {
    let config = Config::parse(config_text)?;
    let device = find_device(&config, request)?;
    let content_type = request.header("content-type").unwrap_or_default();
    let events = push::device_events(content_type, request.body)?;
    if events.is_empty() {
        host.log(Level::Debug, &format!("device {}: push without events (heartbeat)", device.id));
    }

    let mut drafts = Vec::new();
    for event in &events {
        match checkin::granted_entry(event, device.time_zone) {
            Ok(entry) => {
                let user_id = host.lookup_identity(SOURCE, &entry.external_id);
                drafts.push(checkin::draft(&entry, device, &config, user_id));
            }
            Err(reason) => host.log(Level::Debug, &format!("device {}: skipped {} event: {reason}", device.id, event.code)),
        }
    }
    Ok(drafts)
}

/// Finds the device that sent the request: by the token name the host
/// passes, else by the `SN` (or `sn`, `serial`) query parameter, else by a
/// `device` query parameter naming a `device_id`. A config with one device
/// accepts requests that name no device.
pub fn find_device<'c>(config: &'c Config, request: &Request) -> Result<&'c Device, Error> {
    let token_name = request.header(TOKEN_NAME_HEADER).filter(|name| !name.is_empty());
    let parameters = query_pairs(request.query);
    let parameter = |names: &[&str]| parameters.iter().find(|(key, value)| names.contains(&key.as_str()) && !value.is_empty()).map(|(_, value)| value.as_str());
    let serial = parameter(&["SN", "sn", "serial"]);
    let device_id = parameter(&["device"]);

    let found = token_name
        .and_then(|name| config.devices.iter().find(|device| device.token_name.as_deref() == Some(name)))
        .or_else(|| serial.and_then(|serial| config.devices.iter().find(|device| device.serial.as_deref().is_some_and(|known| known.eq_ignore_ascii_case(serial)))))
        .or_else(|| device_id.and_then(|id| config.devices.iter().find(|device| device.id == id)));
    if let Some(device) = found {
        return Ok(device);
    }
    if token_name.is_none() && serial.is_none() && device_id.is_none() && config.devices.len() == 1 {
        return Ok(&config.devices[0]);
    }

    let given: Vec<String> = [("token name", token_name), ("SN", serial), ("device", device_id)]
        .into_iter()
        .filter_map(|(label, value)| value.map(|value| format!("{label} `{value}`")))
        .collect();
    let message = if config.devices.is_empty() {
        "the config lists no devices: add a [[devices]] entry with device_id and unidade".to_owned()
    } else if given.is_empty() {
        "the request names no device: add ?SN=<serial> or ?device=<device_id> to the URL set on the terminal".to_owned()
    } else {
        format!("no device in the config matches {}", given.join(", "))
    };
    Err(Error { code: "unknown_device", message })
}

/// Splits a query string into decoded `(name, value)` pairs.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => decoded.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).ok();
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        decoded.push(byte);
                        index += 2;
                    }
                    None => decoded.push(b'%'),
                }
            }
            byte => decoded.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests;
