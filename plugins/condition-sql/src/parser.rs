//! Precedence-climbing parser with the operator precedence of PostgreSQL 15's
//! `gram.y`, lowest first:
//!
//! | level | operators | associativity |
//! | --- | --- | --- |
//! | 1 | `OR` | left |
//! | 2 | `AND` | left |
//! | 3 | `NOT` | right |
//! | 4 | `IS`, `ISNULL`, `NOTNULL` | nonassoc |
//! | 5 | `<` `>` `=` `<=` `>=` `<>` | nonassoc |
//! | 6 | `BETWEEN` `IN` `LIKE` `ILIKE` `NOT LIKE` ... | nonassoc |
//! | 7 | `ESCAPE` | nonassoc |
//! | 8 | any other operator (`->>`, `@>`, `?` ...) | left |
//! | 9 | `+` `-` | left |
//! | 10 | `*` `/` `%` | left |
//! | 11 | `^` | left |
//! | 12 | unary minus | right |
//! | 14 | `::` | left |
//!
//! "nonassoc" follows yacc: `a = b = c` is a syntax error, while a postfix
//! form such as `a IS NULL IS NULL` or `a IN (1) IN (2)` is accepted.

use crate::error::Error;
use crate::lexer::{Token, TokenKind, tokenize};
use crate::value::Ty;

/// Maximum nesting depth of the expression tree. Deeper text is rejected so
/// that the recursive parser, analyzer and evaluator stay far from the end
/// of the stack. Measured on x86_64 release builds, depth 100 fits in a
/// 256 KiB stack, well inside wasm32's default 1 MiB.
/// NOTE: unoptimized builds use far bigger frames (over 10 KiB per level),
/// so debug-build callers that accept hostile text need a larger stack.
pub const MAX_DEPTH: usize = 64;

const OR: u8 = 1;
const AND: u8 = 2;
const NOT: u8 = 3;
const IS: u8 = 4;
const CMP: u8 = 5;
const LIKE: u8 = 6;
const ESCAPE: u8 = 7;
const OP: u8 = 8;
const ADD: u8 = 9;
const MUL: u8 = 10;
const EXP: u8 = 11;
const UMINUS: u8 = 12;
const CAST: u8 = 14;

/// The columns of the event row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    EventName,
    UserId,
    Source,
    OccurredAt,
    Payload,
}

impl Column {
    fn from_name(name: &str) -> Option<Column> {
        Some(match name {
            "event_name" => Column::EventName,
            "user_id" => Column::UserId,
            "source" => Column::Source,
            "occurred_at" => Column::OccurredAt,
            "payload" => Column::Payload,
            _ => return None,
        })
    }

    pub fn ty(self) -> Ty {
        match self {
            Column::EventName | Column::Source => Ty::Text,
            Column::UserId => Ty::Uuid,
            Column::OccurredAt => Ty::Timestamptz,
            Column::Payload => Ty::Jsonb,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrimSide {
    Both,
    Leading,
    Trailing,
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Column(Column),
    Str(String),
    Num(String),
    Bool(bool),
    Null,
    TypedLit(Ty, String),
    Array(Vec<Node>),
    Cast(Box<Node>, Ty),
    Not(Box<Node>),
    Neg(Box<Node>),
    UPlus(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    /// A binary operator other than AND and OR, for example `=` or `->>`.
    BinOp(&'static str, Box<Node>, Box<Node>),
    IsNull { expr: Box<Node>, negated: bool },
    /// `IS [NOT] TRUE`, `IS [NOT] FALSE`, and `IS [NOT] UNKNOWN` (value None).
    IsBool { expr: Box<Node>, value: Option<bool>, negated: bool },
    IsDistinct { left: Box<Node>, right: Box<Node>, negated: bool },
    In { expr: Box<Node>, list: Vec<Node>, negated: bool },
    Between { expr: Box<Node>, low: Box<Node>, high: Box<Node>, negated: bool },
    Like { expr: Box<Node>, pattern: Box<Node>, escape: Option<Box<Node>>, case_insensitive: bool, negated: bool },
    Func(&'static str, Vec<Node>),
    Trim { side: TrimSide, chars: Option<Box<Node>>, expr: Box<Node> },
}

#[derive(Debug, Clone)]
pub struct Node {
    pub kind: NodeKind,
    /// One-based character position and text of the token that names this
    /// node (the operator, function name or literal), for error messages.
    pub pos: usize,
    pub text: String,
}

/// Operators accepted at level 8, beside the arithmetic and comparison ones.
const JSON_OPERATORS: &[&str] = &["->", "->>", "#>", "#>>", "?", "?|", "?&", "@>", "<@"];
const FUNCTIONS: &[&str] = &["coalesce", "lower", "upper", "length", "jsonb_array_length", "jsonb_typeof", "now"];

/// Keywords that PostgreSQL reserves, so they cannot be column names, plus
/// the ones that start a construct this plugin does not support.
const RESERVED: &[&str] = &[
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both", "case", "cast", "check",
    "collate", "column", "constraint", "create", "current_catalog", "current_date", "current_role", "current_time",
    "current_timestamp", "current_user", "default", "deferrable", "desc", "distinct", "do", "else", "end", "except",
    "exists", "false", "fetch", "for", "foreign", "from", "grant", "group", "having", "in", "initially", "intersect",
    "into", "lateral", "leading", "limit", "localtime", "localtimestamp", "not", "null", "offset", "on", "only", "or",
    "order", "placing", "primary", "references", "returning", "select", "session_user", "some", "symmetric", "table",
    "then", "to", "trailing", "true", "union", "unique", "user", "using", "variadic", "when", "where", "window", "with",
];

/// Parses a condition into an expression tree.
pub fn parse(text: &str) -> Result<Node, Error> {
    let tokens = tokenize(text)?;
    let mut parser = Parser { tokens, at: 0, depth: 0 };
    if parser.peek().kind == TokenKind::End {
        return Err(Error::syntax("condition is empty".into(), None));
    }
    let node = parser.expr(0)?;
    let tok = parser.peek();
    if tok.kind != TokenKind::End {
        return Err(parser.unexpected());
    }
    Ok(node)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

enum Infix {
    Or,
    And,
    Is,
    IsNullPostfix(bool),
    Compare(&'static str),
    Between(bool),
    In(bool),
    Like(bool, bool),
    Op(&'static str),
    Cast,
}

fn static_op(op: &str) -> Option<&'static str> {
    const ALL: &[&str] = &["=", "<>", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "^", "->", "->>", "#>", "#>>", "?", "?|", "?&", "@>", "<@"];
    ALL.iter().copied().find(|o| *o == op)
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.at]
    }

    fn peek_at(&self, n: usize) -> &Token {
        &self.tokens[(self.at + n).min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.tokens[self.at].clone();
        if self.at + 1 < self.tokens.len() {
            self.at += 1;
        }
        t
    }

    fn keyword_at(&self, n: usize) -> Option<&str> {
        match &self.peek_at(n).kind {
            TokenKind::Ident { name, quoted: false } => Some(name),
            _ => None,
        }
    }

    fn is_keyword(&self, kw: &str) -> bool {
        self.keyword_at(0) == Some(kw)
    }

    fn unexpected(&self) -> Error {
        let t = self.peek();
        if t.kind == TokenKind::End {
            Error::syntax("syntax error: unexpected end of condition".into(), Some((t.pos, String::new())))
        } else {
            Error::syntax("syntax error".into(), Some((t.pos, t.text.clone())))
        }
    }

    fn expect(&mut self, kind: TokenKind) -> Result<Token, Error> {
        if self.peek().kind == kind { Ok(self.next()) } else { Err(self.unexpected()) }
    }

    fn expect_keyword(&mut self, kw: &str) -> Result<Token, Error> {
        if self.is_keyword(kw) { Ok(self.next()) } else { Err(self.unexpected()) }
    }

    fn enter(&mut self) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let t = self.peek();
            return Err(Error::syntax(format!("condition is nested too deeply: the maximum depth is {MAX_DEPTH}"), Some((t.pos, t.text.clone()))));
        }
        Ok(())
    }

    fn expr(&mut self, min: u8) -> Result<Node, Error> {
        self.enter()?;
        let result = self.expr_inner(min);
        self.depth -= 1;
        result
    }

    fn infix(&self) -> Result<Option<(u8, Infix)>, Error> {
        let t = self.peek();
        Ok(Some(match &t.kind {
            TokenKind::Ident { name, quoted: false } => match name.as_str() {
                "or" => (OR, Infix::Or),
                "and" => (AND, Infix::And),
                "is" => (IS, Infix::Is),
                "isnull" => (IS, Infix::IsNullPostfix(false)),
                "notnull" => (IS, Infix::IsNullPostfix(true)),
                "between" => (LIKE, Infix::Between(false)),
                "in" => (LIKE, Infix::In(false)),
                "like" => (LIKE, Infix::Like(false, false)),
                "ilike" => (LIKE, Infix::Like(true, false)),
                "not" => match self.keyword_at(1) {
                    Some("between") => (LIKE, Infix::Between(true)),
                    Some("in") => (LIKE, Infix::In(true)),
                    Some("like") => (LIKE, Infix::Like(false, true)),
                    Some("ilike") => (LIKE, Infix::Like(true, true)),
                    _ => return Ok(None),
                },
                "similar" | "at" | "collate" | "overlaps" => {
                    return Err(Error::syntax(format!("{} is not supported", name.to_uppercase()), Some((t.pos, t.text.clone()))));
                }
                _ => return Ok(None),
            },
            TokenKind::Op(op) => {
                let Some(op) = static_op(op) else {
                    return Err(Error::syntax(format!("operator {op} is not supported"), Some((t.pos, t.text.clone()))));
                };
                let level = match op {
                    "=" | "<>" | "<" | "<=" | ">" | ">=" => return Ok(Some((CMP, Infix::Compare(op)))),
                    "+" | "-" => ADD,
                    "*" | "/" | "%" => MUL,
                    "^" => EXP,
                    _ if JSON_OPERATORS.contains(&op) => OP,
                    _ => unreachable!("static_op returned an unclassified operator"),
                };
                (level, Infix::Op(op))
            }
            TokenKind::TypeCast => (CAST, Infix::Cast),
            TokenKind::LBracket => {
                return Err(Error::syntax("array subscripts are not supported".into(), Some((t.pos, t.text.clone()))));
            }
            _ => return Ok(None),
        }))
    }

    fn expr_inner(&mut self, min: u8) -> Result<Node, Error> {
        let mut lhs = self.prefix()?;
        // The level of the last binary nonassociative operator applied in this
        // loop: another one at the same level right after it is a syntax error.
        let mut last_nonassoc: Option<u8> = None;
        // Every operator applied here makes the tree one level deeper, so it
        // counts toward MAX_DEPTH until this call returns.
        let mut chain = 0;
        let result = loop {
            let Some((level, infix)) = self.infix()? else { break Ok(lhs) };
            if level < min {
                break Ok(lhs);
            }
            if last_nonassoc == Some(level) {
                break Err(self.unexpected());
            }
            // AND and OR chains stay flat, so only other operators deepen the tree.
            if !matches!(infix, Infix::Or | Infix::And) {
                if let Err(e) = self.enter() {
                    break Err(e);
                }
                chain += 1;
            }
            let tok = self.next();
            let (pos, text) = (tok.pos, tok.text.clone());
            last_nonassoc = None;
            let kind = match infix {
                Infix::Or | Infix::And => {
                    let rhs = self.expr(level + 1)?;
                    let is_or = matches!(infix, Infix::Or);
                    // Chains of AND and OR become one flat node, so that long
                    // chains do not make the tree deep.
                    match (lhs.kind, is_or) {
                        (NodeKind::Or(mut items), true) => {
                            items.push(rhs);
                            NodeKind::Or(items)
                        }
                        (NodeKind::And(mut items), false) => {
                            items.push(rhs);
                            NodeKind::And(items)
                        }
                        (kind, true) => NodeKind::Or(vec![Node { kind, pos: lhs.pos, text: lhs.text }, rhs]),
                        (kind, false) => NodeKind::And(vec![Node { kind, pos: lhs.pos, text: lhs.text }, rhs]),
                    }
                }
                Infix::Is => {
                    let negated = if self.is_keyword("not") {
                        self.next();
                        true
                    } else {
                        false
                    };
                    let word = self.keyword_at(0).map(str::to_string);
                    match word.as_deref() {
                        Some("null") => {
                            self.next();
                            NodeKind::IsNull { expr: Box::new(lhs), negated }
                        }
                        Some(w @ ("true" | "false" | "unknown")) => {
                            let value = match w {
                                "true" => Some(true),
                                "false" => Some(false),
                                _ => None,
                            };
                            self.next();
                            NodeKind::IsBool { expr: Box::new(lhs), value, negated }
                        }
                        Some("distinct") => {
                            self.next();
                            self.expect_keyword("from")?;
                            let right = self.expr(level + 1)?;
                            last_nonassoc = Some(level);
                            NodeKind::IsDistinct { left: Box::new(lhs), right: Box::new(right), negated }
                        }
                        _ => return Err(self.unexpected()),
                    }
                }
                Infix::IsNullPostfix(negated) => NodeKind::IsNull { expr: Box::new(lhs), negated },
                Infix::Compare(op) | Infix::Op(op) => {
                    let nonassoc = level == CMP;
                    let rhs = self.expr(level + 1)?;
                    if nonassoc {
                        last_nonassoc = Some(level);
                    }
                    NodeKind::BinOp(op, Box::new(lhs), Box::new(rhs))
                }
                Infix::Between(negated) => {
                    if negated {
                        self.next();
                    }
                    if self.is_keyword("symmetric") || self.is_keyword("asymmetric") {
                        return Err(Error::syntax("BETWEEN SYMMETRIC is not supported".into(), Some((self.peek().pos, self.peek().text.clone()))));
                    }
                    // The lower bound is a `b_expr` in PostgreSQL's grammar: it
                    // cannot contain AND, so parse above the IS level.
                    let low = self.expr(CMP)?;
                    self.expect_keyword("and")?;
                    let high = self.expr(LIKE + 1)?;
                    last_nonassoc = Some(level);
                    NodeKind::Between { expr: Box::new(lhs), low: Box::new(low), high: Box::new(high), negated }
                }
                Infix::In(negated) => {
                    if negated {
                        self.next();
                    }
                    self.expect(TokenKind::LParen)?;
                    if self.is_keyword("select") || self.is_keyword("values") {
                        return Err(Error::syntax("subqueries are not supported".into(), Some((self.peek().pos, self.peek().text.clone()))));
                    }
                    let list = self.expr_list(TokenKind::RParen)?;
                    NodeKind::In { expr: Box::new(lhs), list, negated }
                }
                Infix::Like(case_insensitive, negated) => {
                    if negated {
                        self.next();
                    }
                    let pattern = self.expr(LIKE + 1)?;
                    let escape = if self.is_keyword("escape") {
                        self.next();
                        Some(Box::new(self.expr(ESCAPE)?))
                    } else {
                        None
                    };
                    last_nonassoc = Some(level);
                    NodeKind::Like { expr: Box::new(lhs), pattern: Box::new(pattern), escape, case_insensitive, negated }
                }
                Infix::Cast => {
                    let ty = self.type_name()?;
                    NodeKind::Cast(Box::new(lhs), ty)
                }
            };
            lhs = Node { kind, pos, text };
        };
        self.depth -= chain;
        result
    }

    fn expr_list(&mut self, close: TokenKind) -> Result<Vec<Node>, Error> {
        let mut list = vec![self.expr(0)?];
        while self.peek().kind == TokenKind::Comma {
            self.next();
            list.push(self.expr(0)?);
        }
        self.expect(close)?;
        Ok(list)
    }

    /// Parses a type name after `::`, in `CAST`, or before a string constant.
    fn type_name(&mut self) -> Result<Ty, Error> {
        let tok = self.peek().clone();
        let Some(word) = self.keyword_at(0).map(str::to_string) else {
            return Err(self.unexpected());
        };
        self.next();
        let ty = match word.as_str() {
            "text" => Ty::Text,
            "int" | "integer" | "int4" => Ty::Int4,
            "bigint" | "int8" => Ty::Int8,
            "numeric" | "decimal" => Ty::Numeric,
            "boolean" | "bool" => Ty::Bool,
            "jsonb" => Ty::Jsonb,
            "uuid" => Ty::Uuid,
            "date" => Ty::Date,
            "interval" => Ty::Interval,
            "timestamptz" => Ty::Timestamptz,
            "timestamp" => {
                if self.is_keyword("with") || self.is_keyword("without") {
                    let with = self.next().text.eq_ignore_ascii_case("with");
                    self.expect_keyword("time")?;
                    self.expect_keyword("zone")?;
                    if with { Ty::Timestamptz } else { Ty::Timestamp }
                } else {
                    Ty::Timestamp
                }
            }
            _ => return Err(Error::syntax(format!("type {word} is not supported"), Some((tok.pos, tok.text)))),
        };
        if self.peek().kind == TokenKind::LParen {
            return Err(Error::syntax("type modifiers are not supported".into(), Some((self.peek().pos, "(".into()))));
        }
        if self.peek().kind == TokenKind::LBracket {
            let t = self.next();
            self.expect(TokenKind::RBracket)?;
            if ty != Ty::Text {
                return Err(Error::syntax("only text[] is supported among array types".into(), Some((t.pos, t.text))));
            }
            return Ok(Ty::TextArray);
        }
        Ok(ty)
    }

    fn prefix(&mut self) -> Result<Node, Error> {
        let tok = self.peek().clone();
        let (pos, text) = (tok.pos, tok.text.clone());
        let node = |kind| Node { kind, pos, text: text.clone() };
        match &tok.kind {
            TokenKind::Str(s) => {
                self.next();
                Ok(node(NodeKind::Str(s.clone())))
            }
            TokenKind::Number(n) => {
                self.next();
                Ok(node(NodeKind::Num(n.clone())))
            }
            TokenKind::LParen => {
                self.next();
                if self.is_keyword("select") || self.is_keyword("values") || self.is_keyword("with") {
                    return Err(Error::syntax("subqueries are not supported".into(), Some((self.peek().pos, self.peek().text.clone()))));
                }
                let inner = self.expr(0)?;
                self.expect(TokenKind::RParen)?;
                Ok(inner)
            }
            TokenKind::Op(op) if op == "-" || op == "+" => {
                self.next();
                let operand = self.expr(UMINUS)?;
                if op == "+" {
                    return Ok(node(NodeKind::UPlus(Box::new(operand))));
                }
                // Like PostgreSQL's doNegate, a minus sign directly before a
                // numeric constant becomes part of the constant.
                if let NodeKind::Num(n) = &operand.kind {
                    let negated = match n.strip_prefix('-') {
                        Some(rest) => rest.to_string(),
                        None => format!("-{n}"),
                    };
                    return Ok(node(NodeKind::Num(negated)));
                }
                Ok(node(NodeKind::Neg(Box::new(operand))))
            }
            TokenKind::Ident { name, quoted } => {
                let name = name.clone();
                if *quoted {
                    self.next();
                    return self.column_ref(&name, pos, &text);
                }
                self.ident_prefix(&name, pos, &text)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn ident_prefix(&mut self, name: &str, pos: usize, text: &str) -> Result<Node, Error> {
        let node = |kind| Node { kind, pos, text: text.to_string() };
        // A type name directly followed by a string constant is a typed
        // literal, for example `interval '14 days'`.
        let typed_literal_start = matches!(
            name,
            "interval" | "date" | "timestamptz" | "timestamp" | "text" | "int" | "integer" | "int4" | "bigint" | "int8"
                | "numeric" | "decimal" | "boolean" | "bool" | "jsonb" | "uuid"
        );
        if typed_literal_start {
            let save = self.at;
            if let Ok(ty) = self.type_name()
                && let TokenKind::Str(s) = &self.peek().kind
            {
                let s = s.clone();
                self.next();
                if ty == Ty::TextArray {
                    return Err(Error::syntax("typed array constants are not supported; use '{...}'::text[]".into(), Some((pos, text.to_string()))));
                }
                return Ok(node(NodeKind::TypedLit(ty, s)));
            }
            self.at = save;
        }
        match name {
            "null" => {
                self.next();
                Ok(node(NodeKind::Null))
            }
            "true" | "false" => {
                self.next();
                Ok(node(NodeKind::Bool(name == "true")))
            }
            "not" => {
                self.next();
                let operand = self.expr(NOT)?;
                Ok(node(NodeKind::Not(Box::new(operand))))
            }
            "current_timestamp" | "current_date" => {
                self.next();
                if self.peek().kind == TokenKind::LParen {
                    return Err(Error::syntax(format!("{} takes no argument list", name.to_uppercase()), Some((self.peek().pos, "(".into()))));
                }
                let now = Node { kind: NodeKind::Func("now", Vec::new()), pos, text: text.to_string() };
                if name == "current_date" {
                    return Ok(node(NodeKind::Cast(Box::new(now), Ty::Date)));
                }
                Ok(now)
            }
            "cast" => {
                self.next();
                self.expect(TokenKind::LParen)?;
                let inner = self.expr(0)?;
                self.expect_keyword("as")?;
                let ty = self.type_name()?;
                self.expect(TokenKind::RParen)?;
                Ok(node(NodeKind::Cast(Box::new(inner), ty)))
            }
            "array" => {
                self.next();
                if self.peek().kind != TokenKind::LBracket {
                    return Err(Error::syntax("only ARRAY[...] constructors are supported".into(), Some((self.peek().pos, self.peek().text.clone()))));
                }
                self.next();
                let items = if self.peek().kind == TokenKind::RBracket {
                    self.next();
                    Vec::new()
                } else {
                    self.expr_list(TokenKind::RBracket)?
                };
                Ok(node(NodeKind::Array(items)))
            }
            "trim" if self.peek_at(1).kind == TokenKind::LParen => {
                self.next();
                self.next();
                self.trim_args(pos, text)
            }
            _ if self.peek_at(1).kind == TokenKind::LParen => {
                let Some(func) = FUNCTIONS.iter().copied().find(|f| *f == name) else {
                    return Err(Error::analysis(format!("function {name} is not supported"), Some((pos, text.to_string()))));
                };
                self.next();
                self.next();
                let args = if self.peek().kind == TokenKind::RParen {
                    self.next();
                    Vec::new()
                } else {
                    if self.is_keyword("distinct") || self.is_keyword("all") {
                        return Err(self.unexpected());
                    }
                    self.expr_list(TokenKind::RParen)?
                };
                Ok(node(NodeKind::Func(func, args)))
            }
            "exists" | "select" | "case" => {
                Err(Error::syntax(format!("{} is not supported", name.to_uppercase()), Some((pos, text.to_string()))))
            }
            _ if RESERVED.contains(&name) => Err(self.unexpected()),
            _ => {
                self.next();
                self.column_ref(name, pos, text)
            }
        }
    }

    fn column_ref(&mut self, name: &str, pos: usize, text: &str) -> Result<Node, Error> {
        let (column_name, cpos, ctext) = if self.peek().kind == TokenKind::Dot {
            self.next();
            if name != "e" {
                return Err(Error::analysis(format!("missing FROM-clause entry for table \"{name}\": the only table is e"), Some((pos, text.to_string()))));
            }
            let t = self.next();
            match t.kind {
                TokenKind::Ident { name, .. } => (name, t.pos, t.text),
                _ => return Err(Error::syntax("syntax error".into(), Some((t.pos, t.text)))),
            }
        } else {
            (name.to_string(), pos, text.to_string())
        };
        if self.peek().kind == TokenKind::Dot {
            return Err(Error::syntax("composite field access is not supported".into(), Some((self.peek().pos, ".".into()))));
        }
        if self.peek().kind == TokenKind::LParen {
            return Err(Error::analysis(format!("function {column_name} is not supported"), Some((cpos, ctext))));
        }
        match Column::from_name(&column_name) {
            Some(c) => Ok(Node { kind: NodeKind::Column(c), pos: cpos, text: ctext }),
            None => Err(Error::analysis(
                format!("column \"{column_name}\" does not exist; the columns are event_name, user_id, source, occurred_at and payload"),
                Some((cpos, ctext)),
            )),
        }
    }

    /// Parses the arguments of `trim(...)` after the opening parenthesis.
    fn trim_args(&mut self, pos: usize, text: &str) -> Result<Node, Error> {
        let mut side = TrimSide::Both;
        let mut explicit_side = false;
        for (kw, s) in [("both", TrimSide::Both), ("leading", TrimSide::Leading), ("trailing", TrimSide::Trailing)] {
            if self.is_keyword(kw) {
                self.next();
                side = s;
                explicit_side = true;
                break;
            }
        }
        let (chars, expr) = if self.is_keyword("from") {
            self.next();
            (None, self.expr(0)?)
        } else {
            let first = self.expr(0)?;
            if self.is_keyword("from") {
                self.next();
                (Some(Box::new(first)), self.expr(0)?)
            } else if self.peek().kind == TokenKind::Comma && !explicit_side {
                // trim(string, characters)
                self.next();
                let chars = self.expr(0)?;
                (Some(Box::new(chars)), first)
            } else {
                (None, first)
            }
        };
        self.expect(TokenKind::RParen)?;
        Ok(Node { kind: NodeKind::Trim { side, chars, expr: Box::new(expr) }, pos, text: text.to_string() })
    }
}
