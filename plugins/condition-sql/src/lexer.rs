//! Tokenizer following PostgreSQL's `scan.l` for the subset of SQL that a
//! condition may use.

use crate::error::Error;

/// Maximum condition length in bytes. Longer text is rejected before
/// tokenizing so hostile input cannot make the parser do unbounded work.
pub const MAX_CONDITION_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    /// An identifier or keyword. Unquoted names are folded to lower case.
    Ident { name: String, quoted: bool },
    /// A string constant after escape processing.
    Str(String),
    /// An integer or decimal constant, as written.
    Number(String),
    /// An operator such as `=`, `->>` or `@>`. `!=` is stored as `<>`.
    Op(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    TypeCast,
    End,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub kind: TokenKind,
    /// One-based character position in the condition, as PostgreSQL reports it.
    pub pos: usize,
    /// The token's text as written, for error messages.
    pub text: String,
}

const OP_CHARS: &[char] = &['+', '-', '*', '/', '<', '>', '=', '~', '!', '@', '#', '%', '^', '&', '|', '`', '?'];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$' || !c.is_ascii()
}

/// Splits condition text into tokens, rejecting comments, semicolons,
/// parameters and the string forms this plugin does not implement.
pub fn tokenize(text: &str) -> Result<Vec<Token>, Error> {
    if text.len() > MAX_CONDITION_BYTES {
        return Err(Error::syntax(
            format!("condition is too long: {} bytes, the maximum is {MAX_CONDITION_BYTES}", text.len()),
            None,
        ));
    }
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let kind = if (c == 'e' || c == 'E') && chars.get(i + 1) == Some(&'\'') {
            i += 1;
            let s = read_string(&chars, &mut i, true)?;
            TokenKind::Str(s)
        } else if c == '\'' {
            TokenKind::Str(read_string(&chars, &mut i, false)?)
        } else if (c == 'u' || c == 'U') && chars.get(i + 1) == Some(&'&') {
            return Err(Error::syntax("Unicode-escaped names and strings (U&) are not supported".into(), Some((pos, "U&".into()))));
        } else if matches!(c, 'b' | 'B' | 'x' | 'X' | 'n' | 'N') && chars.get(i + 1) == Some(&'\'') {
            return Err(Error::syntax(
                format!("string constants with prefix {c} are not supported"),
                Some((pos, format!("{c}'"))),
            ));
        } else if is_ident_start(c) {
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            let raw: String = chars[start..i].iter().collect();
            TokenKind::Ident { name: raw.to_ascii_lowercase(), quoted: false }
        } else if c == '"' {
            i += 1;
            let mut name = String::new();
            loop {
                match chars.get(i) {
                    None => return Err(Error::syntax("unterminated quoted identifier".into(), Some((pos, "\"".into())))),
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        name.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        name.push(ch);
                        i += 1;
                    }
                }
            }
            if name.is_empty() {
                return Err(Error::syntax("zero-length delimited identifier".into(), Some((pos, "\"\"".into()))));
            }
            TokenKind::Ident { name, quoted: true }
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            read_number(&chars, &mut i);
            TokenKind::Number(chars[start..i].iter().collect())
        } else if OP_CHARS.contains(&c) {
            read_operator(&chars, &mut i, pos)?
        } else {
            i += 1;
            match c {
                '(' => TokenKind::LParen,
                ')' => TokenKind::RParen,
                '[' => TokenKind::LBracket,
                ']' => TokenKind::RBracket,
                ',' => TokenKind::Comma,
                '.' => TokenKind::Dot,
                ':' if chars.get(i) == Some(&':') => {
                    i += 1;
                    TokenKind::TypeCast
                }
                ';' => return Err(Error::syntax("semicolons are not allowed: a condition is one expression".into(), Some((pos, ";".into())))),
                '$' => return Err(Error::syntax("parameters and dollar-quoted strings are not supported".into(), Some((pos, "$".into())))),
                _ => return Err(Error::syntax(format!("unexpected character {c:?}"), Some((pos, c.to_string())))),
            }
        };
        let text: String = chars[start..i].iter().collect();
        // PostgreSQL joins string constants separated only by whitespace that
        // contains a newline: 'a'\n'b' is 'ab'.
        if let TokenKind::Str(s) = &kind
            && let Some(prev) = tokens.last_mut()
            && let Token { kind: TokenKind::Str(prev_s), .. } = prev
        {
            let gap: String = chars[prev_end(&chars, start)..start].iter().collect();
            if gap.contains('\n') || gap.contains('\r') {
                prev_s.push_str(s);
                continue;
            }
        }
        tokens.push(Token { kind, pos, text });
    }
    tokens.push(Token { kind: TokenKind::End, pos: chars.len() + 1, text: String::new() });
    Ok(tokens)
}

/// Returns the index just past the whitespace run that ends at `start`.
fn prev_end(chars: &[char], start: usize) -> usize {
    let mut j = start;
    while j > 0 && chars[j - 1].is_whitespace() {
        j -= 1;
    }
    j
}

fn read_string(chars: &[char], i: &mut usize, extended: bool) -> Result<String, Error> {
    let pos = *i + 1 - usize::from(extended);
    *i += 1; // opening quote
    let mut out = String::new();
    loop {
        let Some(&c) = chars.get(*i) else {
            return Err(Error::syntax("unterminated quoted string".into(), Some((pos, "'".into()))));
        };
        if c == '\'' {
            if chars.get(*i + 1) == Some(&'\'') {
                out.push('\'');
                *i += 2;
                continue;
            }
            *i += 1;
            return Ok(out);
        }
        if extended && c == '\\' {
            *i += 1;
            let Some(&e) = chars.get(*i) else {
                return Err(Error::syntax("unterminated quoted string".into(), Some((pos, "'".into()))));
            };
            *i += 1;
            match e {
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'x' => {
                    let v = read_digits(chars, i, 16, 2);
                    match v {
                        Some(v) => push_byte_escape(&mut out, v, pos)?,
                        None => out.push('x'),
                    }
                }
                '0'..='7' => {
                    *i -= 1;
                    let v = read_digits(chars, i, 8, 3).unwrap_or(0);
                    push_byte_escape(&mut out, v & 0xff, pos)?;
                }
                'u' | 'U' => {
                    let n = if e == 'u' { 4 } else { 8 };
                    let mut v = 0u32;
                    for _ in 0..n {
                        let d = chars.get(*i).and_then(|c| c.to_digit(16)).ok_or_else(|| {
                            Error::syntax("invalid Unicode escape: \\u needs 4 and \\U needs 8 hex digits".into(), Some((pos, format!("\\{e}"))))
                        })?;
                        v = v * 16 + d;
                        *i += 1;
                    }
                    let ch = char::from_u32(v).filter(|&c| c != '\0').ok_or_else(|| {
                        Error::syntax(format!("invalid Unicode escape value {v:#x}"), Some((pos, format!("\\{e}"))))
                    })?;
                    out.push(ch);
                }
                other => out.push(other),
            }
            continue;
        }
        out.push(c);
        *i += 1;
    }
}

fn read_digits(chars: &[char], i: &mut usize, radix: u32, max: usize) -> Option<u32> {
    let mut v = None;
    for _ in 0..max {
        match chars.get(*i).and_then(|c| c.to_digit(radix)) {
            Some(d) => {
                v = Some(v.unwrap_or(0) * radix + d);
                *i += 1;
            }
            None => break,
        }
    }
    v
}

/// Accepts byte escapes only for ASCII: a byte above 0x7f would have to
/// combine with other escapes into UTF-8, which this plugin does not do.
fn push_byte_escape(out: &mut String, v: u32, pos: usize) -> Result<(), Error> {
    if v == 0 || v > 0x7f {
        return Err(Error::syntax(
            format!("byte escape \\x{v:02x} is not supported: only ASCII characters other than NUL may be escaped this way"),
            Some((pos, "E'".into())),
        ));
    }
    out.push(char::from_u32(v).unwrap_or('?'));
    Ok(())
}

fn read_number(chars: &[char], i: &mut usize) {
    while chars.get(*i).is_some_and(char::is_ascii_digit) {
        *i += 1;
    }
    // A `..` after digits is not a decimal point (PostgreSQL's `integer..` rule).
    if chars.get(*i) == Some(&'.') && chars.get(*i + 1) != Some(&'.') {
        *i += 1;
        while chars.get(*i).is_some_and(char::is_ascii_digit) {
            *i += 1;
        }
    }
    if matches!(chars.get(*i), Some('e' | 'E')) {
        let mut j = *i + 1;
        if matches!(chars.get(j), Some('+' | '-')) {
            j += 1;
        }
        if chars.get(j).is_some_and(char::is_ascii_digit) {
            while chars.get(j).is_some_and(char::is_ascii_digit) {
                j += 1;
            }
            *i = j;
        }
    }
}

fn read_operator(chars: &[char], i: &mut usize, pos: usize) -> Result<TokenKind, Error> {
    let start = *i;
    while chars.get(*i).is_some_and(|c| OP_CHARS.contains(c)) {
        *i += 1;
    }
    let op: String = chars[start..*i].iter().collect();
    if op.contains("--") || op.contains("/*") {
        return Err(Error::syntax("comments are not allowed in a condition".into(), Some((pos, op))));
    }
    let mut n = op.chars().count();
    let ops: Vec<char> = op.chars().collect();
    // PostgreSQL drops trailing + and - from a multi-character operator
    // unless it contains one of ~ ! @ # % ^ & | ` ?, so `=-1` is `=` `-1`.
    if n > 1 && matches!(ops[n - 1], '+' | '-') && !ops[..n - 1].iter().any(|c| "~!@#^&|`?%".contains(*c)) {
        while n > 1 && matches!(ops[n - 1], '+' | '-') {
            n -= 1;
        }
    }
    *i = start + n;
    let op: String = ops[..n].iter().collect();
    Ok(TokenKind::Op(if op == "!=" { "<>".to_string() } else { op }))
}
