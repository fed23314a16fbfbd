//! PostgreSQL's `numeric`: arbitrary precision decimals with a display scale,
//! plus NaN and the infinities.

use std::cmp::Ordering;

use bigdecimal::{BigDecimal, RoundingMode};
use num_bigint::BigInt;
use num_traits::{Signed, ToPrimitive, Zero};

/// The largest decimal exponent `numeric_in` accepts (`NUMERIC_MAX_PRECISION`
/// in PostgreSQL 15).
const MAX_EXPONENT: i64 = 1000;

#[derive(Debug, Clone)]
pub enum Numeric {
    NaN,
    PosInf,
    NegInf,
    /// A finite value. The scale never goes below zero, like PostgreSQL's
    /// display scale, so `1e2` prints as `100`.
    Finite(BigDecimal),
}

impl Numeric {
    pub fn from_i64(v: i64) -> Numeric {
        Numeric::Finite(BigDecimal::from(v))
    }

    /// Parses text the way `numeric_in` does, including surrounding
    /// whitespace, `NaN` and `Infinity`. The error is the reason only.
    pub fn parse(text: &str) -> Result<Numeric, ()> {
        let s = text.trim_matches(|c: char| c.is_ascii_whitespace());
        let lower = s.to_ascii_lowercase();
        match lower.as_str() {
            "nan" => return Ok(Numeric::NaN),
            "infinity" | "+infinity" | "inf" | "+inf" => return Ok(Numeric::PosInf),
            "-infinity" | "-inf" => return Ok(Numeric::NegInf),
            _ => {}
        }
        Self::parse_decimal(s, true).ok_or(())
    }

    /// Parses a plain decimal number: optional sign, digits with an optional
    /// point, optional exponent. JSON numbers use this with `allow_sign`
    /// false for a leading plus.
    pub fn parse_decimal(s: &str, allow_plus: bool) -> Option<Numeric> {
        let bytes = s.as_bytes();
        let mut i = 0;
        let mut negative = false;
        if let Some(&c) = bytes.first()
            && (c == b'-' || (allow_plus && c == b'+'))
        {
            negative = c == b'-';
            i += 1;
        }
        let mut digits = String::new();
        let mut frac_len: i64 = 0;
        let mut seen_point = false;
        while i < bytes.len() {
            match bytes[i] {
                b'0'..=b'9' => {
                    digits.push(bytes[i] as char);
                    if seen_point {
                        frac_len += 1;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                _ => break,
            }
            i += 1;
        }
        if digits.is_empty() {
            return None;
        }
        let mut exponent: i64 = 0;
        if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
            i += 1;
            let mut exp_negative = false;
            if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
                exp_negative = bytes[i] == b'-';
                i += 1;
            }
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                exponent = exponent.saturating_mul(10).saturating_add(i64::from(bytes[i] - b'0'));
                i += 1;
            }
            if i == start || exponent > MAX_EXPONENT {
                return None;
            }
            if exp_negative {
                exponent = -exponent;
            }
        }
        if i != bytes.len() {
            return None;
        }
        let mut int: BigInt = digits.parse().ok()?;
        if negative {
            int = -int;
        }
        let mut scale = frac_len - exponent;
        if scale < 0 {
            int *= BigInt::from(10).pow((-scale) as u32);
            scale = 0;
        }
        Some(Numeric::Finite(BigDecimal::new(int, scale)))
    }

    /// Formats the value the way `numeric_out` does.
    pub fn to_text(&self) -> String {
        match self {
            Numeric::NaN => "NaN".into(),
            Numeric::PosInf => "Infinity".into(),
            Numeric::NegInf => "-Infinity".into(),
            Numeric::Finite(d) => format_decimal(d),
        }
    }

    /// Rounds half away from zero to an integer, as `numeric_int8` does.
    pub fn to_i64(&self, type_name: &str) -> Result<i64, String> {
        match self {
            Numeric::NaN => Err(format!("cannot convert NaN to {type_name}")),
            Numeric::PosInf | Numeric::NegInf => Err(format!("cannot convert infinity to {type_name}")),
            Numeric::Finite(d) => d
                .with_scale_round(0, RoundingMode::HalfUp)
                .to_i64()
                .ok_or_else(|| format!("{type_name} out of range")),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Numeric::NegInf => 0,
            Numeric::Finite(_) => 1,
            Numeric::PosInf => 2,
            Numeric::NaN => 3,
        }
    }

    /// Orders the way `numeric_cmp` does: NaN equals NaN and sorts above
    /// every other value, including infinity.
    pub fn compare(&self, other: &Numeric) -> Ordering {
        match (self, other) {
            (Numeric::Finite(a), Numeric::Finite(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }

    pub fn add(&self, other: &Numeric) -> Numeric {
        match (self, other) {
            (Numeric::Finite(a), Numeric::Finite(b)) => Numeric::Finite(a + b),
            (Numeric::NaN, _) | (_, Numeric::NaN) => Numeric::NaN,
            (Numeric::PosInf, Numeric::NegInf) | (Numeric::NegInf, Numeric::PosInf) => Numeric::NaN,
            (Numeric::PosInf, _) | (_, Numeric::PosInf) => Numeric::PosInf,
            _ => Numeric::NegInf,
        }
    }

    pub fn negate(&self) -> Numeric {
        match self {
            Numeric::NaN => Numeric::NaN,
            Numeric::PosInf => Numeric::NegInf,
            Numeric::NegInf => Numeric::PosInf,
            Numeric::Finite(d) => Numeric::Finite(-d),
        }
    }

    pub fn mul(&self, other: &Numeric) -> Numeric {
        match (self, other) {
            (Numeric::Finite(a), Numeric::Finite(b)) => Numeric::Finite(a * b),
            (Numeric::NaN, _) | (_, Numeric::NaN) => Numeric::NaN,
            _ => {
                let sign = |n: &Numeric| match n {
                    Numeric::PosInf => 1,
                    Numeric::NegInf => -1,
                    Numeric::Finite(d) if d.is_zero() => 0,
                    Numeric::Finite(d) if d.is_negative() => -1,
                    _ => 1,
                };
                match sign(self) * sign(other) {
                    0 => Numeric::NaN,
                    s if s > 0 => Numeric::PosInf,
                    _ => Numeric::NegInf,
                }
            }
        }
    }
}

fn format_decimal(d: &BigDecimal) -> String {
    let (int, scale) = d.as_bigint_and_exponent();
    let (int, scale) = if scale < 0 { (int * BigInt::from(10).pow((-scale) as u32), 0) } else { (int, scale) };
    let negative = int.is_negative();
    let mut digits = int.abs().to_string();
    let scale = scale as usize;
    if scale > 0 {
        if digits.len() <= scale {
            digits = "0".repeat(scale - digits.len() + 1) + &digits;
        }
        digits.insert(digits.len() - scale, '.');
    }
    if negative { format!("-{digits}") } else { digits }
}
