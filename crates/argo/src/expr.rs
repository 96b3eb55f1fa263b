//! The small expression languages Argo evaluates, for the local runner:
//! - `when:` after `{{...}}` substitution (govaluate): `true == true`, `'{{x}}' != 'reject'`,
//!   `{{a}} > 0.75 && {{b}} == true`, `!(...)`. A bare word compares as a string, as in Argo's
//!   coin-flip example (`tails == tails`).
//! - `retryStrategy.expression` (expr-lang): `asInt(lastRetry.exitCode) == 1`,
//!   `lastRetry.status == "Error"`, with the variables the caller provides.
//!
//! Operators: `== != < > <= >= && || !` and parentheses; literals: numbers, `'...'`/`"..."`
//! strings, `true`/`false`; functions `asInt`, `asFloat`, `string`. Anything else is an error
//! naming it.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("expression {expression:?}: {message}")]
pub struct ExprError {
    pub expression: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Num(f64),
    Str(String),
    Bool(bool),
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
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Val::Num(n) => Some(*n),
            Val::Str(s) => s.trim().parse().ok(),
            Val::Bool(_) => None,
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

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
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
        if let Some(op) = ["<", ">", "!", "(", ")", ","]
            .into_iter()
            .find(|o| o.starts_with(c))
        {
            out.push(Token::Op(op));
            i += 1;
            continue;
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
        while i < chars.len() && !chars[i].is_whitespace() && !"=!<>&|(),'\"".contains(chars[i]) {
            i += 1;
        }
        if start == i {
            return Err(format!("unexpected {c:?}"));
        }
        let word: String = chars[start..i].iter().collect();
        match word.parse::<f64>() {
            Ok(n) if !word.starts_with(['+']) => out.push(Token::Num(n)),
            _ => out.push(Token::Word(word)),
        }
    }
    Ok(out)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    vars: &'a BTreeMap<String, Val>,
    /// `when` compares unknown bare words as strings; retry expressions refuse them.
    bare_words: bool,
}

impl Parser<'_> {
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

    fn or(&mut self) -> Result<Val, String> {
        let mut left = self.and()?;
        while self.eat("||") {
            let right = self.and()?;
            left = Val::Bool(left.truthy()? || right.truthy()?);
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Val, String> {
        let mut left = self.comparison()?;
        while self.eat("&&") {
            let right = self.comparison()?;
            left = Val::Bool(left.truthy()? && right.truthy()?);
        }
        Ok(left)
    }

    fn comparison(&mut self) -> Result<Val, String> {
        let left = self.unary()?;
        let op = match self.peek() {
            Some(Token::Op(op)) if ["==", "!=", "<", ">", "<=", ">="].contains(op) => *op,
            _ => return Ok(left),
        };
        self.pos += 1;
        let right = self.unary()?;
        let result = match op {
            "==" | "!=" => {
                let equal = match (&left, &right) {
                    (Val::Bool(a), Val::Bool(b)) => a == b,
                    _ => match (left.number(), right.number()) {
                        (Some(a), Some(b)) => a == b,
                        _ => left.text() == right.text(),
                    },
                };
                equal == (op == "==")
            }
            _ => {
                let (Some(a), Some(b)) = (left.number(), right.number()) else {
                    return Err(format!("{op} needs numbers, found {left:?} and {right:?}"));
                };
                match op {
                    "<" => a < b,
                    ">" => a > b,
                    "<=" => a <= b,
                    _ => a >= b,
                }
            }
        };
        Ok(Val::Bool(result))
    }

    fn unary(&mut self) -> Result<Val, String> {
        if self.peek() == Some(&Token::Op("!")) {
            self.pos += 1;
            let v = self.unary()?;
            return Ok(Val::Bool(!v.truthy()?));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Val, String> {
        let token = self.peek().cloned().ok_or("ends too early")?;
        self.pos += 1;
        match token {
            Token::Num(n) => Ok(Val::Num(n)),
            Token::Str(s) => Ok(Val::Str(s)),
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
                    return call(&w, arg);
                }
                match w.as_str() {
                    "true" => Ok(Val::Bool(true)),
                    "false" => Ok(Val::Bool(false)),
                    _ => match self.vars.get(&w) {
                        Some(v) => Ok(v.clone()),
                        None if self.bare_words => Ok(Val::Str(w)),
                        None => Err(format!("unknown variable {w}")),
                    },
                }
            }
        }
    }
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

fn evaluate(text: &str, vars: &BTreeMap<String, Val>, bare_words: bool) -> Result<bool, ExprError> {
    let fail = |message: String| ExprError {
        expression: text.to_string(),
        message,
    };
    let tokens = tokenize(text).map_err(fail)?;
    if tokens.is_empty() {
        return Err(fail("is empty".into()));
    }
    let mut p = Parser {
        tokens,
        pos: 0,
        vars,
        bare_words,
    };
    let v = p.or().map_err(fail)?;
    if p.pos != p.tokens.len() {
        return Err(fail(format!(
            "unexpected {:?} after the end",
            p.tokens[p.pos]
        )));
    }
    v.truthy().map_err(fail)
}

/// A task's `when`, after its `{{...}}` variables were substituted.
pub fn when(text: &str) -> Result<bool, ExprError> {
    evaluate(text, &BTreeMap::new(), true)
}

/// A `retryStrategy.expression` with `lastRetry.exitCode`, `.status`, `.duration`, `.message`.
pub fn retry(text: &str, vars: &BTreeMap<String, Val>) -> Result<bool, ExprError> {
    evaluate(text, vars, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_expressions_as_argo_writes_them() {
        assert!(when("true == true").unwrap());
        assert!(!when("false == true").unwrap());
        assert!(when("tails == tails").unwrap());
        assert!(when("'approve' != 'reject' && 0.81 >= 0.75").unwrap());
        assert!(when("!(1 > 2) || false").unwrap());
        assert!(when("3 == 3.0").unwrap());
        assert!(!when("(true && false) || 2 < 1").unwrap());
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
        assert!(retry("nosuch == 1", &vars).is_err());
    }
}
