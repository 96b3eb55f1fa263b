//! Column buffers that parsers fill, and the chunks they hand to the writer.

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, StringArray};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};

use crate::error::{Error, Position, Result};

/// A row that could not be imported, with why. Goes to quarantine.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRow {
    /// 1-based data row.
    pub row: u64,
    pub column: Option<String>,
    pub reason: String,
    /// The row as it arrived (cut at 1 KiB).
    pub raw: String,
}

/// Rows parsed from the source, ready for the writer: the source's columns plus each row's
/// 1-based row number (rows that went to quarantine leave gaps).
pub struct Chunk {
    pub columns: Vec<ArrayRef>,
    pub row_numbers: Int64Array,
}

impl Chunk {
    /// `rows` rows numbered on from `*next_row`, which moves past them (a source without
    /// quarantine: PostgreSQL and Snowflake queries, Parquet files).
    pub fn consecutive(columns: Vec<ArrayRef>, rows: usize, next_row: &mut i64) -> Chunk {
        let first = *next_row;
        *next_row += rows as i64;
        Chunk {
            columns,
            row_numbers: Int64Array::from_iter_values(first..*next_row),
        }
    }

    pub fn rows(&self) -> usize {
        self.row_numbers.len()
    }
}

/// Non-null UTF-8 columns built from raw bytes, validated when finished.
pub struct StringColumns {
    values: Vec<Vec<u8>>,
    offsets: Vec<Vec<i32>>,
    rows: usize,
}

impl StringColumns {
    pub fn new(ncols: usize, rows_hint: usize) -> StringColumns {
        StringColumns::with_value_capacity(&vec![rows_hint * 8; ncols], rows_hint)
    }

    /// Columns whose value buffers start with the given capacities (e.g. the last chunk's sizes),
    /// so filling them does not reallocate.
    pub fn with_value_capacity(bytes: &[usize], rows_hint: usize) -> StringColumns {
        let ncols = bytes.len();
        StringColumns {
            values: bytes.iter().map(|&b| Vec::with_capacity(b)).collect(),
            offsets: (0..ncols)
                .map(|_| {
                    let mut v = Vec::with_capacity(rows_hint + 1);
                    v.push(0);
                    v
                })
                .collect(),
            rows: 0,
        }
    }

    #[inline]
    pub fn push(&mut self, col: usize, value: &[u8]) {
        let values = &mut self.values[col];
        values.extend_from_slice(value);
        self.offsets[col].push(values.len() as i32);
    }

    /// Marks one more complete row (every column pushed once).
    #[inline]
    pub fn end_row(&mut self) {
        self.rows += 1;
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn columns(&self) -> usize {
        self.values.len()
    }

    /// Bytes held (to cut batches by size).
    pub fn bytes(&self) -> usize {
        self.values.iter().map(Vec::len).sum()
    }

    /// Bytes held per column.
    pub fn column_bytes(&self) -> Vec<usize> {
        self.values.iter().map(Vec::len).collect()
    }

    /// Turns the buffers into Arrow arrays. A value that is not UTF-8 is an error naming its row
    /// (`row_numbers[i]` is the data row of batch row `i`) and column.
    pub fn finish(self, names: &[String], row_numbers: &[i64], url: &str) -> Result<Vec<ArrayRef>> {
        let mut out = Vec::with_capacity(self.values.len());
        for (col, (values, offsets)) in self.values.into_iter().zip(self.offsets).enumerate() {
            let values = Buffer::from_vec(values);
            let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
            // try_new validates UTF-8 once; only on failure do we look for the culprit.
            match StringArray::try_new(offsets.clone(), values.clone(), None) {
                Ok(array) => out.push(Arc::new(array) as ArrayRef),
                Err(e) => {
                    let Err(bad) = std::str::from_utf8(values.as_slice()) else {
                        return Err(Error::internal("build column", e));
                    };
                    let at = bad.valid_up_to() as i32;
                    let row_in_batch = offsets.partition_point(|&o| o <= at).saturating_sub(1);
                    return Err(Error::bad_source(
                        url,
                        Position {
                            row: row_numbers.get(row_in_batch).map(|&r| r as u64),
                            column: names.get(col).cloned(),
                        },
                        "a value is not valid UTF-8; pass --encoding with the file's encoding (e.g. windows-1252)",
                    ));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::Array;

    use super::*;

    #[test]
    fn builds_string_arrays() {
        let mut c = StringColumns::new(2, 4);
        c.push(0, b"a");
        c.push(1, b"");
        c.end_row();
        c.push(0, "é".as_bytes());
        c.push(1, b"xyz");
        c.end_row();
        let cols = c.finish(&["x".into(), "y".into()], &[1, 2], "t").unwrap();
        let x = cols[0].as_any().downcast_ref::<StringArray>().unwrap();
        let y = cols[1].as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!((x.value(0), x.value(1)), ("a", "é"));
        assert_eq!((y.value(0), y.value(1)), ("", "xyz"));
        assert_eq!(x.null_count(), 0);
    }

    #[test]
    fn invalid_utf8_names_row_and_column() {
        let mut c = StringColumns::new(2, 4);
        for (a, b) in [
            (&b"ok"[..], &b"ok"[..]),
            (b"ok", b"ok"),
            (b"ok", b"Jos\xe9"),
        ] {
            c.push(0, a);
            c.push(1, b);
            c.end_row();
        }
        let err = c
            .finish(&["x".into(), "name".into()], &[1, 2, 5], "file:///t.csv")
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("row 5, column 'name'"), "{msg}");
        assert!(msg.contains("--encoding"), "{msg}");
        assert_eq!(err.exit_code(), 2);
    }
}
