//! PostgreSQL's `jsonb`: parsing, text output, ordering and containment, as
//! in PostgreSQL 15's `jsonb.c`, `jsonb_util.c` and `jsonfuncs.c`.

use std::cmp::Ordering;

use crate::numeric::Numeric;

/// Maximum nesting depth of a JSON document. PostgreSQL's own limit comes
/// from its stack size and is higher, so a deeper document is an error here
/// but not always in PostgreSQL.
pub const MAX_JSON_DEPTH: usize = 256;

#[derive(Debug, Clone)]
pub enum Json {
    Null,
    Bool(bool),
    /// Always finite: JSON has no NaN or infinity.
    Number(Numeric),
    String(String),
    Array(Vec<Json>),
    /// Pairs sorted the way jsonb stores keys: shorter keys first, then by
    /// bytes. Duplicate keys keep the last value.
    Object(Vec<(String, Json)>),
}

/// Orders object keys the way jsonb stores them (`lengthCompareJsonbString`).
fn key_order(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

impl Json {
    pub fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Number(_) => "number",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }

    pub fn is_scalar(&self) -> bool {
        !matches!(self, Json::Array(_) | Json::Object(_))
    }

    pub fn get_key(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(pairs) => pairs.binary_search_by(|(k, _)| key_order(k, key)).ok().map(|i| &pairs[i].1),
            _ => None,
        }
    }

    /// Returns the array element at `index`, counting from the end when negative.
    pub fn get_index(&self, index: i64) -> Option<&Json> {
        match self {
            Json::Array(items) => {
                let len = items.len() as i64;
                let i = if index < 0 { len + index } else { index };
                if (0..len).contains(&i) { items.get(i as usize) } else { None }
            }
            _ => None,
        }
    }

    /// Parses JSON text the way `jsonb_in` does. The error is a sentence.
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut p = JsonParser { s: text.as_bytes(), i: 0, depth: 0 };
        p.skip_ws();
        let v = p.value()?;
        p.skip_ws();
        if p.i != p.s.len() {
            return Err(p.invalid());
        }
        Ok(v)
    }

    /// Formats the value the way `jsonb_out` does: `{"a": 1, "b": [1, 2]}`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(&n.to_text()),
            Json::String(s) => write_json_string(s, out),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(pairs) => {
                out.push('{');
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_json_string(k, out);
                    out.push_str(": ");
                    v.write(out);
                }
                out.push('}');
            }
        }
    }

    /// The text `->>` and `#>>` return: strings without quotes, JSON null as
    /// SQL NULL, anything else as jsonb text.
    pub fn to_unquoted_text(&self) -> Option<String> {
        match self {
            Json::Null => None,
            Json::String(s) => Some(s.clone()),
            other => Some(other.to_text()),
        }
    }

    /// The type order used when jsonb values of different types meet
    /// (`enum jbvType`): null < string < number < boolean < array < object.
    fn type_rank(&self) -> u8 {
        match self {
            Json::Null => 0,
            Json::String(_) => 1,
            Json::Number(_) => 2,
            Json::Bool(_) => 3,
            Json::Array(_) => 4,
            Json::Object(_) => 5,
        }
    }

    /// Compares two top-level jsonb values like `compareJsonbContainers`.
    ///
    /// A top-level scalar is stored as a one-element "raw scalar" array. Two
    /// arrays compare by element count first, and a raw scalar sorts below a
    /// real array of the same length, so `[]` sorts below every scalar.
    pub fn compare_top(&self, other: &Json) -> Ordering {
        match (self.is_scalar(), other.is_scalar()) {
            (true, true) => self.compare_nested(other),
            (true, false) | (false, true) => {
                let (scalar_is_left, container) = if self.is_scalar() { (true, other) } else { (false, self) };
                let ord = match container {
                    Json::Array(items) => match 1.cmp(&items.len()) {
                        Ordering::Equal => Ordering::Less,
                        o => o,
                    },
                    // An object always sorts above the raw-scalar array.
                    _ => Ordering::Less,
                };
                if scalar_is_left { ord } else { ord.reverse() }
            }
            (false, false) => self.compare_nested(other),
        }
    }

    fn compare_nested(&self, other: &Json) -> Ordering {
        match (self, other) {
            (Json::Null, Json::Null) => Ordering::Equal,
            (Json::String(a), Json::String(b)) => compare_text(a, b),
            (Json::Number(a), Json::Number(b)) => a.compare(b),
            (Json::Bool(a), Json::Bool(b)) => a.cmp(b),
            (Json::Array(a), Json::Array(b)) => {
                if a.len() != b.len() {
                    return a.len().cmp(&b.len());
                }
                for (x, y) in a.iter().zip(b) {
                    let o = x.compare_nested(y);
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                Ordering::Equal
            }
            (Json::Object(a), Json::Object(b)) => {
                if a.len() != b.len() {
                    return a.len().cmp(&b.len());
                }
                for ((ka, va), (kb, vb)) in a.iter().zip(b) {
                    let o = compare_text(ka, kb);
                    if o != Ordering::Equal {
                        return o;
                    }
                    let o = va.compare_nested(vb);
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                Ordering::Equal
            }
            _ => self.type_rank().cmp(&other.type_rank()),
        }
    }

    fn scalar_equal(&self, other: &Json) -> bool {
        match (self, other) {
            (Json::Null, Json::Null) => true,
            (Json::String(a), Json::String(b)) => a == b,
            (Json::Number(a), Json::Number(b)) => a.compare(b) == Ordering::Equal,
            (Json::Bool(a), Json::Bool(b)) => a == b,
            _ => false,
        }
    }

    /// `self @> other`, following `JsonbDeepContains`.
    pub fn contains_top(&self, other: &Json) -> bool {
        if matches!(self, Json::Object(_)) != matches!(other, Json::Object(_)) {
            return false;
        }
        match (self, other) {
            (Json::Object(_), Json::Object(_)) => self.contains_nested(other),
            _ => {
                // Both are arrays or raw scalars. A raw scalar may contain a
                // raw scalar, an array may contain either, but a raw scalar
                // never contains an array.
                if self.is_scalar() && !other.is_scalar() {
                    return false;
                }
                let lhs: &[Json] = match self {
                    Json::Array(items) => items,
                    scalar => std::slice::from_ref(scalar),
                };
                let rhs: &[Json] = match other {
                    Json::Array(items) => items,
                    scalar => std::slice::from_ref(scalar),
                };
                array_contains(lhs, rhs)
            }
        }
    }

    fn contains_nested(&self, other: &Json) -> bool {
        match (self, other) {
            (Json::Object(lhs), Json::Object(rhs)) => {
                if lhs.len() < rhs.len() {
                    return false;
                }
                rhs.iter().all(|(k, rv)| match self.get_key(k) {
                    None => false,
                    Some(lv) if lv.is_scalar() || rv.is_scalar() => lv.scalar_equal(rv),
                    Some(lv) => lv.contains_nested(rv),
                })
            }
            (Json::Array(lhs), Json::Array(rhs)) => array_contains(lhs, rhs),
            _ => false,
        }
    }

    /// `self ? key`: a top-level object key or string array element.
    pub fn exists(&self, key: &str) -> bool {
        match self {
            Json::Object(_) => self.get_key(key).is_some(),
            Json::Array(items) => items.iter().any(|v| matches!(v, Json::String(s) if s == key)),
            Json::String(s) => s == key,
            _ => false,
        }
    }
}

fn array_contains(lhs: &[Json], rhs: &[Json]) -> bool {
    rhs.iter().all(|rv| {
        if rv.is_scalar() {
            lhs.iter().any(|lv| lv.is_scalar() && lv.scalar_equal(rv))
        } else {
            lhs.iter().any(|lv| !lv.is_scalar() && lv.contains_nested(rv))
        }
    })
}

/// Compares text under the test database's collation. `C.UTF-8` in glibc
/// orders by code point, which for UTF-8 is byte order.
pub fn compare_text(a: &str, b: &str) -> Ordering {
    a.as_bytes().cmp(b.as_bytes())
}

fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl JsonParser<'_> {
    fn invalid(&self) -> String {
        "invalid input syntax for type json".to_string()
    }

    fn skip_ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        let Some(&c) = self.s.get(self.i) else { return Err(self.invalid()) };
        match c {
            b'{' | b'[' => {
                self.depth += 1;
                if self.depth > MAX_JSON_DEPTH {
                    return Err(format!("JSON nesting exceeds {MAX_JSON_DEPTH} levels"));
                }
                let v = if c == b'{' { self.object() } else { self.array() };
                self.depth -= 1;
                v
            }
            b'"' => Ok(Json::String(self.string()?)),
            b'-' | b'0'..=b'9' => self.number(),
            _ => {
                let start = self.i;
                while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_' || self.s[self.i] >= 0x80) {
                    self.i += 1;
                }
                match &self.s[start..self.i] {
                    b"true" => Ok(Json::Bool(true)),
                    b"false" => Ok(Json::Bool(false)),
                    b"null" => Ok(Json::Null),
                    _ => Err(self.invalid()),
                }
            }
        }
    }

    fn object(&mut self) -> Result<Json, String> {
        self.i += 1;
        let mut pairs: Vec<(String, Json)> = Vec::new();
        self.skip_ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(Json::Object(pairs));
        }
        loop {
            self.skip_ws();
            if self.s.get(self.i) != Some(&b'"') {
                return Err(self.invalid());
            }
            let key = self.string()?;
            self.skip_ws();
            if self.s.get(self.i) != Some(&b':') {
                return Err(self.invalid());
            }
            self.i += 1;
            self.skip_ws();
            let value = self.value()?;
            pairs.push((key, value));
            self.skip_ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    break;
                }
                _ => return Err(self.invalid()),
            }
        }
        // Sort stably by key so that, among duplicates, the last one written
        // comes last and wins.
        pairs.sort_by(|a, b| key_order(&a.0, &b.0));
        let mut unique: Vec<(String, Json)> = Vec::with_capacity(pairs.len());
        for pair in pairs {
            match unique.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => unique.push(pair),
            }
        }
        Ok(Json::Object(unique))
    }

    fn array(&mut self) -> Result<Json, String> {
        self.i += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.s.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(Json::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value()?);
            self.skip_ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    break;
                }
                _ => return Err(self.invalid()),
            }
        }
        Ok(Json::Array(items))
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.i;
        if self.s[self.i] == b'-' {
            self.i += 1;
        }
        let int_start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        let int_len = self.i - int_start;
        if int_len == 0 || (int_len > 1 && self.s[int_start] == b'0') {
            return Err(self.invalid());
        }
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            let frac_start = self.i;
            while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                self.i += 1;
            }
            if self.i == frac_start {
                return Err(self.invalid());
            }
        }
        if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            let exp_start = self.i;
            while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                self.i += 1;
            }
            if self.i == exp_start {
                return Err(self.invalid());
            }
        }
        // A number directly followed by letters, like `1x`, is one bad token.
        if self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_' || self.s[self.i] >= 0x80) {
            return Err(self.invalid());
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| self.invalid())?;
        match Numeric::parse_decimal(text, false) {
            Some(n) => Ok(Json::Number(n)),
            None => Err(format!("invalid input syntax for type numeric: \"{text}\"")),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else { return Err(self.invalid()) };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else { return Err(self.invalid()) };
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let mut code = self.hex4()?;
                            if (0xD800..0xDC00).contains(&code) {
                                if self.s.get(self.i) == Some(&b'\\') && self.s.get(self.i + 1) == Some(&b'u') {
                                    self.i += 2;
                                    let low = self.hex4()?;
                                    if !(0xDC00..0xE000).contains(&low) {
                                        return Err("invalid Unicode surrogate pair in JSON string".into());
                                    }
                                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                                } else {
                                    return Err("invalid Unicode surrogate pair in JSON string".into());
                                }
                            } else if (0xDC00..0xE000).contains(&code) {
                                return Err("invalid Unicode surrogate pair in JSON string".into());
                            }
                            if code == 0 {
                                return Err("unsupported Unicode escape sequence \\u0000".into());
                            }
                            let ch = char::from_u32(code).ok_or_else(|| self.invalid())?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(self.invalid()),
                    }
                }
                c if c < 0x20 => return Err(self.invalid()),
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| self.invalid())
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let mut v = 0;
        for _ in 0..4 {
            let d = self.s.get(self.i).and_then(|c| (*c as char).to_digit(16)).ok_or_else(|| self.invalid())?;
            v = v * 16 + d;
            self.i += 1;
        }
        Ok(v)
    }
}
