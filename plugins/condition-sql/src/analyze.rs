//! Type resolution: turns the parse tree into a typed expression, the way
//! PostgreSQL's parse analysis does. Everything PostgreSQL rejects before
//! running the query is rejected here: unknown operators for the argument
//! types (`text = integer`), invalid constants (`'abc'::int`), missing
//! casts and non-boolean conditions.

use crate::error::Error;
use crate::parser::{Column, Node, NodeKind, TrimSide};
use crate::value::{Ty, Value};

/// Nodes of the typed expression. Strict functions and operators are
/// `Call`s: any NULL argument makes them NULL.
#[derive(Debug, Clone)]
pub enum Ir {
    Const(Value),
    Column(Column),
    Now,
    Call(Func, Vec<Ir>),
    And(Vec<Ir>),
    Or(Vec<Ir>),
    Not(Box<Ir>),
    IsNull(Box<Ir>, bool),
    /// `IS [NOT] TRUE/FALSE/UNKNOWN`; the value is None for UNKNOWN.
    BoolTest(Box<Ir>, Option<bool>, bool),
    /// `IS [NOT] DISTINCT FROM`, with the flag true for `IS NOT DISTINCT`.
    Distinct(Box<Ir>, Box<Ir>, bool),
    /// `x = ANY (ARRAY[...])` (for `IN`) or `x <> ALL (...)` (for `NOT IN`).
    InList { left: Box<Ir>, items: Vec<Ir>, negated: bool },
    Coalesce(Vec<Ir>),
    /// `ARRAY[...]` of text, which keeps NULL elements.
    Array(Vec<Ir>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn from_str(op: &str) -> Option<CmpOp> {
        Some(match op {
            "=" => CmpOp::Eq,
            "<>" => CmpOp::Ne,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            ">" => CmpOp::Gt,
            ">=" => CmpOp::Ge,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Cmp(CmpOp),
    /// A cast between known types; `io` marks a cast through the text
    /// output and input functions (`CoerceViaIO`).
    Cast { from: Ty, to: Ty, stable: bool, io: bool },
    /// Integer and numeric arithmetic, with both operands of type `ty`.
    Arith(ArithOp, Ty),
    Neg(Ty),
    /// Timestamp plus or minus interval. Stable for timestamptz.
    TimestampAddInterval { subtract: bool, stable: bool },
    TimestampDiff,
    DateAddDays { subtract: bool },
    DateDiff,
    IntervalAdd { subtract: bool },
    /// `->` (`text` false) or `->>` (`text` true) with a key or an index.
    JsonGet { text: bool },
    /// `#>` or `#>>`.
    JsonPath { text: bool },
    JsonExists,
    JsonExistsAny,
    JsonExistsAll,
    JsonContains,
    JsonContainedBy,
    Like { case_insensitive: bool },
    LikeEscape,
    Lower,
    Upper,
    Length,
    Trim(TrimSide),
    TrimChars(TrimSide),
    JsonbArrayLength,
    JsonbTypeof,
}

impl Func {
    /// Whether PostgreSQL marks the function `STABLE`, so the planner does not
    /// evaluate it ahead of execution.
    pub fn is_stable(self) -> bool {
        matches!(self, Func::Cast { stable: true, .. } | Func::TimestampAddInterval { stable: true, .. })
    }

    /// The planner's cost estimate in units of `cpu_operator_cost`: every
    /// built-in function here has `procost` 1, and a cast through text calls
    /// two functions.
    pub fn cost(self) -> f64 {
        match self {
            Func::Cast { io: true, .. } => 2.0,
            _ => 1.0,
        }
    }
}

struct Typed {
    ir: Ir,
    ty: Ty,
}

/// Maximum nesting of the tree the analyzer builds; a `BETWEEN` copies its
/// operand, so this can exceed the parser's limit a little.
const MAX_IR_DEPTH: usize = 200;

pub struct Analyzer {
    /// The transaction time, for constants such as `'now'::timestamptz`,
    /// which PostgreSQL also resolves while analyzing.
    pub now: i64,
    depth: usize,
}

fn at(node: &Node) -> Option<(usize, String)> {
    Some((node.pos, node.text.clone()))
}

fn no_operator(node: &Node, op: &str, l: Ty, r: Ty) -> Error {
    Error::analysis(format!("operator does not exist: {} {op} {}", l.name(), r.name()), at(node))
}

fn is_numeric(t: Ty) -> bool {
    matches!(t, Ty::Int4 | Ty::Int8 | Ty::Numeric)
}

fn is_datetime(t: Ty) -> bool {
    matches!(t, Ty::Date | Ty::Timestamp | Ty::Timestamptz)
}

/// Reports whether a node refers to a column, as `contain_vars_of_level` checks
/// when PostgreSQL decides how to expand `IN`.
fn contains_column(node: &Node) -> bool {
    use NodeKind::*;
    match &node.kind {
        Column(_) => true,
        Str(_) | Num(_) | Bool(_) | Null | TypedLit(..) => false,
        Array(items) | And(items) | Or(items) | Func(_, items) => items.iter().any(contains_column),
        Cast(e, _) | Not(e) | Neg(e) | UPlus(e) => contains_column(e),
        BinOp(_, l, r) => contains_column(l) || contains_column(r),
        IsNull { expr, .. } | IsBool { expr, .. } => contains_column(expr),
        IsDistinct { left, right, .. } => contains_column(left) || contains_column(right),
        In { expr, list, .. } => contains_column(expr) || list.iter().any(contains_column),
        Between { expr, low, high, .. } => contains_column(expr) || contains_column(low) || contains_column(high),
        Like { expr, pattern, escape, .. } => {
            contains_column(expr) || contains_column(pattern) || escape.as_deref().is_some_and(contains_column)
        }
        Trim { chars, expr, .. } => contains_column(expr) || chars.as_deref().is_some_and(contains_column),
    }
}

/// Finds the common type of several expressions like `select_common_type`,
/// or returns None when PostgreSQL would report that they cannot be matched.
fn common_type(types: &[Ty]) -> Option<Ty> {
    let mut known = types.iter().copied().filter(|t| *t != Ty::Unknown);
    let Some(mut ptype) = known.next() else { return Some(Ty::Text) };
    for t in known {
        if t == ptype {
            continue;
        }
        if t.category() != ptype.category() {
            return None;
        }
        if !ptype.is_preferred() && ptype.casts_implicitly_to(t) && !t.casts_implicitly_to(ptype) {
            ptype = t;
        }
    }
    let all_coerce = types.iter().all(|t| *t == Ty::Unknown || *t == ptype || t.casts_implicitly_to(ptype));
    all_coerce.then_some(ptype)
}

impl Analyzer {
    pub fn new(now: i64) -> Self {
        Analyzer { now, depth: 0 }
    }

    /// Analyzes a whole condition, which must be boolean like a WHERE clause.
    pub fn condition(&mut self, node: &Node) -> Result<Ir, Error> {
        let t = self.expr(node)?;
        self.to_bool(t, node, "WHERE")
    }

    fn to_bool(&self, t: Typed, node: &Node, context: &str) -> Result<Ir, Error> {
        match t.ty {
            Ty::Bool => Ok(t.ir),
            Ty::Unknown => self.coerce(t, Ty::Bool, node),
            other => Err(Error::analysis(
                format!("argument of {context} must be type boolean, not type {}", other.name()),
                at(node),
            )),
        }
    }

    /// Coerces an expression to `to` implicitly, as operator and function
    /// arguments are. String constants and NULL of unknown type are
    /// converted right away by `to`'s input function.
    fn coerce(&self, t: Typed, to: Ty, node: &Node) -> Result<Ir, Error> {
        if t.ty == to {
            return Ok(t.ir);
        }
        if t.ty == Ty::Unknown {
            return self.convert_unknown(t.ir, to, node);
        }
        if t.ty.casts_implicitly_to(to) {
            let stable = t.ty.explicit_cast(to).unwrap_or(false);
            return Ok(Ir::Call(Func::Cast { from: t.ty, to, stable, io: false }, vec![t.ir]));
        }
        Err(Error::analysis(format!("cannot convert type {} to {}", t.ty.name(), to.name()), at(node)))
    }

    fn convert_unknown(&self, ir: Ir, to: Ty, node: &Node) -> Result<Ir, Error> {
        match ir {
            Ir::Const(Value::Text(s)) => {
                Value::input(to, &s, self.now).map(Ir::Const).map_err(|m| Error::analysis(m, at(node)))
            }
            Ir::Const(Value::Null) => Ok(Ir::Const(Value::Null)),
            other => unreachable!("an unknown-typed expression is always a constant, got {other:?}"),
        }
    }

    fn cast(&self, t: Typed, to: Ty, node: &Node) -> Result<Typed, Error> {
        if t.ty == Ty::Unknown {
            return Ok(Typed { ir: self.convert_unknown(t.ir, to, node)?, ty: to });
        }
        let Some(stable) = t.ty.explicit_cast(to) else {
            return Err(Error::analysis(format!("cannot cast type {} to {}", t.ty.name(), to.name()), at(node)));
        };
        if t.ty == to {
            return Ok(t);
        }
        let io = to == Ty::Text || t.ty == Ty::Text;
        Ok(Typed { ir: Ir::Call(Func::Cast { from: t.ty, to, stable, io }, vec![t.ir]), ty: to })
    }

    fn expr(&mut self, node: &Node) -> Result<Typed, Error> {
        self.depth += 1;
        if self.depth > MAX_IR_DEPTH {
            return Err(Error::syntax(format!("condition is nested too deeply: the maximum depth is {MAX_IR_DEPTH}"), at(node)));
        }
        let result = self.expr_inner(node);
        self.depth -= 1;
        result
    }

    fn expr_inner(&mut self, node: &Node) -> Result<Typed, Error> {
        let typed = |ir, ty| Ok(Typed { ir, ty });
        match &node.kind {
            NodeKind::Column(c) => typed(Ir::Column(*c), c.ty()),
            NodeKind::Str(s) => typed(Ir::Const(Value::text(s.as_str())), Ty::Unknown),
            NodeKind::Null => typed(Ir::Const(Value::Null), Ty::Unknown),
            NodeKind::Bool(b) => typed(Ir::Const(Value::Bool(*b)), Ty::Bool),
            NodeKind::Num(n) => {
                let is_integer = n.trim_start_matches('-').bytes().all(|c| c.is_ascii_digit());
                if is_integer && let Ok(v) = n.parse::<i64>() {
                    return match i32::try_from(v) {
                        Ok(v) => typed(Ir::Const(Value::Int4(v)), Ty::Int4),
                        Err(_) => typed(Ir::Const(Value::Int8(v)), Ty::Int8),
                    };
                }
                let v = Value::input(Ty::Numeric, n, self.now).map_err(|m| Error::analysis(m, at(node)))?;
                typed(Ir::Const(v), Ty::Numeric)
            }
            NodeKind::TypedLit(ty, s) => {
                let v = Value::input(*ty, s, self.now).map_err(|m| Error::analysis(m, at(node)))?;
                typed(Ir::Const(v), *ty)
            }
            NodeKind::Array(items) => {
                let mut irs = Vec::with_capacity(items.len());
                let mut types = Vec::with_capacity(items.len());
                let mut analyzed = Vec::with_capacity(items.len());
                for item in items {
                    let t = self.expr(item)?;
                    types.push(t.ty);
                    analyzed.push(t);
                }
                if items.is_empty() {
                    return Err(Error::analysis("cannot determine type of empty array; write '{}'::text[]".into(), at(node)));
                }
                if common_type(&types) != Some(Ty::Text) {
                    return Err(Error::analysis("only arrays of text are supported".into(), at(node)));
                }
                for (t, item) in analyzed.into_iter().zip(items) {
                    irs.push(self.coerce(t, Ty::Text, item)?);
                }
                typed(Ir::Array(irs), Ty::TextArray)
            }
            NodeKind::Cast(inner, ty) => {
                let t = self.expr(inner)?;
                self.cast(t, *ty, node)
            }
            NodeKind::Not(inner) => {
                let t = self.expr(inner)?;
                typed(Ir::Not(Box::new(self.to_bool(t, inner, "NOT")?)), Ty::Bool)
            }
            NodeKind::And(items) | NodeKind::Or(items) => {
                let is_and = matches!(node.kind, NodeKind::And(_));
                let mut irs = Vec::with_capacity(items.len());
                for item in items {
                    let t = self.expr(item)?;
                    irs.push(self.to_bool(t, item, if is_and { "AND" } else { "OR" })?);
                }
                typed(if is_and { Ir::And(irs) } else { Ir::Or(irs) }, Ty::Bool)
            }
            NodeKind::Neg(inner) | NodeKind::UPlus(inner) => {
                let t = self.expr(inner)?;
                let negate = matches!(node.kind, NodeKind::Neg(_));
                let op = if negate { "-" } else { "+" };
                match t.ty {
                    Ty::Int4 | Ty::Int8 | Ty::Numeric | Ty::Interval => {
                        if negate {
                            typed(Ir::Call(Func::Neg(t.ty), vec![t.ir]), t.ty)
                        } else {
                            Ok(t)
                        }
                    }
                    Ty::Unknown => Err(Error::analysis(format!("operator is not unique: {op} unknown"), at(node))),
                    other => Err(Error::analysis(format!("operator does not exist: {op} {}", other.name()), at(node))),
                }
            }
            NodeKind::BinOp(op, l, r) => {
                let lt = self.expr(l)?;
                let rt = self.expr(r)?;
                self.binop(node, op, lt, rt, l, r)
            }
            NodeKind::IsNull { expr, negated } => {
                let t = self.expr(expr)?;
                typed(Ir::IsNull(Box::new(t.ir), *negated), Ty::Bool)
            }
            NodeKind::IsBool { expr, value, negated } => {
                let t = self.expr(expr)?;
                let test = match value {
                    Some(true) => "IS TRUE",
                    Some(false) => "IS FALSE",
                    None => "IS UNKNOWN",
                };
                let ir = self.to_bool(t, expr, test)?;
                typed(Ir::BoolTest(Box::new(ir), *value, *negated), Ty::Bool)
            }
            NodeKind::IsDistinct { left, right, negated } => {
                let lt = self.expr(left)?;
                let rt = self.expr(right)?;
                let (li, ri) = self.compare_args(node, "=", lt, rt, left, right)?;
                typed(Ir::Distinct(Box::new(li), Box::new(ri), *negated), Ty::Bool)
            }
            NodeKind::Between { expr, low, high, negated } => {
                // PostgreSQL rewrites BETWEEN into two comparisons that each
                // analyze the operand again.
                let (op1, op2) = if *negated { ("<", ">") } else { (">=", "<=") };
                let a1 = self.expr(expr)?;
                let lo = self.expr(low)?;
                let first = self.compare(node, op1, a1, lo, expr, low)?;
                let a2 = self.expr(expr)?;
                let hi = self.expr(high)?;
                let second = self.compare(node, op2, a2, hi, expr, high)?;
                let items = vec![first, second];
                typed(if *negated { Ir::Or(items) } else { Ir::And(items) }, Ty::Bool)
            }
            NodeKind::In { expr, list, negated } => self.in_list(node, expr, list, *negated),
            NodeKind::Like { expr, pattern, escape, case_insensitive, negated } => {
                let lt = self.expr(expr)?;
                let pt = self.expr(pattern)?;
                let op = match (case_insensitive, negated) {
                    (false, false) => "~~",
                    (false, true) => "!~~",
                    (true, false) => "~~*",
                    (true, true) => "!~~*",
                };
                if !matches!(lt.ty, Ty::Text | Ty::Unknown) || !matches!(pt.ty, Ty::Text | Ty::Unknown) {
                    return Err(no_operator(node, op, lt.ty, pt.ty));
                }
                let li = self.coerce(lt, Ty::Text, expr)?;
                let mut pi = self.coerce(pt, Ty::Text, pattern)?;
                if let Some(esc) = escape {
                    let et = self.expr(esc)?;
                    if !matches!(et.ty, Ty::Text | Ty::Unknown) {
                        return Err(Error::analysis(format!("function like_escape(text, {}) does not exist", et.ty.name()), at(esc)));
                    }
                    let ei = self.coerce(et, Ty::Text, esc)?;
                    pi = Ir::Call(Func::LikeEscape, vec![pi, ei]);
                }
                let like = Ir::Call(Func::Like { case_insensitive: *case_insensitive }, vec![li, pi]);
                typed(if *negated { Ir::Not(Box::new(like)) } else { like }, Ty::Bool)
            }
            NodeKind::Func(name, args) => self.function(node, name, args),
            NodeKind::Trim { side, chars, expr } => {
                let t = self.expr(expr)?;
                let ir = self.text_arg(node, "btrim", t, expr)?;
                match chars {
                    None => typed(Ir::Call(Func::Trim(*side), vec![ir]), Ty::Text),
                    Some(c) => {
                        let ct = self.expr(c)?;
                        let ci = self.text_arg(node, "btrim", ct, c)?;
                        typed(Ir::Call(Func::TrimChars(*side), vec![ir, ci]), Ty::Text)
                    }
                }
            }
        }
    }

    fn text_arg(&self, node: &Node, func: &str, t: Typed, arg: &Node) -> Result<Ir, Error> {
        match t.ty {
            Ty::Text | Ty::Unknown => self.coerce(t, Ty::Text, arg),
            other => Err(Error::analysis(format!("function {func}({}) does not exist", other.name()), at(node))),
        }
    }

    fn function(&mut self, node: &Node, name: &str, args: &[Node]) -> Result<Typed, Error> {
        let mut analyzed = Vec::with_capacity(args.len());
        for a in args {
            analyzed.push(self.expr(a)?);
        }
        let type_names: Vec<&str> = analyzed.iter().map(|t| t.ty.name()).collect();
        let signature = || Error::analysis(format!("function {name}({}) does not exist", type_names.join(", ")), at(node));
        match name {
            "now" => {
                if !args.is_empty() {
                    return Err(signature());
                }
                Ok(Typed { ir: Ir::Now, ty: Ty::Timestamptz })
            }
            "coalesce" => {
                let types: Vec<Ty> = analyzed.iter().map(|t| t.ty).collect();
                let Some(ty) = common_type(&types) else {
                    let names: Vec<&str> = types.iter().filter(|t| **t != Ty::Unknown).map(|t| t.name()).collect();
                    return Err(Error::analysis(format!("COALESCE types {} cannot be matched", names.join(" and ")), at(node)));
                };
                let mut irs = Vec::with_capacity(args.len());
                for (t, a) in analyzed.into_iter().zip(args) {
                    irs.push(self.coerce(t, ty, a)?);
                }
                Ok(Typed { ir: Ir::Coalesce(irs), ty })
            }
            _ => {
                if analyzed.len() != 1 {
                    return Err(signature());
                }
                let t = analyzed.pop().expect("one argument");
                let (func, arg_ty, result) = match name {
                    "lower" => (Func::Lower, Ty::Text, Ty::Text),
                    "upper" => (Func::Upper, Ty::Text, Ty::Text),
                    "length" => (Func::Length, Ty::Text, Ty::Int4),
                    "jsonb_array_length" => (Func::JsonbArrayLength, Ty::Jsonb, Ty::Int4),
                    "jsonb_typeof" => (Func::JsonbTypeof, Ty::Jsonb, Ty::Text),
                    _ => return Err(signature()),
                };
                if t.ty != arg_ty && t.ty != Ty::Unknown {
                    return Err(Error::analysis(format!("function {name}({}) does not exist", t.ty.name()), at(node)));
                }
                let ir = self.coerce(t, arg_ty, &args[0])?;
                Ok(Typed { ir: Ir::Call(func, vec![ir]), ty: result })
            }
        }
    }

    /// Resolves the argument types of a comparison and coerces both sides.
    fn compare_args(&self, node: &Node, op: &str, l: Typed, r: Typed, ln: &Node, rn: &Node) -> Result<(Ir, Ir), Error> {
        let target = match (l.ty, r.ty) {
            (Ty::Unknown, Ty::Unknown) => Ty::Text,
            (Ty::Unknown, t) | (t, Ty::Unknown) => t,
            (a, b) if a == b => a,
            (a, b) if is_numeric(a) && is_numeric(b) => {
                if a == Ty::Numeric || b == Ty::Numeric { Ty::Numeric } else { Ty::Int8 }
            }
            (a, b) if is_datetime(a) && is_datetime(b) => {
                if a == Ty::Timestamptz || b == Ty::Timestamptz { Ty::Timestamptz } else { Ty::Timestamp }
            }
            (a, b) => return Err(no_operator(node, op, a, b)),
        };
        Ok((self.coerce(l, target, ln)?, self.coerce(r, target, rn)?))
    }

    fn compare(&self, node: &Node, op: &str, l: Typed, r: Typed, ln: &Node, rn: &Node) -> Result<Ir, Error> {
        let cmp = CmpOp::from_str(op).expect("comparison operator");
        let (li, ri) = self.compare_args(node, op, l, r, ln, rn)?;
        Ok(Ir::Call(Func::Cmp(cmp), vec![li, ri]))
    }

    fn binop(&mut self, node: &Node, op: &str, l: Typed, r: Typed, ln: &Node, rn: &Node) -> Result<Typed, Error> {
        if CmpOp::from_str(op).is_some() {
            return Ok(Typed { ir: self.compare(node, op, l, r, ln, rn)?, ty: Ty::Bool });
        }
        let (lt, rt) = (l.ty, r.ty);
        let call = |func, args, ty| Ok(Typed { ir: Ir::Call(func, args), ty });
        match op {
            "->" | "->>" => {
                let text = op == "->>";
                if lt != Ty::Jsonb {
                    return Err(if lt == Ty::Unknown {
                        Error::analysis(format!("operator is not unique: unknown {op} {}", rt.name()), at(node))
                    } else {
                        no_operator(node, op, lt, rt)
                    });
                }
                let key = match rt {
                    Ty::Unknown | Ty::Text => self.coerce(r, Ty::Text, rn)?,
                    Ty::Int4 => r.ir,
                    _ => return Err(no_operator(node, op, lt, rt)),
                };
                call(Func::JsonGet { text }, vec![l.ir, key], if text { Ty::Text } else { Ty::Jsonb })
            }
            "#>" | "#>>" => {
                let text = op == "#>>";
                if lt != Ty::Jsonb {
                    return Err(if lt == Ty::Unknown {
                        Error::analysis(format!("operator is not unique: unknown {op} {}", rt.name()), at(node))
                    } else {
                        no_operator(node, op, lt, rt)
                    });
                }
                if !matches!(rt, Ty::Unknown | Ty::TextArray) {
                    return Err(no_operator(node, op, lt, rt));
                }
                let path = self.coerce(r, Ty::TextArray, rn)?;
                call(Func::JsonPath { text }, vec![l.ir, path], if text { Ty::Text } else { Ty::Jsonb })
            }
            "?" | "?|" | "?&" => {
                let accepts_unknown_left = op != "?|";
                if !(lt == Ty::Jsonb || (lt == Ty::Unknown && accepts_unknown_left)) {
                    return Err(if lt == Ty::Unknown {
                        Error::analysis(format!("operator is not unique: unknown {op} {}", rt.name()), at(node))
                    } else {
                        no_operator(node, op, lt, rt)
                    });
                }
                let (func, key_ty) = match op {
                    "?" => (Func::JsonExists, Ty::Text),
                    "?|" => (Func::JsonExistsAny, Ty::TextArray),
                    _ => (Func::JsonExistsAll, Ty::TextArray),
                };
                if rt != key_ty && rt != Ty::Unknown {
                    return Err(no_operator(node, op, lt, rt));
                }
                let li = self.coerce(l, Ty::Jsonb, ln)?;
                let ri = self.coerce(r, key_ty, rn)?;
                call(func, vec![li, ri], Ty::Bool)
            }
            "@>" | "<@" => {
                let func = if op == "@>" { Func::JsonContains } else { Func::JsonContainedBy };
                match (lt, rt) {
                    (Ty::Jsonb, Ty::Jsonb | Ty::Unknown) | (Ty::Unknown, Ty::Jsonb) => {
                        let li = self.coerce(l, Ty::Jsonb, ln)?;
                        let ri = self.coerce(r, Ty::Jsonb, rn)?;
                        call(func, vec![li, ri], Ty::Bool)
                    }
                    (Ty::Unknown, Ty::Unknown) => Err(Error::analysis(format!("operator is not unique: unknown {op} unknown"), at(node))),
                    _ => Err(no_operator(node, op, lt, rt)),
                }
            }
            "+" | "-" | "*" | "/" | "%" | "^" => self.arith(node, op, l, r, ln, rn),
            _ => Err(Error::analysis(format!("operator {op} is not supported"), at(node))),
        }
    }

    fn arith(&mut self, node: &Node, op: &str, l: Typed, r: Typed, ln: &Node, rn: &Node) -> Result<Typed, Error> {
        let (lt, rt) = (l.ty, r.ty);
        let not_unique = || Error::analysis(format!("operator is not unique: {} {op} {}", lt.name(), rt.name()), at(node));
        if lt == Ty::Unknown && rt == Ty::Unknown {
            return Err(not_unique());
        }
        // A string constant takes the other side's type when that makes an
        // existing operator, else the only other candidate.
        let resolve_unknown = |known: Ty, unknown_on_right: bool| -> Option<Ty> {
            match (known, op) {
                (t, _) if is_numeric(t) && op != "^" => Some(t),
                (Ty::Interval, "+" | "-") => Some(Ty::Interval),
                (Ty::Timestamptz | Ty::Timestamp, "+") => Some(Ty::Interval),
                (Ty::Timestamptz | Ty::Timestamp, "-") if unknown_on_right => Some(known),
                (Ty::Timestamptz | Ty::Timestamp, "-") => Some(known),
                (Ty::Date, "-") => Some(Ty::Date),
                _ => None,
            }
        };
        let (lt, rt) = match (lt, rt) {
            (Ty::Unknown, t) => (resolve_unknown(t, false).ok_or_else(not_unique)?, t),
            (t, Ty::Unknown) => (t, resolve_unknown(t, true).ok_or_else(not_unique)?),
            pair => pair,
        };
        let li = self.coerce(l, lt, ln)?;
        let ri = self.coerce(r, rt, rn)?;
        let arith_op = match op {
            "+" => ArithOp::Add,
            "-" => ArithOp::Sub,
            "*" => ArithOp::Mul,
            "/" => ArithOp::Div,
            "%" => ArithOp::Mod,
            _ => return Err(Error::analysis(format!("operator {op} is not supported"), at(node))),
        };
        let subtract = arith_op == ArithOp::Sub;
        let call = |func, args, ty| Ok(Typed { ir: Ir::Call(func, args), ty });
        if is_numeric(lt) && is_numeric(rt) {
            let ty = if lt == Ty::Numeric || rt == Ty::Numeric {
                Ty::Numeric
            } else if lt == Ty::Int8 || rt == Ty::Int8 {
                Ty::Int8
            } else {
                Ty::Int4
            };
            // NOTE: numeric division and modulo need PostgreSQL's result-scale
            // rules (`select_div_scale`), which are not implemented, so they are
            // rejected at check time instead of answering differently.
            if ty == Ty::Numeric && matches!(arith_op, ArithOp::Div | ArithOp::Mod) {
                return Err(Error::analysis(format!("operator {op} is not supported for numeric"), at(node)));
            }
            let li = self.coerce(Typed { ir: li, ty: lt }, ty, ln)?;
            let ri = self.coerce(Typed { ir: ri, ty: rt }, ty, rn)?;
            return call(Func::Arith(arith_op, ty), vec![li, ri], ty);
        }
        let no_op = || no_operator(node, op, lt, rt);
        match (lt, rt, arith_op) {
            (Ty::Timestamptz | Ty::Timestamp, Ty::Interval, ArithOp::Add | ArithOp::Sub) => {
                call(Func::TimestampAddInterval { subtract, stable: lt == Ty::Timestamptz }, vec![li, ri], lt)
            }
            (Ty::Interval, Ty::Timestamptz | Ty::Timestamp, ArithOp::Add) => {
                call(Func::TimestampAddInterval { subtract: false, stable: rt == Ty::Timestamptz }, vec![ri, li], rt)
            }
            (Ty::Date, Ty::Interval, ArithOp::Add | ArithOp::Sub) | (Ty::Interval, Ty::Date, ArithOp::Add) => {
                let (d, dn, iv) = if lt == Ty::Date { (li, ln, ri) } else { (ri, rn, li) };
                let ts = self.coerce(Typed { ir: d, ty: Ty::Date }, Ty::Timestamp, dn)?;
                call(Func::TimestampAddInterval { subtract, stable: false }, vec![ts, iv], Ty::Timestamp)
            }
            (Ty::Date, Ty::Int4, ArithOp::Add | ArithOp::Sub) => call(Func::DateAddDays { subtract }, vec![li, ri], Ty::Date),
            (Ty::Int4, Ty::Date, ArithOp::Add) => call(Func::DateAddDays { subtract: false }, vec![ri, li], Ty::Date),
            (Ty::Date, Ty::Date, ArithOp::Sub) => call(Func::DateDiff, vec![li, ri], Ty::Int4),
            (a, b, ArithOp::Sub) if is_datetime(a) && is_datetime(b) => {
                let common = if a == Ty::Timestamptz || b == Ty::Timestamptz { Ty::Timestamptz } else { Ty::Timestamp };
                let li = self.coerce(Typed { ir: li, ty: a }, common, ln)?;
                let ri = self.coerce(Typed { ir: ri, ty: b }, common, rn)?;
                call(Func::TimestampDiff, vec![li, ri], Ty::Interval)
            }
            (Ty::Interval, Ty::Interval, ArithOp::Add | ArithOp::Sub) => call(Func::IntervalAdd { subtract }, vec![li, ri], Ty::Interval),
            _ => Err(no_op()),
        }
    }

    fn in_list(&mut self, node: &Node, expr: &Node, list: &[Node], negated: bool) -> Result<Typed, Error> {
        let op = if negated { "<>" } else { "=" };
        // As in PostgreSQL's transformAExprIn: items without column
        // references go into one `= ANY (ARRAY[...])` when there are at
        // least two of them and they share a type with the left side.
        // Everything else becomes a separate comparison.
        let (vars, nonvars): (Vec<&Node>, Vec<&Node>) = list.iter().partition(|n| contains_column(n));
        let mut parts: Vec<Ir> = Vec::new();
        let mut remaining: Vec<&Node> = list.iter().collect();
        if nonvars.len() > 1 {
            let left = self.expr(expr)?;
            let mut items = Vec::with_capacity(nonvars.len());
            for n in &nonvars {
                items.push(self.expr(n)?);
            }
            let mut types = vec![left.ty];
            types.extend(items.iter().map(|t| t.ty));
            if let Some(ty) = common_type(&types) {
                let li = self.coerce(left, ty, expr)?;
                let mut irs = Vec::with_capacity(items.len());
                for (t, n) in items.into_iter().zip(&nonvars) {
                    irs.push(self.coerce(t, ty, n)?);
                }
                parts.push(Ir::InList { left: Box::new(li), items: irs, negated });
                remaining = vars;
            }
        }
        for item in remaining {
            let lt = self.expr(expr)?;
            let rt = self.expr(item)?;
            parts.push(self.compare(node, op, lt, rt, expr, item)?);
        }
        let ir = if parts.len() == 1 {
            parts.pop().expect("one part")
        } else if negated {
            Ir::And(parts)
        } else {
            Ir::Or(parts)
        };
        Ok(Typed { ir, ty: Ty::Bool })
    }
}

