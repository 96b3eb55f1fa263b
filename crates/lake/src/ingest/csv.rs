//! Streaming CSV: dialect sniffing, header checks, and a record parser over `csv-core` that
//! writes fields straight into column buffers.

use std::io::Read;

use csv_core::{ReadRecordResult, Reader, ReaderBuilder};

use crate::error::{Error, Position, Result};
use crate::ingest::batch::{BadRow, StringColumns};
use crate::source::classify_read_error;

/// How a CSV file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvDialect {
    pub delimiter: u8,
    pub quote: u8,
}

impl CsvDialect {
    fn reader(&self) -> Reader {
        ReaderBuilder::new()
            .delimiter(self.delimiter)
            .quote(self.quote)
            .double_quote(true)
            .build()
    }

    /// Printable delimiter for manifests and messages.
    pub fn delimiter_name(&self) -> String {
        match self.delimiter {
            b'\t' => "\\t".to_string(),
            d => (d as char).to_string(),
        }
    }
}

/// Parses a `--delimiter`/`--quote` value: one ASCII character, or `tab`/`\t`.
pub fn parse_dialect_char(what: &'static str, value: &str) -> Result<u8> {
    match value {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        v if v.len() == 1 && v.is_ascii() && v != "\n" && v != "\r" => Ok(v.as_bytes()[0]),
        other => Err(Error::InvalidName {
            what,
            name: other.to_string(),
            reason: "it must be one ASCII character (or 'tab'), e.g. ',' ';' '|' 'tab'",
        }),
    }
}

const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Picks the delimiter that splits the sample's first records into the most fields, the same
/// number on every line. Falls back to `,` (a one-column file).
pub fn sniff_delimiter(sample: &[u8], quote: u8) -> u8 {
    let mut best = (b',', 0usize, false);
    for d in CANDIDATES {
        let counts = field_counts(
            sample,
            CsvDialect {
                delimiter: d,
                quote,
            },
            50,
        );
        let Some(&first) = counts.first() else {
            continue;
        };
        let consistent = counts.iter().all(|&c| c == first);
        let better = match (consistent, best.2) {
            (true, false) => first > 1,
            (false, true) => false,
            _ => first > best.1,
        };
        if better && first > 1 {
            best = (d, first, consistent);
        }
    }
    best.0
}

/// Field counts of up to `limit` complete records in `sample`.
fn field_counts(sample: &[u8], dialect: CsvDialect, limit: usize) -> Vec<usize> {
    let mut rdr = dialect.reader();
    let mut out = vec![0u8; sample.len().max(64)];
    let mut ends = vec![0usize; 4096];
    let mut input = sample;
    let mut counts = Vec::new();
    while counts.len() < limit {
        let (res, nin, _, nend) = rdr.read_record(input, &mut out, &mut ends);
        input = &input[nin..];
        match res {
            ReadRecordResult::Record => counts.push(nend),
            // The sample ends mid-record, or a record has too many fields to be a plausible CSV.
            ReadRecordResult::InputEmpty
            | ReadRecordResult::OutputFull
            | ReadRecordResult::OutputEndsFull => break,
            ReadRecordResult::End => break,
        }
    }
    counts
}

/// A streaming record reader.
pub struct CsvRecords {
    reader: Box<dyn Read + Send>,
    core: Reader,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    /// The current record's unescaped bytes and field ends.
    record: Vec<u8>,
    ends: Vec<usize>,
    nfields: usize,
    max_record_bytes: usize,
    url: String,
    /// Records read so far, the header included.
    pub records: u64,
    /// Records before the first data row: 1 with a header row, 0 without.
    pub data_offset: u64,
}

const READ_BYTES: usize = 1 << 20;

impl CsvRecords {
    /// `sample` holds the first bytes of text, `rest` the remainder.
    pub fn new(
        sample: Vec<u8>,
        rest: Box<dyn Read + Send>,
        dialect: CsvDialect,
        max_record_bytes: usize,
        url: &str,
    ) -> CsvRecords {
        let end = sample.len();
        let mut buf = sample;
        if buf.len() < READ_BYTES {
            buf.resize(READ_BYTES, 0);
        }
        CsvRecords {
            reader: rest,
            core: dialect.reader(),
            buf,
            pos: 0,
            end,
            eof: false,
            record: vec![0; 64 * 1024],
            ends: vec![0; 256],
            nfields: 0,
            max_record_bytes,
            url: url.to_string(),
            records: 0,
            data_offset: 1,
        }
    }

    /// Reads the next record; `false` at the end of the input.
    pub fn next_record(&mut self) -> Result<bool> {
        let mut out = 0;
        let mut nends = 0;
        loop {
            if self.pos == self.end && !self.eof {
                self.pos = 0;
                self.end = self
                    .reader
                    .read(&mut self.buf)
                    .map_err(|e| classify_read_error(e, &self.url, "the file"))?;
                self.eof = self.end == 0;
            }
            let (res, nin, nout, nend) = self.core.read_record(
                &self.buf[self.pos..self.end],
                &mut self.record[out..],
                &mut self.ends[nends..],
            );
            self.pos += nin;
            out += nout;
            nends += nend;
            match res {
                ReadRecordResult::InputEmpty => continue,
                ReadRecordResult::OutputFull => {
                    if self.record.len() >= self.max_record_bytes {
                        return Err(Error::bad_source(
                            &self.url,
                            Position {
                                row: Some(self.records + 1 - self.data_offset),
                                column: None,
                            },
                            format!(
                                "a record is longer than {} MiB (an unclosed quote?); fix the file or raise --max-record-bytes",
                                self.max_record_bytes >> 20
                            ),
                        ));
                    }
                    let grown = (self.record.len() * 2).min(self.max_record_bytes);
                    self.record.resize(grown, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    if self.ends.len() >= 100_000 {
                        return Err(Error::bad_source(
                            &self.url,
                            Position {
                                row: Some(self.records + 1 - self.data_offset),
                                column: None,
                            },
                            "a record has more than 100000 fields; check the delimiter (--delimiter)",
                        ));
                    }
                    let grown = self.ends.len() * 2;
                    self.ends.resize(grown, 0);
                }
                ReadRecordResult::Record => {
                    self.nfields = nends;
                    self.records += 1;
                    return Ok(true);
                }
                ReadRecordResult::End => return Ok(false),
            }
        }
    }

    /// The current record's 1-based data row number (the header is row 0).
    pub fn row(&self) -> u64 {
        self.records - self.data_offset
    }

    /// Number of fields in the current record.
    pub fn len(&self) -> usize {
        self.nfields
    }

    pub fn is_empty(&self) -> bool {
        self.nfields == 0
    }

    /// Field `i` of the current record.
    pub fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.record[start..self.ends[i]]
    }

    /// Appends the current record to the columns (which must match its field count).
    #[inline]
    pub fn append_to(&self, cols: &mut StringColumns) {
        let mut start = 0;
        for (i, &end) in self.ends[..self.nfields].iter().enumerate() {
            cols.push(i, &self.record[start..end]);
            start = end;
        }
    }

    /// The current record as text, for a quarantine entry (cut at `limit` bytes).
    pub fn raw_text(&self, delimiter: u8, limit: usize) -> String {
        let mut out = Vec::new();
        for i in 0..self.nfields {
            if i > 0 {
                out.push(delimiter);
            }
            out.extend_from_slice(self.field(i));
            if out.len() > limit {
                out.truncate(limit);
                break;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// A bad row for the current record when its field count is not `expected`.
    pub fn ragged(&self, expected: usize, delimiter: u8) -> Option<BadRow> {
        (self.nfields != expected).then(|| BadRow {
            row: self.row(),
            column: None,
            reason: format!("has {} fields, the header has {expected}", self.nfields),
            raw: self.raw_text(delimiter, 1024),
        })
    }
}

/// Checks and names the header's columns. Empty names become `column_<n>`.
pub fn header_names(records: &CsvRecords, url: &str) -> Result<Vec<String>> {
    let header_pos = Position {
        row: Some(0),
        column: None,
    };
    let mut names = Vec::with_capacity(records.len());
    for i in 0..records.len() {
        let raw = records.field(i);
        let name = std::str::from_utf8(raw)
            .map_err(|_| {
                Error::bad_source(
                    url,
                    header_pos.clone(),
                    "the header is not valid UTF-8; pass --encoding (e.g. windows-1252)",
                )
            })?
            .trim();
        names.push(if name.is_empty() {
            format!("column_{}", i + 1)
        } else {
            name.to_string()
        });
    }
    let looks_numeric = |s: &str| !s.is_empty() && s.parse::<f64>().is_ok();
    let non_empty: Vec<&str> = (0..records.len())
        .filter_map(|i| std::str::from_utf8(records.field(i)).ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if !non_empty.is_empty() && non_empty.iter().all(|s| looks_numeric(s)) {
        return Err(Error::bad_source(
            url,
            header_pos,
            format!(
                "the first row ({}) looks like data, not a header; add a header row or pass --columns a,b,c",
                non_empty.join(",").chars().take(80).collect::<String>()
            ),
        ));
    }
    check_unique(&names, url)?;
    Ok(names)
}

/// Column names must be unique and not clash with lineage columns.
pub fn check_unique(names: &[String], url: &str) -> Result<()> {
    let mut seen = std::collections::HashMap::new();
    for (i, n) in names.iter().enumerate() {
        if crate::ingest::lineage::is_lineage_column(n) {
            return Err(Error::bad_source(
                url,
                Position {
                    row: None,
                    column: Some(n.clone()),
                },
                "this name is reserved for lineage columns; rename the column",
            ));
        }
        if let Some(first) = seen.insert(n.as_str(), i) {
            return Err(Error::bad_source(
                url,
                Position {
                    row: Some(0),
                    column: Some(n.clone()),
                },
                format!(
                    "the header names this column twice (columns {} and {}); rename one",
                    first + 1,
                    i + 1
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &str, dialect: CsvDialect) -> Vec<Vec<String>> {
        let mut r = CsvRecords::new(
            text.as_bytes().to_vec(),
            Box::new(std::io::empty()),
            dialect,
            1 << 20,
            "t",
        );
        let mut out = Vec::new();
        while r.next_record().unwrap() {
            out.push(
                (0..r.len())
                    .map(|i| String::from_utf8(r.field(i).to_vec()).unwrap())
                    .collect(),
            );
        }
        out
    }

    const COMMA: CsvDialect = CsvDialect {
        delimiter: b',',
        quote: b'"',
    };

    #[test]
    fn dialect_characters() {
        assert_eq!(parse_dialect_char("delimiter", ";").unwrap(), b';');
        assert_eq!(parse_dialect_char("delimiter", "tab").unwrap(), b'\t');
        assert_eq!(parse_dialect_char("delimiter", "\\t").unwrap(), b'\t');
        assert!(parse_dialect_char("delimiter", ";;").is_err());
        assert!(parse_dialect_char("delimiter", "é").is_err());
    }

    #[test]
    fn sniffs_common_delimiters() {
        assert_eq!(sniff_delimiter(b"a,b,c\n1,2,3\n", b'"'), b',');
        assert_eq!(sniff_delimiter(b"a;b;c\n1,5;2;3\n", b'"'), b';');
        assert_eq!(sniff_delimiter(b"a\tb\n1\t2\n", b'"'), b'\t');
        assert_eq!(sniff_delimiter(b"a|b\n1|2\n", b'"'), b'|');
        assert_eq!(sniff_delimiter(b"single\nx\n", b'"'), b',');
        // A comma inside quotes does not fool it.
        assert_eq!(sniff_delimiter(b"a;b\n\"x,y,z\";2\n", b'"'), b';');
    }

    #[test]
    fn quotes_newlines_and_crlf() {
        let rows = records("a,b\r\n\"x \"\"q\"\"\",\"line1\nline2\"\r\n3,\r\n", COMMA);
        assert_eq!(
            rows,
            vec![
                vec!["a".to_string(), "b".into()],
                vec!["x \"q\"".into(), "line1\nline2".into()],
                vec!["3".into(), "".into()],
            ]
        );
    }

    #[test]
    fn ragged_rows_are_reported() {
        let mut r = CsvRecords::new(
            b"a,b\n1,2,3\n".to_vec(),
            Box::new(std::io::empty()),
            COMMA,
            1 << 20,
            "t",
        );
        assert!(r.next_record().unwrap());
        assert!(r.ragged(2, b',').is_none());
        assert!(r.next_record().unwrap());
        let bad = r.ragged(2, b',').unwrap();
        assert_eq!(bad.row, 1);
        assert_eq!(bad.raw, "1,2,3");
        assert!(bad.reason.contains("3 fields"));
    }

    #[test]
    fn huge_records_stop_with_a_clear_error() {
        let text = format!("a\n\"{}\n", "x".repeat(300_000));
        let mut r = CsvRecords::new(
            text.into_bytes(),
            Box::new(std::io::empty()),
            COMMA,
            128 * 1024,
            "t",
        );
        assert!(r.next_record().unwrap());
        let err = r.next_record().unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("unclosed quote"), "{err}");
    }

    #[test]
    fn header_rules() {
        let check = |text: &str| {
            let mut r = CsvRecords::new(
                text.as_bytes().to_vec(),
                Box::new(std::io::empty()),
                COMMA,
                1 << 20,
                "t",
            );
            r.next_record().unwrap();
            header_names(&r, "t")
        };
        assert_eq!(check("a, b ,\n").unwrap(), vec!["a", "b", "column_3"]);
        assert!(
            check("1,2.5,3\n")
                .unwrap_err()
                .to_string()
                .contains("looks like data")
        );
        assert!(check("a,b,a\n").unwrap_err().to_string().contains("twice"));
        assert!(
            check("a,_row_number\n")
                .unwrap_err()
                .to_string()
                .contains("reserved")
        );
    }
}
