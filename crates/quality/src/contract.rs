//! Data contracts: what a silver version may hold, written in YAML next to the code.
//!
//! ```yaml
//! dataset: houses
//! unknown_columns: drop            # keep | drop | reject
//! max_rejected_fraction: 0.02      # more rejected rows than this: refine exits 3, commits nothing
//! incremental: false               # dedup also against the previous silver version
//! null_tokens: ["", "NA", "n/a"]   # default for every column (a column may override)
//! rename: {lotsize: lot_size}      # source name -> contract name, applied first
//! dedup: {keys: [house_id]}        # the first row of each key wins
//! columns:
//!   house_id: {type: string, required: true, regex: "^H[0-9]{7}$"}
//!   price:    {type: float, required: true, min: 1000}
//!   bedrooms: {type: int, min: 0, max: 20}
//!   kind:     {type: string, case: lower, allowed: [urban, suburban, waterfront, rural]}
//!   sold_on:  {type: date, format: "%Y-%m-%d", min: "1990-01-01"}
//!   sold_at:  {type: timestamp}    # RFC 3339 or YYYY-MM-DD HH:MM:SS[.f] (UTC); `format` for others
//!   amount:   {type: decimal, precision: 12, scale: 2}
//!   airco:    {type: bool}         # yes/no, true/false, y/n, t/f, 1/0 (any case)
//! ```
//!
//! A contract that is itself wrong (unknown type or key, bad regex, duplicate column, min above
//! max...) is an error naming the file, the line and the field.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use serde_yaml_ng::{Mapping, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// What to do with source columns the contract does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownColumns {
    Keep,
    Drop,
    Reject,
}

/// A column's silver type.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnType {
    Int,
    Float,
    Decimal {
        precision: u8,
        scale: i8,
    },
    Bool,
    String,
    Date {
        format: String,
    },
    /// `None`: RFC 3339, or `YYYY-MM-DD HH:MM:SS[.f]` taken as UTC.
    Timestamp {
        format: Option<String>,
    },
}

impl ColumnType {
    pub fn name(&self) -> &'static str {
        match self {
            ColumnType::Int => "int",
            ColumnType::Float => "float",
            ColumnType::Decimal { .. } => "decimal",
            ColumnType::Bool => "bool",
            ColumnType::String => "string",
            ColumnType::Date { .. } => "date",
            ColumnType::Timestamp { .. } => "timestamp",
        }
    }
}

/// Case folding for text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Lower,
    Upper,
}

/// A bound on a value, in the column's own ordering.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Number(f64),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since the epoch (UTC).
    Timestamp(i64),
}

/// One column of the contract.
#[derive(Debug, Clone)]
pub struct ColumnRule {
    pub name: String,
    pub ty: ColumnType,
    pub required: bool,
    pub null_tokens: Vec<String>,
    pub trim: bool,
    pub case: Option<Case>,
    pub allowed: Option<Vec<String>>,
    pub min: Option<Bound>,
    pub max: Option<Bound>,
    pub regex: Option<regex::Regex>,
}

/// Deduplication on key columns (the first row of each key is kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dedup {
    pub keys: Vec<String>,
}

/// A parsed, checked contract.
#[derive(Debug, Clone)]
pub struct Contract {
    pub path: String,
    /// SHA-256 of the file's bytes: recorded in silver manifests, part of refine's identity.
    pub sha256: String,
    pub dataset: Option<String>,
    pub columns: Vec<ColumnRule>,
    /// Source name → contract name.
    pub rename: BTreeMap<String, String>,
    pub unknown_columns: UnknownColumns,
    pub dedup: Option<Dedup>,
    pub incremental: bool,
    pub max_rejected_fraction: f64,
}

const DEFAULT_NULL_TOKENS: [&str; 6] = ["", "NA", "N/A", "n/a", "null", "NULL"];
const TOP_KEYS: [&str; 9] = [
    "dataset",
    "unknown_columns",
    "max_rejected_fraction",
    "incremental",
    "null_tokens",
    "trim",
    "rename",
    "dedup",
    "columns",
];
const COLUMN_KEYS: [&str; 12] = [
    "type",
    "required",
    "null_tokens",
    "trim",
    "case",
    "allowed",
    "min",
    "max",
    "regex",
    "format",
    "precision",
    "scale",
];

impl Contract {
    /// Reads and checks a contract file.
    pub fn load(path: &std::path::Path) -> Result<Contract> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::ContractFile {
            path: path.display().to_string(),
            line: None,
            message: format!("cannot read it: {e}"),
        })?;
        Contract::parse(&text, &path.display().to_string())
    }

    /// Parses and checks contract text; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Contract> {
        let lines = Lines { text };
        let bad = |line: Option<usize>, message: String| Error::ContractFile {
            path: path.to_string(),
            line,
            message,
        };
        let doc: Value = serde_yaml_ng::from_str(text)
            .map_err(|e| bad(e.location().map(|l| l.line()), lakeline(&e.to_string())))?;
        let Some(top) = doc.as_mapping() else {
            return Err(bad(
                Some(1),
                "a contract is a mapping with a 'columns:' section".into(),
            ));
        };
        for key in top.keys() {
            let k = key.as_str().unwrap_or("");
            if !TOP_KEYS.contains(&k) {
                return Err(bad(
                    lines.key(None, k),
                    format!("unknown key '{k}'; a contract has {}", TOP_KEYS.join(", ")),
                ));
            }
        }
        let text_list = |v: &Value, what: &str, line: Option<usize>| -> Result<Vec<String>> {
            v.as_sequence()
                .ok_or_else(|| bad(line, format!("'{what}' must be a list")))?
                .iter()
                .map(|x| {
                    scalar_text(x).ok_or_else(|| {
                        bad(line, format!("'{what}' holds a value that is not text"))
                    })
                })
                .collect()
        };
        let default_nulls = match top.get("null_tokens") {
            Some(v) => text_list(v, "null_tokens", lines.key(None, "null_tokens"))?,
            None => DEFAULT_NULL_TOKENS.iter().map(|s| s.to_string()).collect(),
        };
        let default_trim = match top.get("trim") {
            Some(v) => v.as_bool().ok_or_else(|| {
                bad(
                    lines.key(None, "trim"),
                    "'trim' must be true or false".into(),
                )
            })?,
            None => true,
        };
        let unknown_columns = match top
            .get("unknown_columns")
            .and_then(Value::as_str)
            .unwrap_or("keep")
        {
            "keep" => UnknownColumns::Keep,
            "drop" => UnknownColumns::Drop,
            "reject" => UnknownColumns::Reject,
            other => {
                return Err(bad(
                    lines.key(None, "unknown_columns"),
                    format!("unknown_columns '{other}': use keep, drop or reject"),
                ));
            }
        };
        let max_rejected_fraction = match top.get("max_rejected_fraction") {
            None => 0.0,
            Some(v) => match v.as_f64() {
                Some(f) if (0.0..=1.0).contains(&f) => f,
                _ => {
                    return Err(bad(
                        lines.key(None, "max_rejected_fraction"),
                        "max_rejected_fraction must be a number from 0 to 1".into(),
                    ));
                }
            },
        };
        let incremental = top
            .get("incremental")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut rename = BTreeMap::new();
        if let Some(v) = top.get("rename") {
            let m = v.as_mapping().ok_or_else(|| {
                bad(
                    lines.key(None, "rename"),
                    "'rename' maps source names to contract names".into(),
                )
            })?;
            for (k, v) in m {
                match (k.as_str(), v.as_str()) {
                    (Some(from), Some(to)) => {
                        rename.insert(from.to_string(), to.to_string());
                    }
                    _ => {
                        return Err(bad(
                            lines.key(None, "rename"),
                            "'rename' entries are name: new_name".into(),
                        ));
                    }
                }
            }
        }
        let Some(cols) = top.get("columns").and_then(Value::as_mapping) else {
            return Err(bad(
                None,
                "a contract needs a 'columns:' mapping of column name to rule".into(),
            ));
        };
        let mut columns = Vec::new();
        let mut seen = HashSet::new();
        for (k, v) in cols {
            let Some(name) = k.as_str() else {
                return Err(bad(
                    lines.key(Some("columns"), ""),
                    "column names must be text".into(),
                ));
            };
            let line = lines.key(Some("columns"), name);
            if !seen.insert(name.to_string()) {
                return Err(bad(line, format!("column '{name}' is declared twice")));
            }
            columns.push(column_rule(
                name,
                v,
                &default_nulls,
                default_trim,
                line,
                &bad,
            )?);
        }
        let dedup = match top.get("dedup") {
            None => None,
            Some(v) => {
                let line = lines.key(None, "dedup");
                let keys = v
                    .get("keys")
                    .ok_or_else(|| bad(line, "dedup needs 'keys: [column, ...]'".into()))?;
                let keys = text_list(keys, "dedup.keys", line)?;
                if keys.is_empty() {
                    return Err(bad(line, "dedup.keys is empty".into()));
                }
                for key in &keys {
                    if !seen.contains(key) {
                        return Err(bad(
                            line,
                            format!("dedup key '{key}' is not a contract column"),
                        ));
                    }
                }
                Some(Dedup { keys })
            }
        };
        let dataset = top
            .get("dataset")
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok(Contract {
            path: path.to_string(),
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
            dataset,
            columns,
            rename,
            unknown_columns,
            dedup,
            incremental,
            max_rejected_fraction,
        })
    }

    pub fn column(&self, name: &str) -> Option<&ColumnRule> {
        self.columns.iter().find(|c| c.name == name)
    }
}

fn lakeline(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text of a scalar YAML value (strings, numbers, booleans).
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn column_rule(
    name: &str,
    v: &Value,
    default_nulls: &[String],
    default_trim: bool,
    line: Option<usize>,
    bad: &dyn Fn(Option<usize>, String) -> Error,
) -> Result<ColumnRule> {
    let empty = Mapping::new();
    let (m, ty_name) = match v {
        Value::String(t) => (&empty, t.as_str()),
        Value::Mapping(m) => (m, m.get("type").and_then(Value::as_str).unwrap_or("")),
        _ => {
            return Err(bad(
                line,
                format!("column '{name}': give a type or a mapping with 'type:'"),
            ));
        }
    };
    for key in m.keys() {
        let k = key.as_str().unwrap_or("");
        if !COLUMN_KEYS.contains(&k) {
            return Err(bad(
                line,
                format!(
                    "column '{name}': unknown key '{k}'; a column has {}",
                    COLUMN_KEYS.join(", ")
                ),
            ));
        }
    }
    let format = m.get("format").and_then(Value::as_str).map(str::to_string);
    let ty = match ty_name {
        "int" | "integer" | "int64" => ColumnType::Int,
        "float" | "double" | "float64" => ColumnType::Float,
        "bool" | "boolean" => ColumnType::Bool,
        "string" | "text" => ColumnType::String,
        "date" => ColumnType::Date {
            format: format.clone().unwrap_or_else(|| "%Y-%m-%d".into()),
        },
        "timestamp" | "datetime" => ColumnType::Timestamp {
            format: format.clone(),
        },
        "decimal" => {
            let precision = m.get("precision").and_then(Value::as_u64).unwrap_or(18);
            let scale = m.get("scale").and_then(Value::as_u64).unwrap_or(2);
            if !(1..=38).contains(&precision) || scale > precision {
                return Err(bad(
                    line,
                    format!(
                        "column '{name}': decimal needs 1 <= precision <= 38 and scale <= precision"
                    ),
                ));
            }
            ColumnType::Decimal {
                precision: precision as u8,
                scale: scale as i8,
            }
        }
        "" => return Err(bad(line, format!("column '{name}': missing 'type'"))),
        other => {
            return Err(bad(
                line,
                format!(
                    "column '{name}': unknown type '{other}'; use int, float, decimal, bool, string, date or timestamp"
                ),
            ));
        }
    };
    let text_list = |key: &str| -> Result<Option<Vec<String>>> {
        match m.get(key) {
            None => Ok(None),
            Some(Value::Sequence(items)) => items
                .iter()
                .map(|x| {
                    scalar_text(x).ok_or_else(|| {
                        bad(
                            line,
                            format!("column '{name}': '{key}' holds a value that is not text"),
                        )
                    })
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(_) => Err(bad(
                line,
                format!("column '{name}': '{key}' must be a list"),
            )),
        }
    };
    let case = match m.get("case").and_then(Value::as_str) {
        None => None,
        Some("lower") => Some(Case::Lower),
        Some("upper") => Some(Case::Upper),
        Some(other) => {
            return Err(bad(
                line,
                format!("column '{name}': case '{other}': use lower or upper"),
            ));
        }
    };
    let bound = |key: &str| -> Result<Option<Bound>> {
        let Some(v) = m.get(key) else { return Ok(None) };
        let invalid = || {
            bad(
                line,
                format!("column '{name}': '{key}' does not fit type {}", ty.name()),
            )
        };
        Ok(Some(match &ty {
            ColumnType::Int | ColumnType::Float | ColumnType::Decimal { .. } => {
                Bound::Number(v.as_f64().ok_or_else(invalid)?)
            }
            ColumnType::Date { format } => {
                let s = v.as_str().ok_or_else(invalid)?;
                let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .or_else(|_| NaiveDate::parse_from_str(s, format))
                    .map_err(|_| invalid())?;
                Bound::Date(crate::convert::days_since_epoch(d))
            }
            ColumnType::Timestamp { format } => {
                let s = v.as_str().ok_or_else(invalid)?;
                Bound::Timestamp(
                    crate::convert::parse_timestamp(s, format.as_deref()).ok_or_else(invalid)?,
                )
            }
            ColumnType::Bool | ColumnType::String => {
                return Err(bad(
                    line,
                    format!("column '{name}': '{key}' applies to numbers, dates and timestamps"),
                ));
            }
        }))
    };
    let (min, max) = (bound("min")?, bound("max")?);
    let value = |b: Bound| match b {
        Bound::Number(x) => x,
        Bound::Date(d) => f64::from(d),
        Bound::Timestamp(t) => t as f64,
    };
    if let (Some(lo), Some(hi)) = (min, max)
        && value(lo) > value(hi)
    {
        return Err(bad(line, format!("column '{name}': min is above max")));
    }
    let regex = match m.get("regex") {
        None => None,
        Some(v) => {
            let pattern = v
                .as_str()
                .ok_or_else(|| bad(line, format!("column '{name}': 'regex' must be text")))?;
            Some(regex::Regex::new(pattern).map_err(|e| {
                bad(
                    line,
                    format!("column '{name}': bad regex: {}", lakeline(&e.to_string())),
                )
            })?)
        }
    };
    Ok(ColumnRule {
        name: name.to_string(),
        required: m.get("required").and_then(Value::as_bool).unwrap_or(false),
        null_tokens: text_list("null_tokens")?.unwrap_or_else(|| default_nulls.to_vec()),
        trim: m
            .get("trim")
            .and_then(Value::as_bool)
            .unwrap_or(default_trim),
        case,
        allowed: text_list("allowed")?,
        min,
        max,
        regex,
        ty,
    })
}

/// Finds the line of a key, for errors about values serde does not locate.
struct Lines<'a> {
    text: &'a str,
}

impl Lines<'_> {
    /// 1-based line of `key:` at top level (`section` = None) or inside `section:`.
    fn key(&self, section: Option<&str>, key: &str) -> Option<usize> {
        let mut inside = section.is_none();
        let mut section_indent = 0;
        for (i, line) in self.text.lines().enumerate() {
            let indent = line.len() - line.trim_start().len();
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if let Some(s) = section {
                if indent == 0 {
                    inside = trimmed.starts_with(&format!("{s}:"));
                    section_indent = 0;
                    continue;
                }
                if !inside || indent <= section_indent {
                    continue;
                }
            } else if indent != 0 {
                continue;
            }
            let bare = trimmed.trim_start_matches(['"', '\'']);
            if bare.starts_with(key)
                && bare[key.len()..]
                    .trim_start_matches(['"', '\''])
                    .starts_with(':')
            {
                return Some(i + 1);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "dataset: houses
unknown_columns: drop
max_rejected_fraction: 0.1
rename: {lotsize: lot_size}
dedup: {keys: [id]}
columns:
  id: {type: string, required: true, regex: '^H[0-9]+$'}
  price: {type: float, min: 0, max: 1e9}
  kind: {type: string, case: lower, allowed: [urban, rural]}
  sold: {type: date, min: '2000-01-01'}
  lot_size: int
";

    #[test]
    fn parses_a_contract() {
        let c = Contract::parse(GOOD, "c.yaml").unwrap();
        assert_eq!(c.columns.len(), 5);
        assert_eq!(c.unknown_columns, UnknownColumns::Drop);
        assert_eq!(
            c.rename.get("lotsize").map(String::as_str),
            Some("lot_size")
        );
        assert_eq!(
            c.dedup,
            Some(Dedup {
                keys: vec!["id".into()]
            })
        );
        let id = c.column("id").unwrap();
        assert!(id.required && id.trim);
        assert_eq!(id.null_tokens.len(), DEFAULT_NULL_TOKENS.len());
        assert_eq!(c.column("sold").unwrap().min, Some(Bound::Date(10957)));
        assert_eq!(c.sha256.len(), 64);
    }

    #[test]
    fn bad_contracts_name_file_line_and_field() {
        let cases = [
            (
                GOOD.replace("lot_size: int", "lot_size: money"),
                "c.yaml line 11: column 'lot_size': unknown type 'money'",
            ),
            (
                GOOD.replace("'^H[0-9]+$'", "'^H[0-9+$'"),
                "c.yaml line 7: column 'id': bad regex",
            ),
            (
                GOOD.replace("  lot_size: int", "  price: int"),
                "c.yaml line 7: columns: duplicate entry with key \"price\"",
            ),
            (
                GOOD.replace("min: 0, max: 1e9", "min: 10, max: 1"),
                "c.yaml line 8: column 'price': min is above max",
            ),
            (
                GOOD.replace("unknown_columns: drop", "unknown_columns: maybe"),
                "c.yaml line 2: unknown_columns 'maybe'",
            ),
            (
                GOOD.replace("keys: [id]", "keys: [nope]"),
                "c.yaml line 5: dedup key 'nope' is not a contract column",
            ),
            (
                GOOD.replace("case: lower", "kase: lower"),
                "c.yaml line 9: column 'kind': unknown key 'kase'",
            ),
            (
                GOOD.replace("dataset: houses", "datset: houses"),
                "c.yaml line 1: unknown key 'datset'",
            ),
            ("columns: [\n".to_string(), "c.yaml line"),
        ];
        for (text, want) in cases {
            let err = Contract::parse(&text, "c.yaml").unwrap_err().to_string();
            assert!(err.starts_with(want), "got {err:?}, want {want:?}");
        }
    }

    #[test]
    fn duplicate_yaml_keys_are_refused() {
        let err = Contract::parse("columns:\n  a: int\n  a: float\n", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.yaml line"), "{err}");
    }
}
