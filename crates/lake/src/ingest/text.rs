//! From raw source bytes to a UTF-8 text stream: decompression (gzip, zstd), character encoding,
//! byte-order marks. The result starts with a sample (the first block of text) that format
//! readers use to sniff dialects and columns before streaming the rest.

use std::io::{self, Read};

use encoding_rs::{DecoderResult, Encoding};

use crate::error::{Error, Result};
use crate::source::classify_read_error;

/// How much text the sniffers see.
pub const SAMPLE_BYTES: usize = 256 * 1024;

/// Compression of a source, from its magic bytes (checked against its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// What a file name promises: `.gz`/`.gzip` → gzip, `.zst` → zstd.
    pub fn from_name(name: &str) -> Compression {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".gz") || lower.ends_with(".gzip") {
            Compression::Gzip
        } else if lower.ends_with(".zst") || lower.ends_with(".zstd") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    fn from_magic(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// The name without its compression suffix (`houses.csv.gz` → `houses.csv`).
pub fn strip_compression_suffix(name: &str) -> &str {
    let lower = name.to_ascii_lowercase();
    for suffix in [".gz", ".gzip", ".zst", ".zstd"] {
        if lower.ends_with(suffix) {
            return &name[..name.len() - suffix.len()];
        }
    }
    name
}

/// A UTF-8 text stream with its first block already read.
pub struct TextStream {
    /// The first bytes of text (BOM removed), up to [`SAMPLE_BYTES`].
    pub sample: Vec<u8>,
    /// The rest of the text, after `sample`.
    pub rest: Box<dyn Read + Send>,
    pub compression: Compression,
    /// WHATWG name of the source encoding (`UTF-8`, `windows-1252`, `UTF-16LE`...).
    pub encoding: &'static str,
}

/// Opens `raw` (the source's bytes) as text. `encoding` is the user's `--encoding`, if any.
pub fn open_text(
    raw: Box<dyn Read + Send>,
    name: &str,
    url: &str,
    encoding: Option<&str>,
) -> Result<TextStream> {
    let mut raw = io::BufReader::with_capacity(1 << 20, raw);
    let head = peek(&mut raw, 4).map_err(|e| classify_read_error(e, url, "the file"))?;
    if head.is_empty() {
        return Err(Error::bad_source(
            url,
            Default::default(),
            "is empty (0 bytes); nothing to import",
        ));
    }
    let named = Compression::from_name(name);
    let actual = Compression::from_magic(&head);
    if named != Compression::None && actual != named {
        return Err(Error::bad_source(
            url,
            Default::default(),
            format!(
                "is named .{} but its bytes are not {} data; re-upload the file or rename it",
                name.rsplit('.').next().unwrap_or(""),
                named.as_str()
            ),
        ));
    }
    let decompressed: Box<dyn Read + Send> = match actual {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| {
                Error::bad_source(
                    url,
                    Default::default(),
                    format!("is not readable zstd data: {e}"),
                )
            })?)
        }
    };
    let what = match actual {
        Compression::None => "the file",
        Compression::Gzip => "the gzip stream",
        Compression::Zstd => "the zstd stream",
    };

    // Decide the encoding: --encoding wins; else a UTF-16 byte-order mark; else UTF-8.
    let mut decompressed = io::BufReader::with_capacity(256 * 1024, decompressed);
    let head = peek(&mut decompressed, 3).map_err(|e| classify_read_error(e, url, what))?;
    if head.is_empty() {
        return Err(Error::bad_source(
            url,
            Default::default(),
            "holds no data after decompression; nothing to import",
        ));
    }
    let chosen = match encoding {
        Some(label) => Encoding::for_label(label.trim().as_bytes()).ok_or_else(|| {
            Error::bad_source(
                url,
                Default::default(),
                format!("--encoding '{label}' is not a known encoding; use e.g. utf-8, windows-1252, latin1, utf-16le"),
            )
        })?,
        None => match Encoding::for_bom(&head) {
            Some((enc, _)) => enc,
            None => encoding_rs::UTF_8,
        },
    };
    let mut text: Box<dyn Read + Send> = if chosen == encoding_rs::UTF_8 {
        Box::new(decompressed)
    } else {
        Box::new(Transcoder::new(decompressed, chosen))
    };

    let mut sample = Vec::with_capacity(SAMPLE_BYTES);
    (&mut text)
        .take(SAMPLE_BYTES as u64)
        .read_to_end(&mut sample)
        .map_err(|e| classify_read_error(e, url, what))?;
    if sample.starts_with(b"\xEF\xBB\xBF") {
        sample.drain(..3);
    }
    Ok(TextStream {
        sample,
        rest: Box::new(ErrorContext { inner: text, what }),
        compression: actual,
        encoding: chosen.name(),
    })
}

/// Reads up to `n` bytes without consuming them.
fn peek<R: io::BufRead>(r: &mut R, n: usize) -> io::Result<Vec<u8>> {
    let buf = r.fill_buf()?;
    Ok(buf[..buf.len().min(n)].to_vec())
}

/// Names which layer failed in decode errors ("the gzip stream is not readable: ...").
struct ErrorContext {
    inner: Box<dyn Read + Send>,
    what: &'static str,
}

impl Read for ErrorContext {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if e.get_ref()
                .is_some_and(|i| i.is::<crate::source::SourceFault>())
            {
                e
            } else {
                io::Error::new(e.kind(), format!("{} is not readable: {e}", self.what))
            }
        })
    }
}

/// Streams another encoding into UTF-8; malformed input is an error, never replaced.
struct Transcoder<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    consumed: u64,
    pending: Vec<u8>,
    pending_len: usize,
    pending_pos: usize,
}

impl<R: Read> Transcoder<R> {
    fn new(inner: R, encoding: &'static Encoding) -> Self {
        Transcoder {
            inner,
            decoder: encoding.new_decoder_with_bom_removal(),
            input: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            eof: false,
            consumed: 0,
            pending: vec![0; 256 * 1024],
            pending_len: 0,
            pending_pos: 0,
        }
    }
}

impl<R: Read> Read for Transcoder<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pending_pos < self.pending_len {
                let n = out.len().min(self.pending_len - self.pending_pos);
                out[..n].copy_from_slice(&self.pending[self.pending_pos..self.pending_pos + n]);
                self.pending_pos += n;
                return Ok(n);
            }
            if self.eof && self.start == self.end {
                return Ok(0);
            }
            if self.start == self.end && !self.eof {
                self.start = 0;
                self.end = self.inner.read(&mut self.input)?;
                self.eof = self.end == 0;
            }
            self.pending_pos = 0;
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &self.input[self.start..self.end],
                &mut self.pending,
                self.eof,
            );
            self.start += read;
            self.consumed += read as u64;
            self.pending_len = written;
            match result {
                DecoderResult::InputEmpty => {
                    if self.eof {
                        self.start = self.end;
                    }
                }
                DecoderResult::OutputFull => {}
                DecoderResult::Malformed(_, _) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "bytes near offset {} are not valid in the chosen encoding; check --encoding",
                            self.consumed
                        ),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn open(bytes: Vec<u8>, name: &str, enc: Option<&str>) -> Result<(String, TextStream)> {
        let mut t = open_text(Box::new(io::Cursor::new(bytes)), name, "file:///t", enc)?;
        let mut all = t.sample.clone();
        t.rest.read_to_end(&mut all).unwrap();
        Ok((String::from_utf8(all).unwrap(), t))
    }

    #[test]
    fn plain_utf8_with_bom() {
        let (s, t) = open(b"\xEF\xBB\xBFa,b\n1,2\n".to_vec(), "x.csv", None).unwrap();
        assert_eq!(s, "a,b\n1,2\n");
        assert_eq!(t.compression, Compression::None);
    }

    #[test]
    fn gzip_by_magic_and_name() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"a,b\n1,2\n").unwrap();
        let bytes = gz.finish().unwrap();
        let (s, t) = open(bytes.clone(), "x.csv.gz", None).unwrap();
        assert_eq!(s, "a,b\n1,2\n");
        assert_eq!(t.compression, Compression::Gzip);
        // Also when the name does not say so.
        assert_eq!(open(bytes, "x.csv", None).unwrap().0, "a,b\n1,2\n");
    }

    #[test]
    fn gz_name_that_is_not_gzip() {
        let err = open(b"a,b\n".to_vec(), "x.csv.gz", None).err().unwrap();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("not gzip data"), "{err}");
    }

    #[test]
    fn truncated_gzip_is_bad_input() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&b"a,b\n1,2\n".repeat(1000)).unwrap();
        let mut bytes = gz.finish().unwrap();
        bytes.truncate(bytes.len() / 2);
        let res = open_text(
            Box::new(io::Cursor::new(bytes)),
            "x.csv.gz",
            "file:///t",
            None,
        );
        let err = match res {
            Err(e) => e,
            Ok(mut t) => {
                let mut v = Vec::new();
                let e = t.rest.read_to_end(&mut v).unwrap_err();
                classify_read_error(e, "file:///t", "x")
            }
        };
        assert_eq!(err.exit_code(), 2, "{err}");
    }

    #[test]
    fn latin1_is_transcoded() {
        let (s, t) = open(b"name\nJos\xe9\n".to_vec(), "x.csv", Some("latin1")).unwrap();
        assert_eq!(s, "name\nJosé\n");
        assert_eq!(t.encoding, "windows-1252");
    }

    #[test]
    fn utf16_bom_is_detected() {
        let mut bytes = vec![0xFF, 0xFE];
        for c in "a,b\n1,2\n".encode_utf16() {
            bytes.extend_from_slice(&c.to_le_bytes());
        }
        let (s, _) = open(bytes, "x.csv", None).unwrap();
        assert_eq!(s, "a,b\n1,2\n");
    }

    #[test]
    fn empty_and_unknown_encoding() {
        assert!(
            open(vec![], "x.csv", None)
                .err()
                .unwrap()
                .to_string()
                .contains("is empty")
        );
        let err = open(b"a\n".to_vec(), "x.csv", Some("klingon"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("not a known encoding"), "{err}");
    }
}
