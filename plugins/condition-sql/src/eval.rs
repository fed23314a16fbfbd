//! Evaluation of a typed condition against one event row.
//!
//! PostgreSQL answers `SELECT EXISTS (SELECT 1 FROM (SELECT ...) e WHERE c)`
//! in two steps, and both matter for which errors surface:
//!
//! 1. The planner substitutes the row's values as constants and folds every
//!    immutable subexpression (`eval_const_expressions`). It folds all
//!    arguments of a function, even when another argument is NULL; it stops
//!    an AND at the first FALSE, an OR at the first TRUE and a COALESCE at
//!    the first non-NULL constant. `now()` and other stable functions stay.
//! 2. If anything remains, the executor evaluates the remaining top-level
//!    AND items in order of estimated cost (cheapest first), each lazily:
//!    AND, OR and COALESCE stop early, functions evaluate all arguments.
//!
//! `fold` models step 1 and `eval` step 2.

use std::cmp::Ordering;

use crate::analyze::{ArithOp, CmpOp, Func, Ir};
use crate::datetime;
use crate::error::Error;
use crate::jsonb::Json;
use crate::parser::{Column, TrimSide};
use crate::value::{Ty, Value};

/// The event row: the values of the five columns.
#[derive(Debug, Clone)]
pub struct Row {
    pub event_name: Value,
    pub user_id: Value,
    pub source: Value,
    pub occurred_at: Value,
    pub payload: Value,
}

pub struct Evaluator<'a> {
    pub row: &'a Row,
    /// The transaction time in microseconds since the Unix epoch.
    pub now: i64,
}

/// A WHERE clause after `where_quals`: decided, or a list of quals that
/// must all be true.
enum WhereState<'a> {
    Decided(bool),
    /// Quals with a flag that is true when the qual is negated.
    Quals(Vec<(&'a Ir, bool)>),
}

/// A node of the WHERE clause's AND/OR spine, with NOT pushed inward.
enum Spine<'a> {
    /// All items must hold, each negated when the flag is set.
    All(&'a [Ir], bool),
    /// Any item must hold, each negated when the flag is set.
    Any(&'a [Ir], bool),
    Leaf(&'a Ir, bool),
}

/// The result of constant folding: a value, or an expression left for the
/// executor together with its estimated cost.
enum Folded {
    Const(Value),
    Residual(f64),
}

fn truth(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

impl Evaluator<'_> {
    /// Decides whether the row matches: only TRUE matches.
    pub fn matches(&self, ir: &Ir) -> Result<bool, Error> {
        // Step 1: constant folding, which raises any error it meets.
        match self.fold(ir)? {
            Folded::Const(v) => return Ok(truth(&v) == Some(true)),
            Folded::Residual(_) => {}
        }
        // Step 2: the planner's `canonicalize_qual` treats a NULL constant
        // like FALSE along the AND/OR spine of a WHERE clause, then turns the
        // top-level AND into a list of quals that the executor runs
        // cheapest first (`order_qual_clauses`, a stable sort).
        let quals = match self.where_quals(ir, false)? {
            WhereState::Decided(b) => return Ok(b),
            WhereState::Quals(quals) => quals,
        };
        let mut costed = Vec::with_capacity(quals.len());
        for (qual, negated) in quals {
            let cost = match self.fold(qual)? {
                Folded::Const(_) => 0.0,
                Folded::Residual(c) => c,
            };
            costed.push((cost, qual, negated));
        }
        costed.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));
        for (_, qual, negated) in costed {
            if !self.eval_where(qual, negated)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Looks through the node the way the planner's `negate_clause` and
    /// `simplify_boolean_equality` rewrite it: NOT moves inward through AND
    /// and OR by De Morgan's laws, and `x = true`, `x = false`, `x <> true`,
    /// `x <> false` become `x` or `NOT x`.
    fn spine<'a>(&self, ir: &'a Ir, negated: bool) -> Result<Spine<'a>, Error> {
        Ok(match ir {
            Ir::Not(inner) => return self.spine(inner, !negated),
            Ir::And(items) if negated => Spine::Any(items, true),
            Ir::And(items) => Spine::All(items, false),
            Ir::Or(items) if negated => Spine::All(items, true),
            Ir::Or(items) => Spine::Any(items, false),
            Ir::Call(Func::Cmp(op @ (CmpOp::Eq | CmpOp::Ne)), args) => {
                for (c, other) in [(0, 1), (1, 0)] {
                    if let Folded::Const(Value::Bool(b)) = self.fold(&args[c])?
                        && let Folded::Residual(_) = self.fold(&args[other])?
                    {
                        let flip = (*op == CmpOp::Eq) != b;
                        return self.spine(&args[other], negated != flip);
                    }
                }
                Spine::Leaf(ir, negated)
            }
            other => Spine::Leaf(other, negated),
        })
    }

    /// Simplifies the AND/OR spine of a WHERE clause the way PostgreSQL's
    /// `find_duplicate_ors` does after constant folding: in an AND, a FALSE
    /// or NULL constant makes the whole AND false; in an OR, FALSE and NULL
    /// constants are dropped; an OR left with one branch is that branch.
    /// Only called after `fold` succeeded on the whole tree, so the folding
    /// done here raises no new error.
    fn where_quals<'a>(&self, ir: &'a Ir, negated: bool) -> Result<WhereState<'a>, Error> {
        match self.spine(ir, negated)? {
            Spine::All(items, n) => {
                let mut quals = Vec::new();
                for item in items {
                    match self.where_quals(item, n)? {
                        WhereState::Decided(true) => {}
                        WhereState::Decided(false) => return Ok(WhereState::Decided(false)),
                        WhereState::Quals(q) => quals.extend(q),
                    }
                }
                Ok(if quals.is_empty() { WhereState::Decided(true) } else { WhereState::Quals(quals) })
            }
            Spine::Any(items, n) => {
                let mut arms = Vec::new();
                for item in items {
                    match self.where_quals(item, n)? {
                        WhereState::Decided(true) => return Ok(WhereState::Decided(true)),
                        WhereState::Decided(false) => {}
                        WhereState::Quals(q) => arms.push(q),
                    }
                }
                Ok(match arms.len() {
                    0 => WhereState::Decided(false),
                    1 => WhereState::Quals(arms.pop().expect("one arm")),
                    _ => WhereState::Quals(vec![(ir, negated)]),
                })
            }
            Spine::Leaf(leaf, n) => Ok(match self.fold(leaf)? {
                Folded::Const(v) => WhereState::Decided(truth(&v).is_some_and(|b| b != n)),
                Folded::Residual(_) => WhereState::Quals(vec![(leaf, n)]),
            }),
        }
    }

    /// Evaluates one qual of a WHERE clause, skipping the OR branches that
    /// `where_quals` removed; the remaining branches run in written order.
    fn eval_where(&self, qual: &Ir, negated: bool) -> Result<bool, Error> {
        match self.spine(qual, negated)? {
            Spine::Leaf(leaf, n) => Ok(truth(&self.eval(leaf)?).is_some_and(|b| b != n)),
            Spine::All(..) => match self.where_quals(qual, negated)? {
                WhereState::Decided(b) => Ok(b),
                WhereState::Quals(quals) => self.eval_all(quals),
            },
            Spine::Any(items, n) => {
                for arm in items {
                    match self.where_quals(arm, n)? {
                        WhereState::Decided(true) => return Ok(true),
                        WhereState::Decided(false) => {}
                        WhereState::Quals(quals) => {
                            if self.eval_all(quals)? {
                                return Ok(true);
                            }
                        }
                    }
                }
                Ok(false)
            }
        }
    }

    fn eval_all(&self, quals: Vec<(&Ir, bool)>) -> Result<bool, Error> {
        for (q, n) in quals {
            if !self.eval_where(q, n)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn column(&self, c: Column) -> Value {
        match c {
            Column::EventName => self.row.event_name.clone(),
            Column::UserId => self.row.user_id.clone(),
            Column::Source => self.row.source.clone(),
            Column::OccurredAt => self.row.occurred_at.clone(),
            Column::Payload => self.row.payload.clone(),
        }
    }

    fn fold(&self, ir: &Ir) -> Result<Folded, Error> {
        Ok(match ir {
            Ir::Const(v) => Folded::Const(v.clone()),
            Ir::Column(c) => Folded::Const(self.column(*c)),
            Ir::Now => Folded::Residual(1.0),
            Ir::Call(func, args) => {
                let mut values = Vec::with_capacity(args.len());
                let mut cost = func.cost();
                let mut residual = false;
                for a in args {
                    match self.fold(a)? {
                        Folded::Const(v) => values.push(v),
                        Folded::Residual(c) => {
                            residual = true;
                            cost += c;
                        }
                    }
                }
                if values.iter().any(Value::is_null) {
                    return Ok(Folded::Const(Value::Null));
                }
                if residual || func.is_stable() {
                    return Ok(Folded::Residual(cost));
                }
                Folded::Const(self.apply(*func, values)?)
            }
            Ir::And(items) | Ir::Or(items) => {
                let is_and = matches!(ir, Ir::And(_));
                let mut cost = 0.0;
                let mut residual = false;
                let mut saw_null = false;
                for item in items {
                    match self.fold(item)? {
                        Folded::Const(Value::Bool(b)) if b != is_and => return Ok(Folded::Const(Value::Bool(b))),
                        Folded::Const(Value::Bool(_)) => {}
                        Folded::Const(_) => saw_null = true,
                        Folded::Residual(c) => {
                            residual = true;
                            cost += c;
                        }
                    }
                }
                match (residual, saw_null) {
                    (true, _) => Folded::Residual(cost),
                    (false, true) => Folded::Const(Value::Null),
                    (false, false) => Folded::Const(Value::Bool(is_and)),
                }
            }
            Ir::Not(inner) => match self.fold(inner)? {
                Folded::Const(v) => Folded::Const(match v {
                    Value::Bool(b) => Value::Bool(!b),
                    _ => Value::Null,
                }),
                r => r,
            },
            Ir::IsNull(inner, negated) => match self.fold(inner)? {
                Folded::Const(v) => Folded::Const(Value::Bool(v.is_null() != *negated)),
                r => r,
            },
            Ir::BoolTest(inner, value, negated) => match self.fold(inner)? {
                Folded::Const(v) => Folded::Const(bool_test(&v, *value, *negated)),
                r => r,
            },
            Ir::Distinct(l, r, negated) => {
                let lf = self.fold(l)?;
                let rf = self.fold(r)?;
                match (lf, rf) {
                    (Folded::Const(a), Folded::Const(b)) => Folded::Const(distinct(&a, &b, *negated)),
                    (a, b) => Folded::Residual(1.0 + residual_cost(&a) + residual_cost(&b)),
                }
            }
            Ir::InList { left, items, negated } => {
                let mut cost = 0.0;
                let mut residual = false;
                let mut values = Vec::with_capacity(items.len() + 1);
                for a in std::iter::once(left.as_ref()).chain(items) {
                    match self.fold(a)? {
                        Folded::Const(v) => values.push(v),
                        Folded::Residual(c) => {
                            residual = true;
                            cost += c;
                        }
                    }
                }
                if residual {
                    // cost_qual_eval charges half the operator cost per element.
                    return Ok(Folded::Residual(cost + 0.5 * items.len() as f64));
                }
                let left = values.remove(0);
                Folded::Const(in_list(&left, &values, *negated))
            }
            Ir::Coalesce(items) => {
                let mut cost = 0.0;
                let mut residual = false;
                for item in items {
                    match self.fold(item)? {
                        Folded::Const(Value::Null) => {}
                        Folded::Const(v) if !residual => return Ok(Folded::Const(v)),
                        Folded::Const(_) => break,
                        Folded::Residual(c) => {
                            residual = true;
                            cost += c;
                        }
                    }
                }
                if residual { Folded::Residual(cost) } else { Folded::Const(Value::Null) }
            }
            Ir::Array(items) => {
                let mut cost = 0.0;
                let mut residual = false;
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    match self.fold(item)? {
                        Folded::Const(v) => values.push(v),
                        Folded::Residual(c) => {
                            residual = true;
                            cost += c;
                        }
                    }
                }
                if residual { Folded::Residual(cost) } else { Folded::Const(make_text_array(values)) }
            }
        })
    }

    /// Evaluates an expression the way the executor does. The executor
    /// runs the planner's folded tree, so a subexpression that folds to a
    /// constant is never evaluated again: a strict call with a NULL constant
    /// argument is NULL without evaluating its other arguments.
    pub fn eval(&self, ir: &Ir) -> Result<Value, Error> {
        match self.fold(ir)? {
            Folded::Const(v) => Ok(v),
            Folded::Residual(_) => self.eval_residual(ir),
        }
    }

    fn eval_residual(&self, ir: &Ir) -> Result<Value, Error> {
        Ok(match ir {
            Ir::Const(v) => v.clone(),
            Ir::Column(c) => self.column(*c),
            Ir::Now => Value::Timestamptz(self.now),
            Ir::Call(func, args) => {
                let mut values = Vec::with_capacity(args.len());
                for a in args {
                    values.push(self.eval(a)?);
                }
                if values.iter().any(Value::is_null) {
                    return Ok(Value::Null);
                }
                self.apply(*func, values)?
            }
            Ir::And(items) | Ir::Or(items) => {
                let is_and = matches!(ir, Ir::And(_));
                let mut saw_null = false;
                for item in items {
                    match truth(&self.eval(item)?) {
                        Some(b) if b != is_and => return Ok(Value::Bool(b)),
                        Some(_) => {}
                        None => saw_null = true,
                    }
                }
                if saw_null { Value::Null } else { Value::Bool(is_and) }
            }
            Ir::Not(inner) => match truth(&self.eval(inner)?) {
                Some(b) => Value::Bool(!b),
                None => Value::Null,
            },
            Ir::IsNull(inner, negated) => Value::Bool(self.eval(inner)?.is_null() != *negated),
            Ir::BoolTest(inner, value, negated) => bool_test(&self.eval(inner)?, *value, *negated),
            Ir::Distinct(l, r, negated) => {
                let a = self.eval(l)?;
                let b = self.eval(r)?;
                distinct(&a, &b, *negated)
            }
            Ir::InList { left, items, negated } => {
                let left = self.eval(left)?;
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    values.push(self.eval(item)?);
                }
                in_list(&left, &values, *negated)
            }
            Ir::Coalesce(items) => {
                for item in items {
                    let v = self.eval(item)?;
                    if !v.is_null() {
                        return Ok(v);
                    }
                }
                Value::Null
            }
            Ir::Array(items) => {
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    values.push(self.eval(item)?);
                }
                make_text_array(values)
            }
        })
    }

    /// Applies a strict function to non-null arguments.
    fn apply(&self, func: Func, args: Vec<Value>) -> Result<Value, Error> {
        let mut args = args.into_iter();
        let mut next = || args.next().expect("the analyzer checked the argument count");
        let fail = |m: String| Error::eval(m);
        Ok(match func {
            Func::Cmp(op) => {
                let (a, b) = (next(), next());
                let ord = a.compare(&b);
                Value::Bool(match op {
                    CmpOp::Eq => ord == Ordering::Equal,
                    CmpOp::Ne => ord != Ordering::Equal,
                    CmpOp::Lt => ord == Ordering::Less,
                    CmpOp::Le => ord != Ordering::Greater,
                    CmpOp::Gt => ord == Ordering::Greater,
                    CmpOp::Ge => ord != Ordering::Less,
                })
            }
            Func::Cast { from, to, .. } => next().cast(from, to, self.now).map_err(fail)?,
            Func::Arith(op, ty) => arith(op, ty, next(), next()).map_err(fail)?,
            Func::Neg(_) => match next() {
                Value::Int4(v) => Value::Int4(v.checked_neg().ok_or_else(|| fail("integer out of range".into()))?),
                Value::Int8(v) => Value::Int8(v.checked_neg().ok_or_else(|| fail("bigint out of range".into()))?),
                Value::Numeric(n) => Value::Numeric(n.negate()),
                Value::Interval(iv) => Value::Interval(iv.checked_neg().ok_or_else(|| fail("interval out of range".into()))?),
                other => unreachable!("negation of {other:?}"),
            },
            Func::TimestampAddInterval { subtract, .. } => {
                let (ts, iv) = (next(), next());
                let Value::Interval(mut iv) = iv else { unreachable!("interval operand") };
                if subtract {
                    iv = iv.checked_neg().ok_or_else(|| fail("interval out of range".into()))?;
                }
                match ts {
                    Value::Timestamptz(t) => Value::Timestamptz(datetime::add_interval(t, &iv).map_err(fail)?),
                    Value::Timestamp(t) => Value::Timestamp(datetime::add_interval(t, &iv).map_err(fail)?),
                    other => unreachable!("timestamp operand {other:?}"),
                }
            }
            Func::TimestampDiff => match (next(), next()) {
                (Value::Timestamptz(a), Value::Timestamptz(b)) | (Value::Timestamp(a), Value::Timestamp(b)) => {
                    Value::Interval(datetime::subtract_timestamps(a, b).map_err(fail)?)
                }
                other => unreachable!("timestamp operands {other:?}"),
            },
            Func::DateAddDays { subtract } => match (next(), next()) {
                (Value::Date(d), Value::Int4(n)) => {
                    if d == datetime::DATE_INFINITY || d == datetime::DATE_NEG_INFINITY {
                        return Ok(Value::Date(d));
                    }
                    let n = if subtract { -i64::from(n) } else { i64::from(n) };
                    let r = i64::from(d) + n;
                    // PostgreSQL's date range ends in year 5874897.
                    if !(-2_451_545 + 0..=2_145_031_948).contains(&r) {
                        return Err(fail("date out of range".into()));
                    }
                    Value::Date(r as i32)
                }
                other => unreachable!("date operands {other:?}"),
            },
            Func::DateDiff => match (next(), next()) {
                (Value::Date(a), Value::Date(b)) => {
                    let infinite = |d: i32| d == datetime::DATE_INFINITY || d == datetime::DATE_NEG_INFINITY;
                    if infinite(a) || infinite(b) {
                        return Err(fail("cannot subtract infinite dates".into()));
                    }
                    Value::Int4(a - b)
                }
                other => unreachable!("date operands {other:?}"),
            },
            Func::IntervalAdd { subtract } => match (next(), next()) {
                (Value::Interval(a), Value::Interval(b)) => {
                    let b = if subtract { b.checked_neg() } else { Some(b) };
                    Value::Interval(b.and_then(|b| a.checked_add(&b)).ok_or_else(|| fail("interval out of range".into()))?)
                }
                other => unreachable!("interval operands {other:?}"),
            },
            Func::JsonGet { text } => {
                let (doc, key) = (next(), next());
                let Value::Jsonb(doc) = doc else { unreachable!("jsonb operand") };
                let found = match key {
                    Value::Text(k) => doc.get_key(&k),
                    // A top-level scalar is stored as a one-element array, so
                    // `'"x"'::jsonb -> 0` and `-> -1` return the scalar.
                    Value::Int4(i) if doc.is_scalar() => (i == 0 || i == -1).then_some(&*doc),
                    Value::Int4(i) => doc.get_index(i64::from(i)),
                    other => unreachable!("json key {other:?}"),
                };
                json_result(found, text)
            }
            Func::JsonPath { text } => {
                let (doc, path) = (next(), next());
                let (Value::Jsonb(doc), Value::TextArray(path)) = (doc, path) else { unreachable!("jsonb path operands") };
                let mut current: Option<&Json> = Some(&doc);
                for step in path.iter() {
                    let Some(step) = step else { return Ok(Value::Null) };
                    current = match current {
                        Some(j @ Json::Object(_)) => j.get_key(step),
                        Some(j @ Json::Array(_)) => match parse_path_index(step) {
                            Some(i) => j.get_index(i),
                            None => None,
                        },
                        _ => None,
                    };
                    if current.is_none() {
                        break;
                    }
                }
                json_result(current, text)
            }
            Func::JsonExists => match (next(), next()) {
                (Value::Jsonb(doc), Value::Text(k)) => Value::Bool(doc.exists(&k)),
                other => unreachable!("operands of ? {other:?}"),
            },
            Func::JsonExistsAny | Func::JsonExistsAll => match (next(), next()) {
                (Value::Jsonb(doc), Value::TextArray(keys)) => {
                    let mut keys = keys.iter().flatten();
                    Value::Bool(if func == Func::JsonExistsAny {
                        keys.any(|k| doc.exists(k))
                    } else {
                        keys.all(|k| doc.exists(k))
                    })
                }
                other => unreachable!("operands of ?| {other:?}"),
            },
            Func::JsonContains | Func::JsonContainedBy => match (next(), next()) {
                (Value::Jsonb(a), Value::Jsonb(b)) => {
                    Value::Bool(if func == Func::JsonContains { a.contains_top(&b) } else { b.contains_top(&a) })
                }
                other => unreachable!("operands of @> {other:?}"),
            },
            Func::Like { case_insensitive } => {
                let (s, p) = (text_of(next()), text_of(next()));
                let ok = if case_insensitive {
                    like(&lower(&s), &lower(&p)).map_err(fail)?
                } else {
                    like(&s, &p).map_err(fail)?
                };
                Value::Bool(ok)
            }
            Func::LikeEscape => Value::text(like_escape(&text_of(next()), &text_of(next())).map_err(fail)?),
            Func::Lower => Value::text(lower(&text_of(next()))),
            Func::Upper => Value::text(upper(&text_of(next()))),
            Func::Length => Value::Int4(text_of(next()).chars().count() as i32),
            Func::Trim(side) => Value::text(trim(&text_of(next()), " ", side)),
            Func::TrimChars(side) => {
                let s = text_of(next());
                let chars = text_of(next());
                Value::text(trim(&s, &chars, side))
            }
            Func::JsonbArrayLength => match next() {
                Value::Jsonb(doc) => match &*doc {
                    Json::Array(items) => Value::Int4(items.len() as i32),
                    Json::Object(_) => return Err(fail("cannot get array length of a non-array".into())),
                    _ => return Err(fail("cannot get array length of a scalar".into())),
                },
                other => unreachable!("jsonb operand {other:?}"),
            },
            Func::JsonbTypeof => match next() {
                Value::Jsonb(doc) => Value::text(doc.type_name()),
                other => unreachable!("jsonb operand {other:?}"),
            },
        })
    }
}


fn residual_cost(f: &Folded) -> f64 {
    match f {
        Folded::Const(_) => 0.0,
        Folded::Residual(c) => *c,
    }
}

fn text_of(v: Value) -> std::rc::Rc<str> {
    match v {
        Value::Text(s) => s,
        other => unreachable!("text operand {other:?}"),
    }
}

fn json_result(found: Option<&Json>, text: bool) -> Value {
    match found {
        None => Value::Null,
        Some(j) if text => j.to_unquoted_text().map_or(Value::Null, Value::text),
        Some(j) => Value::Jsonb(std::rc::Rc::new(j.clone())),
    }
}

/// Parses a `#>` path element as an array index the way `jsonb_get_element`
/// does (`strtol` with surrounding whitespace); None when it is not one.
fn parse_path_index(step: &str) -> Option<i64> {
    let s = step.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let v: i64 = s.parse().ok()?;
    i32::try_from(v).ok().map(i64::from)
}

fn bool_test(v: &Value, value: Option<bool>, negated: bool) -> Value {
    let matches = match (truth(v), value) {
        (None, None) => true,
        (Some(b), Some(expected)) => b == expected,
        _ => false,
    };
    Value::Bool(matches != negated)
}

fn distinct(a: &Value, b: &Value, not_distinct: bool) -> Value {
    let is_distinct = match (a.is_null(), b.is_null()) {
        (true, true) => false,
        (true, false) | (false, true) => true,
        (false, false) => a.compare(b) != Ordering::Equal,
    };
    Value::Bool(is_distinct != not_distinct)
}

/// `left = ANY (items)`, or `left <> ALL (items)` when negated.
fn in_list(left: &Value, items: &[Value], negated: bool) -> Value {
    if items.is_empty() {
        return Value::Bool(negated);
    }
    if left.is_null() {
        return Value::Null;
    }
    let mut saw_null = false;
    for item in items {
        if item.is_null() {
            saw_null = true;
            continue;
        }
        // A match decides both `= ANY` (true) and `<> ALL` (false).
        if left.compare(item) == Ordering::Equal {
            return Value::Bool(!negated);
        }
    }
    if saw_null { Value::Null } else { Value::Bool(negated) }
}

fn make_text_array(values: Vec<Value>) -> Value {
    let items: Vec<Option<String>> = values
        .into_iter()
        .map(|v| match v {
            Value::Null => None,
            Value::Text(s) => Some(s.to_string()),
            other => Some(other.output()),
        })
        .collect();
    Value::TextArray(items.into())
}

fn arith(op: ArithOp, ty: Ty, a: Value, b: Value) -> Result<Value, String> {
    match (a, b) {
        (Value::Int4(x), Value::Int4(y)) => {
            let r = int_arith(op, i64::from(x), i64::from(y))?;
            i32::try_from(r).map(Value::Int4).map_err(|_| "integer out of range".into())
        }
        (Value::Int8(x), Value::Int8(y)) => {
            let r = int_arith(op, x, y)?;
            i64::try_from(r).map(Value::Int8).map_err(|_| "bigint out of range".into())
        }
        (Value::Numeric(x), Value::Numeric(y)) => Ok(Value::Numeric(match op {
            ArithOp::Add => x.add(&y),
            ArithOp::Sub => x.add(&y.negate()),
            ArithOp::Mul => x.mul(&y),
            ArithOp::Div | ArithOp::Mod => return Err(format!("numeric {op:?} is not supported")),
        })),
        (a, b) => unreachable!("arithmetic on {a:?} and {b:?} as {ty:?}"),
    }
}

fn int_arith(op: ArithOp, x: i64, y: i64) -> Result<i128, String> {
    let (x, y) = (i128::from(x), i128::from(y));
    Ok(match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        ArithOp::Div | ArithOp::Mod if y == 0 => return Err("division by zero".into()),
        // Rust's integer division truncates toward zero like C's.
        ArithOp::Div => x / y,
        ArithOp::Mod => x % y,
    })
}

/// Lower-cases like PostgreSQL's `lower` under a glibc UTF-8 locale, which
/// maps one character to one character (`towlower`).
pub fn lower(s: &str) -> String {
    s.chars()
        .map(|c| {
            // Only U+0130 lowercases to two characters in Unicode; towlower
            // maps it to the first of them, `i`.
            c.to_lowercase().next().unwrap_or(c)
        })
        .collect()
}

pub fn upper(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut it = c.to_uppercase();
            match (it.next(), it.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

fn trim(s: &str, chars: &str, side: TrimSide) -> String {
    let set: Vec<char> = chars.chars().collect();
    let pred = |c: char| set.contains(&c);
    match side {
        TrimSide::Both => s.trim_matches(pred),
        TrimSide::Leading => s.trim_start_matches(pred),
        TrimSide::Trailing => s.trim_end_matches(pred),
    }
    .to_string()
}

/// Matches `text` against a LIKE pattern with backslash as the escape
/// character. This is a port of PostgreSQL 15's `MatchText`, so a pattern
/// that ends in a lone backslash is an error only when matching reaches it.
pub fn like(text: &str, pattern: &str) -> Result<bool, String> {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    Ok(match_text(&t, &p, 0)? == LikeResult::True)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LikeResult {
    True,
    False,
    /// No later start position can match either.
    Abort,
}

/// Bounds the recursion on `%`, which PostgreSQL bounds by its stack depth.
const MAX_LIKE_DEPTH: usize = 1000;

fn match_text(mut t: &[char], mut p: &[char], depth: usize) -> Result<LikeResult, String> {
    const ESCAPE_AT_END: &str = "LIKE pattern must not end with escape character";
    if p == ['%'] {
        return Ok(LikeResult::True);
    }
    if depth > MAX_LIKE_DEPTH {
        return Err("LIKE pattern is too complex".into());
    }
    while !t.is_empty() && !p.is_empty() {
        match p[0] {
            '\\' => {
                p = &p[1..];
                if p.is_empty() {
                    return Err(ESCAPE_AT_END.into());
                }
                if p[0] != t[0] {
                    return Ok(LikeResult::False);
                }
            }
            '%' => {
                p = &p[1..];
                while let Some(&c) = p.first() {
                    if c == '%' {
                        p = &p[1..];
                    } else if c == '_' {
                        if t.is_empty() {
                            return Ok(LikeResult::Abort);
                        }
                        t = &t[1..];
                        p = &p[1..];
                    } else {
                        break;
                    }
                }
                if p.is_empty() {
                    return Ok(LikeResult::True);
                }
                let first = if p[0] == '\\' {
                    match p.get(1) {
                        Some(&c) => c,
                        None => return Err(ESCAPE_AT_END.into()),
                    }
                } else {
                    p[0]
                };
                while !t.is_empty() {
                    if t[0] == first {
                        let matched = match_text(t, p, depth + 1)?;
                        if matched != LikeResult::False {
                            return Ok(matched);
                        }
                    }
                    t = &t[1..];
                }
                return Ok(LikeResult::Abort);
            }
            '_' => {
                t = &t[1..];
                p = &p[1..];
                continue;
            }
            c if c != t[0] => return Ok(LikeResult::False),
            _ => {}
        }
        t = &t[1..];
        p = &p[1..];
    }
    if !t.is_empty() {
        return Ok(LikeResult::False);
    }
    while p.first() == Some(&'%') {
        p = &p[1..];
    }
    Ok(if p.is_empty() { LikeResult::True } else { LikeResult::Abort })
}

/// Rewrites a pattern with a custom escape character into one that uses
/// backslash, as PostgreSQL's `like_escape` does. An empty escape string
/// turns escaping off.
fn like_escape(pattern: &str, escape: &str) -> Result<String, String> {
    let mut esc = escape.chars();
    let (e, extra) = (esc.next(), esc.next());
    if extra.is_some() {
        return Err("invalid escape string: escape string must be empty or one character".into());
    }
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    match e {
        None => {
            for c in chars {
                if c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
        }
        Some('\\') => out.push_str(pattern),
        Some(e) => {
            while let Some(c) = chars.next() {
                if c == e {
                    match chars.next() {
                        Some(n) => {
                            out.push('\\');
                            out.push(n);
                        }
                        None => return Err("LIKE pattern must not end with escape character".into()),
                    }
                } else if c == '\\' {
                    out.push_str("\\\\");
                } else {
                    out.push(c);
                }
            }
        }
    }
    Ok(out)
}

