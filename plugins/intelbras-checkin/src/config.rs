//! The plugin's config file (`intelbras.toml` or `intelbras.json` beside the
//! `.wasm`): the device registry, the time zone, the shift boundaries and
//! the class schedule. The host hands it over as JSON text.

use chrono::{NaiveTime, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::Error;

/// Time zone of units that set none.
pub const DEFAULT_TIME_ZONE: Tz = chrono_tz::America::Sao_Paulo;
/// Minutes before a class starts from which a check-in counts for that class.
pub const DEFAULT_EARLY_MINUTES: u32 = 15;

/// The parsed and checked config.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub devices: Vec<Device>,
    pub shifts: Shifts,
    pub classes: Vec<Class>,
    pub early_minutes: u32,
}

/// One access-control terminal.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// `device_id` in the event payload.
    pub id: String,
    pub unidade: String,
    /// Matched against the `SN` (or `sn`, `serial`) query parameter.
    pub serial: Option<String>,
    /// Matched against the name of the `INGEST_TOKENS` entry the host
    /// accepted, which it passes in the `x-grito-token-name` header.
    pub token_name: Option<String>,
    pub time_zone: Tz,
}

/// Local start times of the three shifts. A time before `morning` belongs
/// to the night shift of the day before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shifts {
    pub morning: NaiveTime,
    pub afternoon: NaiveTime,
    pub night: NaiveTime,
}

impl Default for Shifts {
    fn default() -> Self {
        Self { morning: hm(5, 0), afternoon: hm(12, 0), night: hm(18, 0) }
    }
}

/// A class (`turma`) that meets at a unit on some weekdays. When `end` is
/// not after `start` the class crosses midnight and ends the next day.
#[derive(Debug, Clone, PartialEq)]
pub struct Class {
    pub unidade: String,
    pub turma: String,
    pub weekdays: Vec<Weekday>,
    pub start: NaiveTime,
    pub end: NaiveTime,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    time_zone: Option<String>,
    #[serde(default)]
    devices: Vec<RawDevice>,
    shifts: Option<RawShifts>,
    #[serde(default)]
    classes: Vec<RawClass>,
    early_minutes: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    device_id: String,
    unidade: String,
    serial: Option<String>,
    token_name: Option<String>,
    time_zone: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShifts {
    morning: Option<String>,
    afternoon: Option<String>,
    night: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClass {
    unidade: String,
    turma: String,
    weekdays: Vec<String>,
    start: String,
    end: String,
}

impl Config {
    /// Parses the config JSON text and checks every field, naming the first
    /// invalid one.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = if text.trim().is_empty() { "{}" } else { text };
        let raw: RawConfig = serde_json::from_str(text).map_err(|error| invalid(format!("the config is invalid: {error}")))?;

        let default_zone = match &raw.time_zone {
            Some(name) => parse_zone(name, "time_zone")?,
            None => DEFAULT_TIME_ZONE,
        };
        let devices = raw
            .devices
            .into_iter()
            .enumerate()
            .map(|(index, device)| parse_device(index, device, default_zone))
            .collect::<Result<Vec<_>, _>>()?;
        check_unique_devices(&devices)?;
        let shifts = parse_shifts(raw.shifts)?;
        let classes = raw.classes.into_iter().enumerate().map(|(index, class)| parse_class(index, class)).collect::<Result<Vec<_>, _>>()?;

        Ok(Self { devices, shifts, classes, early_minutes: raw.early_minutes.unwrap_or(DEFAULT_EARLY_MINUTES) })
    }
}

fn parse_device(index: usize, raw: RawDevice, default_zone: Tz) -> Result<Device, Error> {
    let field = |name: &str| format!("devices[{index}].{name}");
    let id = non_empty(raw.device_id, &field("device_id"))?;
    let unidade = non_empty(raw.unidade, &field("unidade"))?;
    let time_zone = match &raw.time_zone {
        Some(name) => parse_zone(name, &field("time_zone"))?,
        None => default_zone,
    };
    let serial = raw.serial.map(|serial| non_empty(serial, &field("serial"))).transpose()?;
    let token_name = raw.token_name.map(|name| non_empty(name, &field("token_name"))).transpose()?;
    Ok(Device { id, unidade, serial, token_name, time_zone })
}

fn check_unique_devices(devices: &[Device]) -> Result<(), Error> {
    for (index, device) in devices.iter().enumerate() {
        for earlier in &devices[..index] {
            if earlier.id == device.id {
                return Err(invalid(format!("devices[{index}].device_id `{}` is used by two devices", device.id)));
            }
            if device.serial.is_some() && earlier.serial == device.serial {
                return Err(invalid(format!("devices[{index}].serial `{}` is used by two devices", device.serial.as_deref().unwrap_or_default())));
            }
            if device.token_name.is_some() && earlier.token_name == device.token_name {
                return Err(invalid(format!(
                    "devices[{index}].token_name `{}` is used by two devices",
                    device.token_name.as_deref().unwrap_or_default()
                )));
            }
        }
    }
    Ok(())
}

fn parse_shifts(raw: Option<RawShifts>) -> Result<Shifts, Error> {
    let defaults = Shifts::default();
    let Some(raw) = raw else { return Ok(defaults) };
    let time = |text: Option<String>, field: &str, default: NaiveTime| match text {
        Some(text) => parse_time(&text, field),
        None => Ok(default),
    };
    let shifts = Shifts {
        morning: time(raw.morning, "shifts.morning", defaults.morning)?,
        afternoon: time(raw.afternoon, "shifts.afternoon", defaults.afternoon)?,
        night: time(raw.night, "shifts.night", defaults.night)?,
    };
    if !(shifts.morning < shifts.afternoon && shifts.afternoon < shifts.night) {
        return Err(invalid("shifts must start in the order morning < afternoon < night within one day".to_owned()));
    }
    Ok(shifts)
}

fn parse_class(index: usize, raw: RawClass) -> Result<Class, Error> {
    let field = |name: &str| format!("classes[{index}].{name}");
    let unidade = non_empty(raw.unidade, &field("unidade"))?;
    let turma = non_empty(raw.turma, &field("turma"))?;
    if raw.weekdays.is_empty() {
        return Err(invalid(format!("{} is empty: list the days the class meets, for example [\"mon\", \"wed\"]", field("weekdays"))));
    }
    let weekdays = raw.weekdays.iter().map(|day| parse_weekday(day, &field("weekdays"))).collect::<Result<Vec<_>, _>>()?;
    let start = parse_time(&raw.start, &field("start"))?;
    let end = parse_time(&raw.end, &field("end"))?;
    if start == end {
        return Err(invalid(format!("{} and {} are equal: a class needs a time window", field("start"), field("end"))));
    }
    Ok(Class { unidade, turma, weekdays, start, end })
}

fn parse_zone(name: &str, field: &str) -> Result<Tz, Error> {
    name.parse().map_err(|_| invalid(format!("{field} `{name}` is not an IANA time zone such as America/Sao_Paulo")))
}

fn parse_time(text: &str, field: &str) -> Result<NaiveTime, Error> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M").map_err(|_| invalid(format!("{field} `{text}` is not a time of day in HH:MM form such as 07:30")))
}

/// English (`mon`, `monday`) or Portuguese (`seg`, `segunda`, `segunda-feira`) day names.
fn parse_weekday(text: &str, field: &str) -> Result<Weekday, Error> {
    let lower = text.trim().to_lowercase();
    let day = match lower.trim_end_matches("-feira") {
        "mon" | "monday" | "seg" | "segunda" => Weekday::Mon,
        "tue" | "tuesday" | "ter" | "terça" | "terca" => Weekday::Tue,
        "wed" | "wednesday" | "qua" | "quarta" => Weekday::Wed,
        "thu" | "thursday" | "qui" | "quinta" => Weekday::Thu,
        "fri" | "friday" | "sex" | "sexta" => Weekday::Fri,
        "sat" | "saturday" | "sáb" | "sab" | "sábado" | "sabado" => Weekday::Sat,
        "sun" | "sunday" | "dom" | "domingo" => Weekday::Sun,
        _ => return Err(invalid(format!("{field} has `{text}`, which is not a weekday such as mon or seg"))),
    };
    Ok(day)
}

fn non_empty(text: String, field: &str) -> Result<String, Error> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid(format!("{field} is empty")));
    }
    Ok(trimmed.to_owned())
}

fn hm(hour: u32, minute: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(hour, minute, 0).expect("a valid time of day")
}

fn invalid(message: String) -> Error {
    Error { code: "invalid_config", message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_takes_defaults() {
        let config = Config::parse("{}").unwrap();
        assert!(config.devices.is_empty());
        assert_eq!(config.shifts, Shifts::default());
        assert_eq!(config.early_minutes, DEFAULT_EARLY_MINUTES);
    }

    #[test]
    fn device_inherits_default_zone() {
        let config = Config::parse(
            r#"{"time_zone": "America/Manaus", "devices": [
                {"device_id": "a", "unidade": "Centro"},
                {"device_id": "b", "unidade": "Norte", "time_zone": "America/Recife"}]}"#,
        )
        .unwrap();
        assert_eq!(config.devices[0].time_zone, chrono_tz::America::Manaus);
        assert_eq!(config.devices[1].time_zone, chrono_tz::America::Recife);
    }

    #[test]
    fn portuguese_weekdays_parse() {
        let config = Config::parse(
            r#"{"classes": [{"unidade": "Centro", "turma": "Capoeira", "weekdays": ["seg", "Quarta-feira", "sáb", "sun"], "start": "07:30", "end": "09:00"}]}"#,
        )
        .unwrap();
        assert_eq!(config.classes[0].weekdays, [Weekday::Mon, Weekday::Wed, Weekday::Sat, Weekday::Sun]);
    }

    #[test]
    fn invalid_fields_are_named() {
        for (text, expected) in [
            (r#"{"time_zone": "Brasil/Centro"}"#, "time_zone `Brasil/Centro`"),
            (r#"{"devices": [{"device_id": " ", "unidade": "Centro"}]}"#, "devices[0].device_id is empty"),
            (r#"{"devices": [{"device_id": "a", "unidade": "C"}, {"device_id": "a", "unidade": "D"}]}"#, "devices[1].device_id `a` is used by two"),
            (r#"{"shifts": {"morning": "13:00"}}"#, "morning < afternoon < night"),
            (r#"{"shifts": {"night": "6pm"}}"#, "shifts.night `6pm`"),
            (r#"{"classes": [{"unidade": "C", "turma": "T", "weekdays": ["funday"], "start": "07:00", "end": "08:00"}]}"#, "`funday`"),
            (r#"{"classes": [{"unidade": "C", "turma": "T", "weekdays": [], "start": "07:00", "end": "08:00"}]}"#, "classes[0].weekdays is empty"),
            (r#"{"classes": [{"unidade": "C", "turma": "T", "weekdays": ["mon"], "start": "07:00", "end": "07:00"}]}"#, "are equal"),
            (r#"{"device": []}"#, "unknown field `device`"),
        ] {
            let error = Config::parse(text).unwrap_err();
            assert_eq!(error.code, "invalid_config", "{text}");
            assert!(error.message.contains(expected), "{text}: {}", error.message);
        }
    }
}
