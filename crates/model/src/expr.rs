//! Derived features: arithmetic over numeric and date columns.
//!
//! `+ - * /`, parentheses, numbers, column names, and functions `year(d)`, `month(d)`,
//! `weekday(d)` (0 = Monday) of a date or timestamp, `log1p(x)`, `log(x)`, `sqrt(x)`, `abs(x)`.
//! Dates and timestamps are numbers here: days since 1970-01-01 (fractional for timestamps).
//! A missing input gives a missing result (NaN), imputed like any numeric feature.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    Number(f64),
    Column(String),
    Neg(Box<Expr>),
    Binary(Box<Expr>, char, Box<Expr>),
    Call(String, Box<Expr>),
}

const FUNCTIONS: [&str; 7] = ["year", "month", "weekday", "log1p", "log", "sqrt", "abs"];

impl Expr {
    /// Parses `text`; the error says what is wrong and where.
    pub fn parse(text: &str) -> Result<Expr, String> {
        let tokens = tokenize(text)?;
        let mut p = Parser { tokens, pos: 0 };
        let e = p.sum()?;
        if let Some(t) = p.tokens.get(p.pos) {
            return Err(format!("unexpected '{t}' in '{text}'"));
        }
        Ok(e)
    }

    /// Column names the expression reads, in order of first use.
    pub fn columns(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect(&self, out: &mut Vec<String>) {
        match self {
            Expr::Number(_) => {}
            Expr::Column(c) => {
                if !out.contains(c) {
                    out.push(c.clone())
                }
            }
            Expr::Neg(e) | Expr::Call(_, e) => e.collect(out),
            Expr::Binary(a, _, b) => {
                a.collect(out);
                b.collect(out);
            }
        }
    }

    /// Evaluates with `value(column)` giving each column's number (NaN when missing).
    pub fn eval(&self, value: &dyn Fn(&str) -> f64) -> f64 {
        match self {
            Expr::Number(x) => *x,
            Expr::Column(c) => value(c),
            Expr::Neg(e) => -e.eval(value),
            Expr::Binary(a, op, b) => {
                let (x, y) = (a.eval(value), b.eval(value));
                match op {
                    '+' => x + y,
                    '-' => x - y,
                    '*' => x * y,
                    _ => x / y,
                }
            }
            Expr::Call(f, e) => {
                let x = e.eval(value);
                match f.as_str() {
                    "year" => date_of(x).map_or(f64::NAN, |d| d.year() as f64),
                    "month" => date_of(x).map_or(f64::NAN, |d| d.month() as f64),
                    "weekday" => {
                        date_of(x).map_or(f64::NAN, |d| d.weekday().num_days_from_monday() as f64)
                    }
                    "log1p" => x.ln_1p(),
                    "log" => x.ln(),
                    "sqrt" => x.sqrt(),
                    _ => x.abs(),
                }
            }
        }
    }
}

fn date_of(days: f64) -> Option<NaiveDate> {
    if !days.is_finite() {
        return None;
    }
    NaiveDate::from_ymd_opt(1970, 1, 1)?
        .checked_add_signed(chrono::TimeDelta::try_days(days.floor() as i64)?)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Num(f64),
    Ident(String),
    Sym(char),
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Num(x) => write!(f, "{x}"),
            Token::Ident(s) => write!(f, "{s}"),
            Token::Sym(c) => write!(f, "{c}"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || chars[i] == '.'
                    || chars[i] == 'e'
                    || ((chars[i] == '-' || chars[i] == '+') && chars[i - 1] == 'e'))
            {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            out.push(Token::Num(
                s.parse()
                    .map_err(|_| format!("'{s}' is not a number in '{text}'"))?,
            ));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else if "+-*/()".contains(c) {
            out.push(Token::Sym(c));
            i += 1;
        } else {
            return Err(format!(
                "'{c}' is not allowed in '{text}' (use + - * / ( ) and functions {})",
                FUNCTIONS.join(", ")
            ));
        }
    }
    if out.is_empty() {
        return Err("the expression is empty".into());
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

    fn sum(&mut self) -> Result<Expr, String> {
        let mut left = self.product()?;
        while let Some(Token::Sym(op @ ('+' | '-'))) = self.peek().cloned() {
            self.pos += 1;
            left = Expr::Binary(Box::new(left), op, Box::new(self.product()?));
        }
        Ok(left)
    }

    fn product(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while let Some(Token::Sym(op @ ('*' | '/'))) = self.peek().cloned() {
            self.pos += 1;
            left = Expr::Binary(Box::new(left), op, Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Token::Sym('-')) {
            self.pos += 1;
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Expr, String> {
        let token = self.peek().cloned();
        self.pos += 1;
        match token {
            Some(Token::Num(x)) => Ok(Expr::Number(x)),
            Some(Token::Ident(name)) => {
                if self.peek() == Some(&Token::Sym('(')) {
                    if !FUNCTIONS.contains(&name.as_str()) {
                        return Err(format!(
                            "unknown function {name}; use one of {}",
                            FUNCTIONS.join(", ")
                        ));
                    }
                    self.pos += 1;
                    let inner = self.sum()?;
                    self.expect(')')?;
                    Ok(Expr::Call(name, Box::new(inner)))
                } else {
                    Ok(Expr::Column(name))
                }
            }
            Some(Token::Sym('(')) => {
                let inner = self.sum()?;
                self.expect(')')?;
                Ok(inner)
            }
            Some(t) => Err(format!("unexpected '{t}'")),
            None => Err("the expression ends too early".into()),
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.peek() == Some(&Token::Sym(c)) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected '{c}'"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_from_a_date_and_precedence() {
        let e = Expr::parse("year(sale_date) - year_built").unwrap();
        assert_eq!(e.columns(), vec!["sale_date", "year_built"]);
        // 2026-09-01 is day 20697 since 1970-01-01.
        let v = |c: &str| if c == "sale_date" { 20697.0 } else { 1944.0 };
        assert_eq!(e.eval(&v), 82.0);
        assert_eq!(
            Expr::parse("1 + 2 * 3 - -4 / 2").unwrap().eval(&|_| 0.0),
            9.0
        );
        assert_eq!(Expr::parse("(1 + 2) * 3").unwrap().eval(&|_| 0.0), 9.0);
        assert!(Expr::parse("year(x)").unwrap().eval(&|_| f64::NAN).is_nan());
        assert!(Expr::parse("a +").unwrap_err().contains("ends too early"));
        assert!(
            Expr::parse("foo(a)")
                .unwrap_err()
                .contains("unknown function foo")
        );
        assert!(
            Expr::parse("a % 2")
                .unwrap_err()
                .contains("'%' is not allowed")
        );
        assert!(Expr::parse("(a").unwrap_err().contains("expected ')'"));
    }
}
