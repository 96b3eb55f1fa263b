//! JSON lines: one object per line. Values are kept as they arrived: strings unescaped, numbers,
//! booleans, objects and arrays as their JSON text, `null` as null. The columns are the keys seen
//! in the sample (the first [`SAMPLE_LINES`] lines, in first-seen order); a later line with a new
//! key is a bad row, so nothing is dropped silently.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, Int64Array};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::{Error, Position, Result};
use crate::ingest::batch::{BadRow, Chunk};
use crate::source::classify_read_error;

pub const SAMPLE_LINES: usize = 1000;

/// The fields of one JSON object, in order, values unparsed.
struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Fields<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(
                self,
                mut m: M,
            ) -> std::result::Result<Fields<'a>, M::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

fn parse_line(line: &[u8]) -> std::result::Result<Fields<'_>, String> {
    serde_json::from_slice::<Fields>(line).map_err(|e| {
        let msg = e.to_string();
        if msg.contains("expected a JSON object") || msg.contains("invalid type") {
            "is not a JSON object".to_string()
        } else {
            format!("is not valid JSON ({msg})")
        }
    })
}

/// The value as bronze keeps it: `None` for null.
fn value_text(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'n') if text == "null" => None,
        Some(b'"') => Some(serde_json::from_str::<Cow<str>>(text).unwrap_or(Cow::Borrowed(text))),
        _ => Some(Cow::Borrowed(text)),
    }
}

/// Column names from the sample's complete lines.
pub fn sniff_columns(sample: &[u8]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let complete = match sample.iter().rposition(|&b| b == b'\n') {
        Some(end) => &sample[..end],
        None => sample,
    };
    for line in complete.split(|&b| b == b'\n').take(SAMPLE_LINES) {
        if let Ok(fields) = parse_line(trim(line)) {
            for (k, _) in fields.0 {
                if !names.iter().any(|n| n == k.as_ref()) {
                    names.push(k.into_owned());
                }
            }
        }
    }
    names
}

fn trim(line: &[u8]) -> &[u8] {
    let mut l = line;
    while let Some((last, rest)) = l.split_last() {
        if last.is_ascii_whitespace() {
            l = rest;
        } else {
            break;
        }
    }
    while let Some((first, rest)) = l.split_first() {
        if first.is_ascii_whitespace() {
            l = rest;
        } else {
            break;
        }
    }
    l
}

/// The sniffed sample followed by the rest of the stream.
type SampleThenRest = std::io::Chain<Cursor<Vec<u8>>, Box<dyn Read + Send>>;

/// Streams chunks of rows from JSON lines.
pub struct JsonLines {
    reader: BufReader<SampleThenRest>,
    names: Vec<String>,
    index: HashMap<String, usize>,
    line: Vec<u8>,
    /// Data rows seen (non-blank lines).
    rows: u64,
    max_line_bytes: usize,
    url: String,
}

impl JsonLines {
    pub fn new(
        sample: Vec<u8>,
        rest: Box<dyn Read + Send>,
        names: Vec<String>,
        max_line_bytes: usize,
        url: &str,
    ) -> JsonLines {
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        JsonLines {
            reader: BufReader::with_capacity(1 << 20, Cursor::new(sample).chain(rest)),
            names,
            index,
            line: Vec::new(),
            rows: 0,
            max_line_bytes,
            url: url.to_string(),
        }
    }

    /// Reads up to `max_rows` rows; bad lines go to `bad`. `None` at the end.
    pub fn next_chunk(
        &mut self,
        max_rows: usize,
        bad: &mut dyn FnMut(BadRow) -> Result<()>,
    ) -> Result<Option<Chunk>> {
        let mut builders: Vec<StringBuilder> = self
            .names
            .iter()
            .map(|_| StringBuilder::with_capacity(max_rows, max_rows * 16))
            .collect();
        let mut row_numbers = Vec::with_capacity(max_rows);
        let mut at_end = false;
        while row_numbers.len() < max_rows {
            self.line.clear();
            let n = (&mut self.reader)
                .take(self.max_line_bytes as u64 + 1)
                .read_until(b'\n', &mut self.line)
                .map_err(|e| classify_read_error(e, &self.url, "the file"))?;
            if n == 0 {
                at_end = true;
                break;
            }
            if self.line.len() > self.max_line_bytes {
                return Err(Error::bad_source(
                    &self.url,
                    Position {
                        row: Some(self.rows + 1),
                        column: None,
                    },
                    format!(
                        "a line is longer than {} MiB; fix the file or raise --max-record-bytes",
                        self.max_line_bytes >> 20
                    ),
                ));
            }
            let line = trim(&self.line);
            if line.is_empty() {
                continue;
            }
            self.rows += 1;
            let row = self.rows;
            let raw = || String::from_utf8_lossy(&line[..line.len().min(1024)]).into_owned();
            let text = match std::str::from_utf8(line) {
                Ok(t) => t,
                Err(_) => {
                    bad(BadRow {
                        row,
                        column: None,
                        reason: "is not valid UTF-8; pass --encoding".into(),
                        raw: raw(),
                    })?;
                    continue;
                }
            };
            let fields = match parse_line(text.as_bytes()) {
                Ok(f) => f,
                Err(reason) => {
                    bad(BadRow {
                        row,
                        column: None,
                        reason,
                        raw: raw(),
                    })?;
                    continue;
                }
            };
            let mut values: Vec<Option<Cow<str>>> = vec![None; self.names.len()];
            let mut unknown = None;
            for (k, v) in &fields.0 {
                match self.index.get(k.as_ref()) {
                    Some(&i) => values[i] = value_text(v),
                    None => {
                        unknown = Some(k.to_string());
                        break;
                    }
                }
            }
            if let Some(key) = unknown {
                bad(BadRow {
                    row,
                    column: Some(key.clone()),
                    reason: format!(
                        "has key '{key}', which the first {SAMPLE_LINES} lines do not have; the columns were fixed from them"
                    ),
                    raw: raw(),
                })?;
                continue;
            }
            for (b, v) in builders.iter_mut().zip(values.drain(..)) {
                match v {
                    Some(s) => b.append_value(s),
                    None => b.append_null(),
                }
            }
            row_numbers.push(row as i64);
        }
        if row_numbers.is_empty() && at_end {
            return Ok(None);
        }
        Ok(Some(Chunk {
            columns: builders
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef)
                .collect(),
            row_numbers: Int64Array::from(row_numbers),
        }))
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::{Array, StringArray};

    use super::*;

    #[test]
    fn keeps_values_as_text() {
        let text = b"{\"a\": \"x\\\"y\", \"b\": 1.50, \"c\": {\"k\": [1,2]}}\n\n{\"b\": null, \"a\": \"z\"}\n".to_vec();
        let names = sniff_columns(&text);
        assert_eq!(names, vec!["a", "b", "c"]);
        let mut j = JsonLines::new(text, Box::new(std::io::empty()), names, 1 << 20, "t");
        let mut bad = |_b: BadRow| -> Result<()> { panic!("no bad rows expected") };
        let chunk = j.next_chunk(10, &mut bad).unwrap().unwrap();
        let col = |i: usize| {
            chunk.columns[i]
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone()
        };
        assert_eq!(col(0).value(0), "x\"y");
        assert_eq!(col(1).value(0), "1.50");
        assert_eq!(col(2).value(0), "{\"k\": [1,2]}");
        assert!(col(1).is_null(1));
        assert!(col(2).is_null(1));
        assert_eq!(chunk.row_numbers.values().to_vec(), vec![1, 2]);
        assert!(j.next_chunk(10, &mut bad).unwrap().is_none());
    }

    #[test]
    fn bad_lines_are_reported_not_dropped() {
        let text = b"{\"a\":1}\nnot json\n[1,2]\n{\"a\":2,\"new\":3}\n{\"a\":3}\n".to_vec();
        let names = sniff_columns(b"{\"a\":1}\n");
        let mut j = JsonLines::new(text, Box::new(std::io::empty()), names, 1 << 20, "t");
        let mut bads = Vec::new();
        let chunk = j
            .next_chunk(10, &mut |b| {
                bads.push(b);
                Ok(())
            })
            .unwrap()
            .unwrap();
        assert_eq!(chunk.row_numbers.values().to_vec(), vec![1, 5]);
        let reasons: Vec<_> = bads.iter().map(|b| (b.row, b.reason.clone())).collect();
        assert_eq!(reasons.len(), 3);
        assert!(reasons[0].1.contains("not valid JSON"), "{reasons:?}");
        assert!(reasons[1].1.contains("not a JSON object"), "{reasons:?}");
        assert!(reasons[2].1.contains("key 'new'"), "{reasons:?}");
    }
}
