//! The small expression languages Argo and Argo Events evaluate, parsed once into a tree and
//! then evaluated, so that `medallion lint` can check an expression's syntax without values and
//! `medallion run` / `events replay` evaluate it as Argo would:
//!
//! - [`Dialect::Govaluate`]: a task's `when:` after `{{...}}` substitution (Argo evaluates it
//!   with govaluate, workflow/controller/steps.go v4.1.2 lines 384-420): `true == true`,
//!   `'{{x}}' != 'reject'`, `{{a}} > 0.75 && {{b}} == true`, `!(...)`. A bare word compares as
//!   a string (steps.go turns govaluate's variable tokens into strings, lines 397-406), as in
//!   Argo's coin-flip example (`tails == tails`).
//! - [`Dialect::ExprLang`]: `retryStrategy.expression` (expr-lang, util/expr/argoexpr/eval.go
//!   v4.1.2 lines 9-23) with `lastRetry.*` variables, and an Argo Events EventSource
//!   `filter.expression` (antonmedv/expr v1.15.5, pkg/shared/expr/eval.go v1.9.11 lines 16-26)
//!   over the event's JSON. A member of a JSON object that is not there is `nil` (expr-lang
//!   vm/runtime/runtime.go v1.15.5 `Fetch`, map case), so `body.type == "x"` is false, not an
//!   error, when the event has no `type`.
//!
//! Operators: `== != < > <= >= && || !` (expr-lang also `and or not`), `+ - * /`,
//! `startsWith endsWith contains` (expr-lang), parentheses; literals: numbers, `'...'`/`"..."`
//! strings, `true`/`false`/`nil`; functions `asInt`, `asFloat`, `string`. Anything else is an
//! error naming it.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("expression {expression:?}: {message}")]
pub struct ExprError {
    pub expression: String,
    pub message: String,
}

/// Which language the text is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Argo's `when` (govaluate, after `{{...}}` substitution).
    Govaluate,
    /// expr-lang: Argo's retry `expression`, Argo Events' EventSource filters.
    ExprLang,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Num(f64),
    Str(String),
    Bool(bool),
    Nil,
}

impl Val {
    fn truthy(&self) -> Result<bool, String> {
        match self {
            Val::Bool(b) => Ok(*b),
            other => Err(format!("{other:?} is not a boolean")),
        }
    }

    fn text(&self) -> String {
        match self {
            Val::Num(n) => n.to_string(),
            Val::Str(s) => s.clone(),
            Val::Bool(b) => b.to_string(),
            Val::Nil => "nil".into(),
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Val::Num(n) => Some(*n),
            Val::Str(s) => s.trim().parse().ok(),
            Val::Bool(_) | Val::Nil => None,
        }
    }

    /// A JSON value as expr-lang sees it (objects and lists are not comparable here).
    fn of_json(value: &Value) -> Val {
        match value {
            Value::Null => Val::Nil,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => n.as_f64().map_or(Val::Nil, Val::Num),
            Value::String(s) => Val::Str(s.clone()),
            other => Val::Str(other.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Num(f64),
    Str(String),
    Word(String),
    Op(&'static str),
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Lit(Val),
    Var(String),
    Not(Box<Expr>),
    Call(String, Box<Expr>),
    Binary(&'static str, Box<Expr>, Box<Expr>),
}

const WORD_OPERATORS: &[(&str, &str)] = &[
    ("and", "&&"),
    ("or", "||"),
    ("not", "!"),
    ("startsWith", "startsWith"),
    ("endsWith", "endsWith"),
    ("contains", "contains"),
];

fn tokenize(text: &str, dialect: Dialect) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        if let Some(op) = ["==", "!=", "<=", ">=", "&&", "||"]
            .into_iter()
            .find(|o| *o == two)
        {
            out.push(Token::Op(op));
            i += 2;
            continue;
        }
        if let Some(op) = ["<", ">", "!", "(", ")", ",", "+", "-", "*", "/"]
            .into_iter()
            .find(|o| o.starts_with(c))
        {
            // A sign directly before a digit at the start of an operand is part of the number.
            let operand_expected = matches!(out.last(), None | Some(Token::Op(_)));
            if !(op == "-"
                && operand_expected
                && chars.get(i + 1).is_some_and(char::is_ascii_digit))
            {
                out.push(Token::Op(op));
                i += 1;
                continue;
            }
        }
        if c == '\'' || c == '"' {
            let end = chars[i + 1..]
                .iter()
                .position(|&x| x == c)
                .ok_or("a string is not closed")?;
            out.push(Token::Str(chars[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
            continue;
        }
        let start = i;
        i += 1;
        // `my-task` is one word, `2-1` a subtraction.
        let ends_word = |i: usize, c: char| {
            c.is_whitespace()
                || "=!<>&|(),'\"+*/".contains(c)
                || (c == '-'
                    && chars[start..i]
                        .iter()
                        .all(|c| c.is_ascii_digit() || *c == '-' || *c == '.'))
        };
        while i < chars.len() && !ends_word(i, chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        if word == "=" {
            return Err("unexpected \"=\" (compare with ==)".into());
        }
        match word.parse::<f64>() {
            Ok(n) => out.push(Token::Num(n)),
            Err(_) => match WORD_OPERATORS.iter().find(|(w, _)| *w == word) {
                Some((_, op)) if dialect == Dialect::ExprLang => out.push(Token::Op(op)),
                _ => out.push(Token::Word(word)),
            },
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn eat(&mut self, op: &'static str) -> bool {
        if self.peek() == Some(&Token::Op(op)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn binary(
        &mut self,
        ops: &[&'static str],
        next: fn(&mut Self) -> Result<Expr, String>,
    ) -> Result<Expr, String> {
        let mut left = next(self)?;
        loop {
            let op = match self.peek() {
                Some(Token::Op(op)) if ops.contains(op) => *op,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = next(self)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        self.binary(&["||"], Self::and)
    }

    fn and(&mut self) -> Result<Expr, String> {
        self.binary(&["&&"], Self::comparison)
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let left = self.additive()?;
        let op = match self.peek() {
            Some(Token::Op(op))
                if [
                    "==",
                    "!=",
                    "<",
                    ">",
                    "<=",
                    ">=",
                    "startsWith",
                    "endsWith",
                    "contains",
                ]
                .contains(op) =>
            {
                *op
            }
            _ => return Ok(left),
        };
        self.pos += 1;
        let right = self.additive()?;
        Ok(Expr::Binary(op, Box::new(left), Box::new(right)))
    }

    fn additive(&mut self) -> Result<Expr, String> {
        self.binary(&["+", "-"], Self::multiplicative)
    }

    fn multiplicative(&mut self) -> Result<Expr, String> {
        self.binary(&["*", "/"], Self::unary)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let token = self.peek().cloned().ok_or("ends too early")?;
        self.pos += 1;
        match token {
            Token::Num(n) => Ok(Expr::Lit(Val::Num(n))),
            Token::Str(s) => Ok(Expr::Lit(Val::Str(s))),
            Token::Op("(") => {
                let v = self.or()?;
                if !self.eat(")") {
                    return Err("a ( is not closed".into());
                }
                Ok(v)
            }
            Token::Op(op) => Err(format!("unexpected {op}")),
            Token::Word(w) => {
                if self.eat("(") {
                    let arg = self.or()?;
                    if !self.eat(")") {
                        return Err(format!("{w}( takes one argument"));
                    }
                    if !["asInt", "asFloat", "string"].contains(&w.as_str()) {
                        return Err(format!("function {w} is not supported"));
                    }
                    return Ok(Expr::Call(w, Box::new(arg)));
                }
                Ok(match w.as_str() {
                    "true" => Expr::Lit(Val::Bool(true)),
                    "false" => Expr::Lit(Val::Bool(false)),
                    "nil" => Expr::Lit(Val::Nil),
                    _ => Expr::Var(w),
                })
            }
        }
    }
}

/// Parses an expression; an error names what is wrong.
pub fn parse(text: &str, dialect: Dialect) -> Result<Expr, ExprError> {
    let fail = |message: String| ExprError {
        expression: text.to_string(),
        message,
    };
    let tokens = tokenize(text, dialect).map_err(fail)?;
    if tokens.is_empty() {
        return Err(fail("is empty".into()));
    }
    let mut p = Parser { tokens, pos: 0 };
    let e = p.or().map_err(fail)?;
    if p.pos != p.tokens.len() {
        return Err(fail(format!(
            "unexpected {:?} after the end",
            p.tokens[p.pos]
        )));
    }
    Ok(e)
}

/// What a variable is: its value, `None` when the environment has no such name.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<Val>;

impl Expr {
    /// Evaluates the expression; `lookup` resolves variables, and a name it does not know is a
    /// string (govaluate's bare word) or an error (expr-lang).
    pub fn eval(&self, lookup: Lookup<'_>, dialect: Dialect) -> Result<Val, String> {
        match self {
            Expr::Lit(v) => Ok(v.clone()),
            Expr::Var(name) => match lookup(name) {
                Some(v) => Ok(v),
                None if dialect == Dialect::Govaluate => Ok(Val::Str(name.clone())),
                None => Err(format!("unknown name {name}")),
            },
            Expr::Not(e) => Ok(Val::Bool(!e.eval(lookup, dialect)?.truthy()?)),
            Expr::Call(f, arg) => call(f, arg.eval(lookup, dialect)?),
            Expr::Binary(op, l, r) => {
                let left = l.eval(lookup, dialect)?;
                // && and || stop at the left side when it decides, as both languages do.
                match *op {
                    "&&" if !left.truthy()? => return Ok(Val::Bool(false)),
                    "||" if left.truthy()? => return Ok(Val::Bool(true)),
                    "&&" | "||" => return Ok(Val::Bool(r.eval(lookup, dialect)?.truthy()?)),
                    _ => {}
                }
                binary(op, left, r.eval(lookup, dialect)?)
            }
        }
    }
}

fn binary(op: &str, left: Val, right: Val) -> Result<Val, String> {
    Ok(Val::Bool(match op {
        "==" | "!=" => {
            let equal = match (&left, &right) {
                (Val::Bool(a), Val::Bool(b)) => a == b,
                (Val::Nil, Val::Nil) => true,
                (Val::Nil, _) | (_, Val::Nil) => false,
                _ => match (left.number(), right.number()) {
                    (Some(a), Some(b)) => a == b,
                    _ => left.text() == right.text(),
                },
            };
            equal == (op == "==")
        }
        "startsWith" | "endsWith" | "contains" => {
            let (Val::Str(a), Val::Str(b)) = (&left, &right) else {
                return Err(format!("{op} needs strings, found {left:?} and {right:?}"));
            };
            match op {
                "startsWith" => a.starts_with(b.as_str()),
                "endsWith" => a.ends_with(b.as_str()),
                _ => a.contains(b.as_str()),
            }
        }
        "+" if matches!((&left, &right), (Val::Str(_), Val::Str(_))) => {
            return Ok(Val::Str(left.text() + &right.text()));
        }
        _ => {
            let (Some(a), Some(b)) = (left.number(), right.number()) else {
                return Err(format!("{op} needs numbers, found {left:?} and {right:?}"));
            };
            match op {
                "<" => a < b,
                ">" => a > b,
                "<=" => a <= b,
                ">=" => a >= b,
                "+" => return Ok(Val::Num(a + b)),
                "-" => return Ok(Val::Num(a - b)),
                "*" => return Ok(Val::Num(a * b)),
                _ => return Ok(Val::Num(a / b)),
            }
        }
    }))
}

fn call(function: &str, arg: Val) -> Result<Val, String> {
    match function {
        "asInt" => arg
            .number()
            .map(|n| Val::Num(n.trunc()))
            .ok_or_else(|| format!("asInt({arg:?}) is not a number")),
        "asFloat" => arg
            .number()
            .map(Val::Num)
            .ok_or_else(|| format!("asFloat({arg:?}) is not a number")),
        "string" => Ok(Val::Str(arg.text())),
        other => Err(format!("function {other} is not supported")),
    }
}

fn evaluate(text: &str, lookup: Lookup<'_>, dialect: Dialect) -> Result<bool, ExprError> {
    let fail = |message: String| ExprError {
        expression: text.to_string(),
        message,
    };
    parse(text, dialect)?
        .eval(lookup, dialect)
        .and_then(|v| v.truthy())
        .map_err(fail)
}

/// A task's `when`, after its `{{...}}` variables were substituted.
pub fn when(text: &str) -> Result<bool, ExprError> {
    evaluate(text, &|_| None, Dialect::Govaluate)
}

/// A `retryStrategy.expression` with `lastRetry.exitCode`, `.status`, `.duration`, `.message`.
pub fn retry(text: &str, vars: &BTreeMap<String, Val>) -> Result<bool, ExprError> {
    evaluate(text, &|n| vars.get(n).cloned(), Dialect::ExprLang)
}

/// An Argo Events filter expression over an event's JSON data (`body.subject`, `messageID`):
/// a top-level name the event lacks is an error, a missing member below it is `nil`.
pub fn over_json(text: &str, data: &Value) -> Result<bool, ExprError> {
    let lookup = |name: &str| -> Option<Val> {
        let mut parts = name.split('.');
        let mut current = data.get(parts.next()?)?;
        for part in parts {
            match current.get(part) {
                Some(v) => current = v,
                None => return Some(Val::Nil),
            }
        }
        Some(Val::of_json(current))
    };
    evaluate(text, &lookup, Dialect::ExprLang)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn when_expressions_as_argo_writes_them() {
        assert!(when("true == true").unwrap());
        assert!(!when("false == true").unwrap());
        assert!(when("tails == tails").unwrap());
        assert!(when("'approve' != 'reject' && 0.81 >= 0.75").unwrap());
        assert!(when("!(1 > 2) || false").unwrap());
        assert!(when("3 == 3.0").unwrap());
        assert!(!when("(true && false) || 2 < 1").unwrap());
        assert!(when("-1 < 0 && 2 - 1 == 1").unwrap());
        assert!(when("my-task == my-task").unwrap());
    }

    #[test]
    fn malformed_expressions_are_errors() {
        for bad in [
            "",
            "true ==",
            "(true",
            "'open",
            "1 > abc",
            "true true",
            "nosuch(1) == 1",
            "5",
            "a = b",
        ] {
            assert!(when(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retry_expressions_with_last_retry() {
        let mut vars = BTreeMap::new();
        vars.insert("lastRetry.exitCode".to_string(), Val::Str("1".into()));
        vars.insert("lastRetry.status".to_string(), Val::Str("Failed".into()));
        assert!(retry("asInt(lastRetry.exitCode) == 1", &vars).unwrap());
        assert!(!retry("asInt(lastRetry.exitCode) == 2", &vars).unwrap());
        assert!(retry("lastRetry.status == \"Failed\"", &vars).unwrap());
        assert!(
            retry(
                "asInt(lastRetry.exitCode) >= 128 or lastRetry.status == \"Failed\"",
                &vars
            )
            .unwrap()
        );
        assert!(retry("nosuch == 1", &vars).is_err());
        vars.insert("lastRetry.exitCode".to_string(), Val::Str("-1".into()));
        assert!(retry("asInt(lastRetry.exitCode) == -1", &vars).unwrap());
    }

    /// expr-lang's `Fetch` gives nil for a map key that is not there (vm/runtime/runtime.go
    /// v1.15.5), so an Event Grid event (no `type`) and a CloudEvent (no `eventType`) both pass
    /// a filter that asks for either.
    #[test]
    fn event_filters_see_missing_members_as_nil() {
        let filter = r#"(body.eventType == "Microsoft.Storage.BlobCreated" || body.type == "Microsoft.Storage.BlobCreated") && body.subject startsWith "/blobServices/default/containers/landing/""#;
        let grid = json!({"body": {"eventType": "Microsoft.Storage.BlobCreated", "subject": "/blobServices/default/containers/landing/blobs/a.csv"}});
        let cloud = json!({"body": {"type": "Microsoft.Storage.BlobCreated", "subject": "/blobServices/default/containers/landing/blobs/a.csv"}});
        let deleted = json!({"body": {"eventType": "Microsoft.Storage.BlobDeleted", "subject": "/blobServices/default/containers/landing/blobs/a.csv"}});
        let other = json!({"body": {"type": "Microsoft.Storage.BlobCreated", "subject": "/blobServices/default/containers/other/blobs/a.csv"}});
        assert!(over_json(filter, &grid).unwrap());
        assert!(over_json(filter, &cloud).unwrap());
        assert!(!over_json(filter, &deleted).unwrap());
        assert!(!over_json(filter, &other).unwrap());
        assert!(over_json("nobody == 1", &grid).is_err());
    }

    #[test]
    fn parsing_alone_finds_syntax_errors() {
        assert!(parse("x > 0.75 && y == true", Dialect::Govaluate).is_ok());
        assert!(parse("x >", Dialect::Govaluate).is_err());
        assert!(parse("asInt(lastRetry.exitCode) == 1 ||", Dialect::ExprLang).is_err());
    }
}
