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
    dialect: CsvDialect,
    /// Buffer position up to which records go through csv-core (a region with quotes).
    slow_end: usize,
    /// Field spans of the line being split on the fast path (reused).
    spans: Vec<(usize, usize)>,
    /// Delimiter and newline positions of the region being split (reused).
    separators: Vec<u32>,
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
            dialect,
            slow_end: 0,
            spans: Vec::with_capacity(64),
            separators: Vec::new(),
        }
    }

    /// Reads rows into `cols` until `max_rows` rows or `max_bytes` of column data are held, or
    /// the input ends (then returns `false`). Rows with the wrong field count go to `bad`.
    ///
    /// Two paths, same results: a region of complete lines with no quote character (and CR only
    /// before LF) is split with SIMD searches straight into the column buffers; anything else
    /// (quotes, lone CRs, a line longer than the buffer, the last line without a newline) goes
    /// through csv-core record by record.
    pub fn read_rows(
        &mut self,
        cols: &mut StringColumns,
        row_numbers: &mut Vec<i64>,
        max_rows: usize,
        max_bytes: usize,
        bad: &mut dyn FnMut(BadRow) -> Result<()>,
    ) -> Result<bool> {
        let ncols = cols.columns();
        while cols.rows() < max_rows && cols.bytes() < max_bytes {
            if self.pos < self.slow_end {
                if !self.slow_row(cols, row_numbers, ncols, bad)? {
                    return Ok(false);
                }
                continue;
            }
            if self.pos == self.end {
                if self.eof {
                    return Ok(false);
                }
                self.fill()?;
                continue;
            }
            let Some(last_nl) = memchr::memrchr(b'\n', &self.buf[self.pos..self.end]) else {
                // No complete line here: read more if there is room, else let csv-core stream it.
                if !self.eof && self.compact_and_fill()? {
                    continue;
                }
                if !self.slow_row(cols, row_numbers, ncols, bad)? {
                    return Ok(false);
                }
                continue;
            };
            let region_end = self.pos + last_nl + 1;
            if self.fast_eligible(self.pos, region_end) {
                self.fast_rows(
                    region_end,
                    cols,
                    row_numbers,
                    ncols,
                    max_rows,
                    max_bytes,
                    bad,
                )?;
            } else {
                self.slow_end = region_end;
            }
        }
        Ok(true)
    }

    /// Whether `buf[from..to]` (complete lines) can be split without csv-core.
    fn fast_eligible(&self, from: usize, to: usize) -> bool {
        let region = &self.buf[from..to];
        if memchr::memchr(self.dialect.quote, region).is_some() {
            return false;
        }
        memchr::memchr_iter(b'\r', region).all(|i| region.get(i + 1) == Some(&b'\n'))
    }

    /// Splits complete, quote-free lines of `buf[pos..region_end]`, stopping at the limits.
    #[allow(clippy::too_many_arguments)]
    fn fast_rows(
        &mut self,
        region_end: usize,
        cols: &mut StringColumns,
        row_numbers: &mut Vec<i64>,
        ncols: usize,
        max_rows: usize,
        max_bytes: usize,
        bad: &mut dyn FnMut(BadRow) -> Result<()>,
    ) -> Result<()> {
        let delimiter = self.dialect.delimiter;
        let start = self.pos;
        let mut field_start = start;
        let mut line_start = start;
        let mut checked = 0usize;
        self.spans.clear();
        find_separators(
            &self.buf[start..region_end],
            delimiter,
            b'\n',
            &mut self.separators,
        );
        for k in 0..self.separators.len() {
            let at = start + self.separators[k] as usize;
            if self.buf[at] == delimiter {
                self.spans.push((field_start, at));
                field_start = at + 1;
                continue;
            }
            let mut end = at;
            if end > field_start && self.buf[end - 1] == b'\r' {
                end -= 1;
            }
            self.spans.push((field_start, end));
            let empty_line = self.spans.len() == 1 && end == line_start;
            if !empty_line {
                self.records += 1;
                if self.spans.len() == ncols {
                    for (c, &(a, b)) in self.spans.iter().enumerate() {
                        cols.push(c, &self.buf[a..b]);
                    }
                    cols.end_row();
                    row_numbers.push(self.row() as i64);
                } else {
                    let raw = &self.buf[line_start..end.min(line_start + 1024)];
                    bad(BadRow {
                        row: self.row(),
                        column: None,
                        reason: format!("has {} fields, the header has {ncols}", self.spans.len()),
                        raw: String::from_utf8_lossy(raw).into_owned(),
                    })?;
                }
            }
            self.spans.clear();
            field_start = at + 1;
            line_start = at + 1;
            self.pos = at + 1;
            checked += 1;
            if cols.rows() >= max_rows || (checked.is_multiple_of(256) && cols.bytes() >= max_bytes)
            {
                break;
            }
        }
        Ok(())
    }

    /// One record through csv-core; `false` at the end of the input.
    fn slow_row(
        &mut self,
        cols: &mut StringColumns,
        row_numbers: &mut Vec<i64>,
        ncols: usize,
        bad: &mut dyn FnMut(BadRow) -> Result<()>,
    ) -> Result<bool> {
        if !self.next_record()? {
            return Ok(false);
        }
        if let Some(b) = self.ragged(ncols, self.dialect.delimiter) {
            bad(b)?;
        } else {
            self.append_to(cols);
            cols.end_row();
            row_numbers.push(self.row() as i64);
        }
        Ok(true)
    }

    /// Reads into the whole buffer (it is empty).
    fn fill(&mut self) -> Result<()> {
        self.pos = 0;
        self.slow_end = 0;
        self.end = self
            .reader
            .read(&mut self.buf)
            .map_err(|e| classify_read_error(e, &self.url, "the file"))?;
        self.eof = self.end == 0;
        Ok(())
    }

    /// Moves the unread tail to the front and reads more after it. `false` when the buffer is
    /// full (a line longer than the buffer) or the input has ended.
    fn compact_and_fill(&mut self) -> Result<bool> {
        if self.pos == 0 && self.end == self.buf.len() {
            return Ok(false);
        }
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        self.slow_end = 0;
        let n = self
            .reader
            .read(&mut self.buf[self.end..])
            .map_err(|e| classify_read_error(e, &self.url, "the file"))?;
        self.end += n;
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }

    /// Reads the next record; `false` at the end of the input.
    pub fn next_record(&mut self) -> Result<bool> {
        let mut out = 0;
        let mut nends = 0;
        loop {
            if self.pos == self.end && !self.eof {
                self.fill()?;
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

    pub fn delimiter(&self) -> u8 {
        self.dialect.delimiter
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

/// Positions of bytes equal to `a` or `b` in `hay`, in order (SWAR, eight bytes at a time:
/// cheaper than a SIMD search restarted after every short field).
fn find_separators(hay: &[u8], a: u8, b: u8, out: &mut Vec<u32>) {
    const LO: u64 = 0x0101_0101_0101_0101;
    const M7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // High bit of each byte set exactly where that byte of `v` is zero (no carries cross bytes).
    fn zero_bytes(v: u64) -> u64 {
        !(((v & M7) + M7) | v | M7)
    }
    out.clear();
    let (ma, mb) = (LO * u64::from(a), LO * u64::from(b));
    let chunks = hay.chunks_exact(8);
    let tail = chunks.remainder();
    for (k, chunk) in chunks.enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let mut m = zero_bytes(x ^ ma) | zero_bytes(x ^ mb);
        while m != 0 {
            out.push((k * 8) as u32 + m.trailing_zeros() / 8);
            m &= m - 1;
        }
    }
    let base = hay.len() - tail.len();
    for (i, &c) in tail.iter().enumerate() {
        if c == a || c == b {
            out.push((base + i) as u32);
        }
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

    /// A reader over `text` whose buffer holds only `buffer` bytes (to exercise refills).
    fn small(text: &[u8], buffer: usize, dialect: CsvDialect) -> CsvRecords {
        let mut r = CsvRecords::new(
            Vec::new(),
            Box::new(std::io::Cursor::new(text.to_vec())),
            dialect,
            1 << 20,
            "t",
        );
        r.buf = vec![0; buffer];
        r
    }

    type Rows = (Vec<Vec<String>>, Vec<i64>, Vec<(u64, String)>);

    /// Reference: every record through csv-core alone.
    fn reference(text: &[u8], dialect: CsvDialect) -> Rows {
        let mut r = small(text, 4096, dialect);
        r.next_record().unwrap();
        let ncols = r.len();
        let (mut rows, mut numbers, mut bad) = (Vec::new(), Vec::new(), Vec::new());
        while r.next_record().unwrap() {
            match r.ragged(ncols, dialect.delimiter) {
                Some(b) => bad.push((b.row, b.raw)),
                None => {
                    rows.push(
                        (0..ncols)
                            .map(|i| String::from_utf8(r.field(i).to_vec()).unwrap())
                            .collect(),
                    );
                    numbers.push(r.row() as i64);
                }
            }
        }
        (rows, numbers, bad)
    }

    /// The hybrid path, in chunks of `chunk` rows.
    fn hybrid(text: &[u8], dialect: CsvDialect, buffer: usize, chunk: usize) -> Rows {
        let mut r = small(text, buffer, dialect);
        r.next_record().unwrap();
        let ncols = r.len();
        let (mut rows, mut numbers, mut bad) = (Vec::new(), Vec::new(), Vec::new());
        loop {
            let mut cols = StringColumns::new(ncols, 8);
            let mut nums = Vec::new();
            let more = r
                .read_rows(&mut cols, &mut nums, chunk, 1 << 30, &mut |b| {
                    bad.push((b.row, b.raw));
                    Ok(())
                })
                .unwrap();
            let names: Vec<String> = (0..ncols).map(|i| format!("c{i}")).collect();
            let n = nums.len();
            let arrays = cols.finish(&names, &nums, "t").unwrap();
            for i in 0..n {
                rows.push(
                    arrays
                        .iter()
                        .map(|a| {
                            a.as_any()
                                .downcast_ref::<arrow_array::StringArray>()
                                .unwrap()
                                .value(i)
                                .to_string()
                        })
                        .collect(),
                );
            }
            numbers.extend(nums);
            if !more {
                break;
            }
        }
        (rows, numbers, bad)
    }

    #[test]
    fn the_fast_path_agrees_with_csv_core() {
        // Seeded random CSVs mixing plain lines, quoted fields (delimiters, quotes, newlines
        // inside), CRLF and lone CR, empty lines, ragged rows and a last line without newline.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for case in 0..300 {
            let delimiter = [b',', b';', b'\t'][case % 3];
            let dialect = CsvDialect {
                delimiter,
                quote: b'"',
            };
            let ncols = 1 + next(5) as usize;
            let mut text = Vec::new();
            for c in 0..ncols {
                if c > 0 {
                    text.push(delimiter);
                }
                text.extend_from_slice(format!("h{c}").as_bytes());
            }
            text.push(b'\n');
            let lines = next(60);
            for _ in 0..lines {
                let fields = match next(20) {
                    0 => ncols + 1,
                    1 => ncols.saturating_sub(1).max(1),
                    _ => ncols,
                };
                if next(25) == 0 {
                    text.extend_from_slice(b"\n");
                    continue;
                }
                for f in 0..fields {
                    if f > 0 {
                        text.push(delimiter);
                    }
                    match next(12) {
                        0 => text.extend_from_slice(b"\"a,b;c\tq\"\"x\ny\""),
                        1 => text.extend_from_slice(b"\"\""),
                        2 => {}
                        _ => {
                            for _ in 0..next(9) {
                                text.push(b"abcxyz0123 -_."[next(14) as usize]);
                            }
                        }
                    }
                }
                text.extend_from_slice(match next(10) {
                    0 => b"\r\n",
                    1 => b"\r",
                    _ => b"\n",
                });
            }
            if next(3) == 0 {
                text.extend_from_slice(b"tail");
            }
            let want = reference(&text, dialect);
            for (buffer, chunk) in [(64, 3), (4096, 7), (1 << 20, 1000)] {
                let got = hybrid(&text, dialect, buffer, chunk);
                assert_eq!(
                    got,
                    want,
                    "case {case}, buffer {buffer}: {:?}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
    }

    #[test]
    fn separators_are_found_exactly() {
        let mut state = 7u64;
        for len in 0..200 {
            let hay: Vec<u8> = (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    [b',', b'\n', b'a', 0, 0xff, b'\t', 0x80, 0x2c ^ 0x80]
                        [(state >> 60) as usize % 8]
                })
                .collect();
            let mut got = Vec::new();
            find_separators(&hay, b',', b'\n', &mut got);
            let want: Vec<u32> = memchr::memchr2_iter(b',', b'\n', &hay)
                .map(|i| i as u32)
                .collect();
            assert_eq!(got, want, "{hay:?}");
        }
    }

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
