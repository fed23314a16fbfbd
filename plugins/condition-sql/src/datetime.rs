//! Dates, timestamps and intervals with PostgreSQL's input formats (the
//! common ISO 8601 and RFC 3339 ones), output formats (`DateStyle` ISO) and
//! arithmetic, for a session whose `TimeZone` is UTC.
//!
//! Timestamps are microseconds since 1970-01-01 00:00:00 UTC, with
//! `i64::MAX` and `i64::MIN` for `infinity` and `-infinity`. Dates are days
//! since 1970-01-01, with `i32::MAX` and `i32::MIN` for the infinities.

use std::cmp::Ordering;

pub const USECS_PER_SEC: i64 = 1_000_000;
pub const USECS_PER_DAY: i64 = 86_400 * USECS_PER_SEC;
pub const TS_INFINITY: i64 = i64::MAX;
pub const TS_NEG_INFINITY: i64 = i64::MIN;
pub const DATE_INFINITY: i32 = i32::MAX;
pub const DATE_NEG_INFINITY: i32 = i32::MIN;

/// The last finite timestamp, in year 294247. PostgreSQL's own limit,
/// 294276-12-31, does not fit in microseconds since 1970 as an i64.
const MAX_TIMESTAMP: i64 = i64::MAX - 1;
/// The first valid timestamp is 4714-11-24 BC; years before 1 AD are not
/// accepted on input here, so year 1 is the practical lower bound.
const MIN_TIMESTAMP: i64 = -210_866_803_200_000_000;

/// Converts a proleptic Gregorian date to days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Converts days since 1970-01-01 to (year, month, day).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
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

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// The fields of a parsed date/time string.
#[derive(Debug, Clone, Copy)]
pub enum Parsed {
    /// Local date and time in microseconds since the epoch, plus the UTC
    /// offset in seconds when the text named one.
    At { local: i64, offset: Option<i64> },
    Infinity,
    NegInfinity,
}

fn out_of_range(text: &str) -> String {
    format!("date/time field value out of range: \"{text}\"")
}

/// Parses a date, timestamp or timestamptz string. Accepted forms:
/// `YYYY-MM-DD`, optionally followed by `T` or spaces and `HH:MM[:SS[.f]]`,
/// optionally followed by `Z`, `UTC`, `GMT` or an offset `±HH[:MM[:SS]]` /
/// `±HHMM`; and the special words `epoch`, `infinity`, `-infinity`, `now`,
/// `today`, `tomorrow`, `yesterday`.
pub fn parse_datetime(text: &str, type_name: &str, now: i64) -> Result<Parsed, String> {
    let invalid = || format!("invalid input syntax for type {type_name}: \"{text}\"");
    // PostgreSQL's ParseDateTime skips punctuation it has no use for, so
    // `["2024-01-01"]` is a valid date. Only leading and trailing punctuation
    // is skipped here.
    // NOTE: PostgreSQL accepts many more forms (`Jan 1 2024`, `1/2/2024`,
    // zone names such as `America/Sao_Paulo`); this parser rejects them.
    let skip = |c: char| c.is_ascii_whitespace() || (c.is_ascii_punctuation() && !"+-.:".contains(c));
    let s = text.trim_matches(skip);
    let lower = s.to_ascii_lowercase();
    let today = now.div_euclid(USECS_PER_DAY) * USECS_PER_DAY;
    match lower.as_str() {
        "epoch" => return Ok(Parsed::At { local: 0, offset: Some(0) }),
        "infinity" | "+infinity" => return Ok(Parsed::Infinity),
        "-infinity" => return Ok(Parsed::NegInfinity),
        "now" => return Ok(Parsed::At { local: now, offset: Some(0) }),
        "today" => return Ok(Parsed::At { local: today, offset: None }),
        "tomorrow" => return Ok(Parsed::At { local: today + USECS_PER_DAY, offset: None }),
        "yesterday" => return Ok(Parsed::At { local: today - USECS_PER_DAY, offset: None }),
        _ => {}
    }
    let b = lower.as_bytes();
    let mut i = 0;
    let read_num = |i: &mut usize, min: usize, max: usize| -> Option<i64> {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() && *i - start < max {
            *i += 1;
        }
        if *i - start < min {
            return None;
        }
        lower[start..*i].parse().ok()
    };
    let year = read_num(&mut i, 4, 6).ok_or_else(invalid)?;
    if b.get(i) != Some(&b'-') {
        return Err(invalid());
    }
    i += 1;
    let month = read_num(&mut i, 1, 2).ok_or_else(invalid)?;
    if b.get(i) != Some(&b'-') {
        return Err(invalid());
    }
    i += 1;
    let day = read_num(&mut i, 1, 2).ok_or_else(invalid)?;
    if year < 1 || !(1..=12).contains(&month) || day < 1 || day > i64::from(days_in_month(year, month as u32)) {
        return Err(out_of_range(text));
    }
    let mut local = days_from_civil(year, month as u32, day as u32) * USECS_PER_DAY;
    // Optional time, after `T` or whitespace.
    let mut j = i;
    if b.get(j) == Some(&b't') {
        j += 1;
    } else {
        while b.get(j).is_some_and(|c| c.is_ascii_whitespace()) {
            j += 1;
        }
    }
    if j > i && b.get(j).is_some_and(u8::is_ascii_digit) {
        i = j;
        let hour = read_num(&mut i, 1, 2).ok_or_else(invalid)?;
        if b.get(i) != Some(&b':') {
            return Err(invalid());
        }
        i += 1;
        let minute = read_num(&mut i, 2, 2).ok_or_else(invalid)?;
        let mut second = 0;
        let mut fraction = 0;
        if b.get(i) == Some(&b':') {
            i += 1;
            second = read_num(&mut i, 2, 2).ok_or_else(invalid)?;
            if b.get(i) == Some(&b'.') {
                i += 1;
                let start = i;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                fraction = parse_fraction(&lower[start..i]);
            }
        }
        // PostgreSQL accepts 24:00:00 and a leap second 60, which roll over.
        let usecs = ((hour * 60 + minute) * 60 + second) * USECS_PER_SEC + fraction;
        if hour > 24 || minute > 59 || second > 60 || (hour == 24 && usecs > 24 * 3600 * USECS_PER_SEC) {
            return Err(out_of_range(text));
        }
        local += usecs;
    } else if b.get(i) == Some(&b't') {
        return Err(invalid());
    }
    // Optional zone.
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    let rest = &lower[i..];
    let offset = match rest {
        "" => None,
        "z" | "utc" | "gmt" | "zulu" | "ut" => Some(0),
        _ if rest.starts_with('+') || rest.starts_with('-') => Some(parse_offset(rest).ok_or_else(invalid)?),
        _ => return Err(invalid()),
    };
    Ok(Parsed::At { local, offset })
}

/// Parses an offset such as `+03`, `-0300`, `+03:00` or `+03:00:30` into
/// seconds east of UTC.
fn parse_offset(s: &str) -> Option<i64> {
    let sign = if s.starts_with('-') { -1 } else { 1 };
    let body = &s[1..];
    let (h, m, sec) = if body.contains(':') {
        let parts: Vec<&str> = body.split(':').collect();
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty() || p.len() > 2 || !p.bytes().all(|c| c.is_ascii_digit())) {
            return None;
        }
        let n = |k: usize| parts.get(k).map_or(Some(0), |p| p.parse::<i64>().ok());
        (n(0)?, n(1)?, n(2)?)
    } else {
        if body.is_empty() || !body.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        match body.len() {
            1 | 2 => (body.parse().ok()?, 0, 0),
            3 | 4 => {
                let (h, m) = body.split_at(body.len() - 2);
                (h.parse().ok()?, m.parse().ok()?, 0)
            }
            5 | 6 => {
                let (hm, s) = body.split_at(body.len() - 2);
                let (h, m) = hm.split_at(hm.len() - 2);
                (h.parse().ok()?, m.parse().ok()?, s.parse().ok()?)
            }
            _ => return None,
        }
    };
    if h > 15 || m > 59 || sec > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60 + sec))
}

/// Converts fractional-second digits to microseconds, rounding half to even
/// at the seventh digit like PostgreSQL's `rint`.
fn parse_fraction(digits: &str) -> i64 {
    let mut usecs: i64 = 0;
    for (k, c) in digits.bytes().take(6).enumerate() {
        usecs += i64::from(c - b'0') * 10_i64.pow(5 - k as u32);
    }
    if digits.len() > 6 {
        let rest = &digits[6..];
        let first = rest.as_bytes()[0] - b'0';
        let beyond_nonzero = rest[1..].bytes().any(|c| c != b'0');
        if first > 5 || (first == 5 && (beyond_nonzero || usecs % 2 == 1)) {
            usecs += 1;
        }
    }
    usecs
}

pub fn parse_timestamptz(text: &str, now: i64) -> Result<i64, String> {
    match parse_datetime(text, "timestamp with time zone", now)? {
        Parsed::Infinity => Ok(TS_INFINITY),
        Parsed::NegInfinity => Ok(TS_NEG_INFINITY),
        Parsed::At { local, offset, .. } => check_timestamp(local - offset.unwrap_or(0) * USECS_PER_SEC, text),
    }
}

pub fn parse_timestamp(text: &str, now: i64) -> Result<i64, String> {
    match parse_datetime(text, "timestamp without time zone", now)? {
        Parsed::Infinity => Ok(TS_INFINITY),
        Parsed::NegInfinity => Ok(TS_NEG_INFINITY),
        Parsed::At { local, .. } => check_timestamp(local, text),
    }
}

pub fn parse_date(text: &str, now: i64) -> Result<i32, String> {
    match parse_datetime(text, "date", now)? {
        Parsed::Infinity => Ok(DATE_INFINITY),
        Parsed::NegInfinity => Ok(DATE_NEG_INFINITY),
        Parsed::At { local, .. } => Ok(local.div_euclid(USECS_PER_DAY) as i32),
    }
}

fn check_timestamp(v: i64, text: &str) -> Result<i64, String> {
    if (MIN_TIMESTAMP..=MAX_TIMESTAMP).contains(&v) { Ok(v) } else { Err(format!("timestamp out of range: \"{text}\"")) }
}

pub fn timestamp_in_range(v: i64) -> Result<i64, String> {
    if v == TS_INFINITY || v == TS_NEG_INFINITY || (MIN_TIMESTAMP..=MAX_TIMESTAMP).contains(&v) {
        Ok(v)
    } else {
        Err("timestamp out of range".into())
    }
}

fn format_time_of_day(usecs: i64, out: &mut String) {
    let secs = usecs / USECS_PER_SEC;
    let frac = usecs % USECS_PER_SEC;
    out.push_str(&format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60));
    if frac != 0 {
        let f = format!("{frac:06}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
}

/// Formats a timestamp as `YYYY-MM-DD HH:MM:SS[.ffffff]`, with `+00` appended
/// for timestamptz in a UTC session.
pub fn format_timestamp(v: i64, with_zone: bool) -> String {
    match v {
        TS_INFINITY => return "infinity".into(),
        TS_NEG_INFINITY => return "-infinity".into(),
        _ => {}
    }
    let days = v.div_euclid(USECS_PER_DAY);
    let mut out = format_date(days as i32);
    out.push(' ');
    format_time_of_day(v.rem_euclid(USECS_PER_DAY), &mut out);
    if with_zone {
        out.push_str("+00");
    }
    out
}

pub fn format_date(days: i32) -> String {
    match days {
        DATE_INFINITY => "infinity".into(),
        DATE_NEG_INFINITY => "-infinity".into(),
        _ => {
            let (y, m, d) = civil_from_days(i64::from(days));
            format!("{y:04}-{m:02}-{d:02}")
        }
    }
}

pub fn date_to_timestamp(days: i32) -> Result<i64, String> {
    match days {
        DATE_INFINITY => Ok(TS_INFINITY),
        DATE_NEG_INFINITY => Ok(TS_NEG_INFINITY),
        _ => timestamp_in_range(i64::from(days) * USECS_PER_DAY).map_err(|_| "date out of range for timestamp".to_string()),
    }
}

pub fn timestamp_to_date(v: i64) -> i32 {
    match v {
        TS_INFINITY => DATE_INFINITY,
        TS_NEG_INFINITY => DATE_NEG_INFINITY,
        _ => v.div_euclid(USECS_PER_DAY) as i32,
    }
}

/// PostgreSQL's `interval`: months, days and microseconds, kept apart
/// because a month and a day have no fixed length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

impl Interval {
    /// The value `interval_cmp` orders by: a month counts as 30 days and a
    /// day as 24 hours.
    fn span(&self) -> i128 {
        (i128::from(self.months) * 30 + i128::from(self.days)) * i128::from(USECS_PER_DAY) + i128::from(self.micros)
    }

    pub fn compare(&self, other: &Interval) -> Ordering {
        self.span().cmp(&other.span())
    }

    pub fn checked_add(&self, other: &Interval) -> Option<Interval> {
        Some(Interval {
            months: self.months.checked_add(other.months)?,
            days: self.days.checked_add(other.days)?,
            micros: self.micros.checked_add(other.micros)?,
        })
    }

    pub fn checked_neg(&self) -> Option<Interval> {
        Some(Interval { months: self.months.checked_neg()?, days: self.days.checked_neg()?, micros: self.micros.checked_neg()? })
    }

    /// Parses interval text in PostgreSQL's verbose format, for example
    /// `14 days`, `1 year 2 mons`, `-1 day +02:00:00`, `1.5 hours`, `@ 3 days ago`.
    pub fn parse(text: &str) -> Result<Interval, String> {
        let invalid = || format!("invalid input syntax for type interval: \"{text}\"");
        let lower = text.to_ascii_lowercase();
        let words: Vec<&str> = lower.split_ascii_whitespace().collect();
        if words.is_empty() {
            return Err(invalid());
        }
        let mut months: f64 = 0.0;
        let mut days: f64 = 0.0;
        let mut micros: f64 = 0.0;
        let mut ago = false;
        let mut k = 0;
        if words[0] == "@" {
            k = 1;
        }
        if k >= words.len() {
            return Err(invalid());
        }
        while k < words.len() {
            let w = words[k];
            k += 1;
            if w == "ago" && k == words.len() {
                ago = true;
                continue;
            }
            if w.contains(':') {
                micros += parse_clock(w).ok_or_else(invalid)? as f64;
                continue;
            }
            // A number, with its unit either attached (`14days`) or next.
            let split = w.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(w.len());
            let (num, mut unit) = w.split_at(split);
            if num.is_empty() {
                return Err(invalid());
            }
            let value: f64 = num.parse().map_err(|_| invalid())?;
            if !num.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'+' | b'-')) {
                return Err(invalid());
            }
            if unit.is_empty() && k < words.len() && words[k].starts_with(|c: char| c.is_ascii_alphabetic()) && words[k] != "ago" {
                unit = words[k];
                k += 1;
            }
            let u = unit;
            match u {
                "" | "s" | "sec" | "secs" | "second" | "seconds" => micros += value * 1e6,
                "microsecond" | "microseconds" | "us" | "usec" | "usecs" => micros += value,
                "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" => micros += value * 1e3,
                "m" | "min" | "mins" | "minute" | "minutes" => micros += value * 6e7,
                "h" | "hr" | "hrs" | "hour" | "hours" => micros += value * 3.6e9,
                "d" | "day" | "days" => {
                    days += value.trunc();
                    micros += value.fract() * USECS_PER_DAY as f64;
                }
                "w" | "week" | "weeks" => {
                    let d = value * 7.0;
                    days += d.trunc();
                    micros += d.fract() * USECS_PER_DAY as f64;
                }
                "mon" | "mons" | "month" | "months" => {
                    months += value.trunc();
                    let d = value.fract() * 30.0;
                    days += d.trunc();
                    micros += d.fract() * USECS_PER_DAY as f64;
                }
                "y" | "yr" | "yrs" | "year" | "years" => months += (value * 12.0).trunc(),
                "decade" | "decades" => months += (value * 120.0).trunc(),
                "century" | "centuries" => months += (value * 1200.0).trunc(),
                _ => return Err(invalid()),
            }
        }
        let sign = if ago { -1.0 } else { 1.0 };
        let fits_i32 = |v: f64| v >= f64::from(i32::MIN) && v <= f64::from(i32::MAX);
        let (m, d, us) = (months * sign, days * sign, (micros * sign).round());
        if !fits_i32(m) || !fits_i32(d) || us.abs() > 9.2e18 {
            return Err(format!("interval field value out of range: \"{text}\""));
        }
        Ok(Interval { months: m as i32, days: d as i32, micros: us as i64 })
    }

    /// Formats the interval in `IntervalStyle` postgres, for example
    /// `1 year 2 mons -3 days +04:05:06`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut is_before = false;
        let mut is_zero = true;
        let years = self.months / 12;
        let mons = self.months % 12;
        for (value, unit) in [(years, "year"), (mons, "mon"), (self.days, "day")] {
            if value == 0 {
                continue;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            let plus = if is_before && value > 0 { "+" } else { "" };
            let plural = if value != 1 { "s" } else { "" };
            out.push_str(&format!("{plus}{value} {unit}{plural}"));
            is_before = value < 0;
            is_zero = false;
        }
        if is_zero || self.micros != 0 {
            let minus = self.micros < 0;
            if !is_zero {
                out.push(' ');
            }
            out.push_str(if minus { "-" } else if is_before { "+" } else { "" });
            let abs = self.micros.unsigned_abs();
            let secs = abs / 1_000_000;
            let frac = abs % 1_000_000;
            out.push_str(&format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60));
            if frac != 0 {
                let f = format!("{frac:06}");
                out.push('.');
                out.push_str(f.trim_end_matches('0'));
            }
        }
        out
    }
}

/// Parses `HH:MM[:SS[.f]]` (with an optional sign) into microseconds.
fn parse_clock(w: &str) -> Option<i64> {
    let (sign, body) = match w.as_bytes()[0] {
        b'-' => (-1, &w[1..]),
        b'+' => (1, &w[1..]),
        _ => (1, w),
    };
    let parts: Vec<&str> = body.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return None;
    }
    let h: i64 = parts[0].parse().ok()?;
    let m: i64 = parts[1].parse().ok()?;
    if !parts[0].bytes().all(|c| c.is_ascii_digit()) || !parts[1].bytes().all(|c| c.is_ascii_digit()) || m > 59 {
        return None;
    }
    let mut usecs = (h * 3600 + m * 60) * USECS_PER_SEC;
    if let Some(sec) = parts.get(2) {
        let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
        if whole.is_empty() || !whole.bytes().all(|c| c.is_ascii_digit()) || !frac.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let s: i64 = whole.parse().ok()?;
        if s > 59 {
            return None;
        }
        usecs += s * USECS_PER_SEC + parse_fraction(frac);
    }
    Some(sign * usecs)
}

/// Adds an interval to a timestamp: months first (clamping the day to the
/// end of the month), then days, then microseconds, as
/// `timestamp_pl_interval` does. Infinite timestamps stay infinite.
pub fn add_interval(ts: i64, iv: &Interval) -> Result<i64, String> {
    if ts == TS_INFINITY || ts == TS_NEG_INFINITY {
        return Ok(ts);
    }
    let out_of_range = || "timestamp out of range".to_string();
    let mut ts = ts;
    if iv.months != 0 {
        let days = ts.div_euclid(USECS_PER_DAY);
        let time = ts.rem_euclid(USECS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let total = y * 12 + i64::from(m) - 1 + i64::from(iv.months);
        let (ny, nm) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
        if ny < 1 {
            return Err(out_of_range());
        }
        let nd = d.min(days_in_month(ny, nm));
        ts = days_from_civil(ny, nm, nd).checked_mul(USECS_PER_DAY).ok_or_else(out_of_range)? + time;
    }
    ts = ts.checked_add(i64::from(iv.days).checked_mul(USECS_PER_DAY).ok_or_else(out_of_range)?).ok_or_else(out_of_range)?;
    ts = ts.checked_add(iv.micros).ok_or_else(out_of_range)?;
    timestamp_in_range(ts).and_then(|v| if v == TS_INFINITY || v == TS_NEG_INFINITY { Err(out_of_range()) } else { Ok(v) })
}

/// Subtracts two timestamps into an interval of days and microseconds, as
/// `timestamp_mi` followed by `interval_justify_hours` does.
pub fn subtract_timestamps(a: i64, b: i64) -> Result<Interval, String> {
    if a == TS_INFINITY || a == TS_NEG_INFINITY || b == TS_INFINITY || b == TS_NEG_INFINITY {
        return Err("cannot subtract infinite timestamps".into());
    }
    let diff = a.checked_sub(b).ok_or_else(|| "interval out of range".to_string())?;
    Ok(Interval { months: 0, days: (diff / USECS_PER_DAY) as i32, micros: diff % USECS_PER_DAY })
}
