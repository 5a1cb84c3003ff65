//! Reads one object as a stream of CSV records and turns it into staging rows (sent on in chunks
//! while reading continues) and rejects. Runs on a blocking thread: csv is a synchronous parser.

use std::collections::VecDeque;
use std::io::Read;
use std::time::{Duration, Instant};

use csv::ByteRecord;
use tokio::sync::{mpsc, oneshot};

use super::columns::{HeaderError, HeaderMap, map_header};
use super::rows::{self, Layout, Problem};

/// Rows are sent to COPY in chunks of about this size.
const CHUNK_BYTES: usize = 1 << 20;
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// What the parser hands to the database side, in order: the header once, then row chunks.
pub enum Staging {
    Header(HeaderMap),
    Rows(Vec<u8>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// The row was not loaded.
    RowRejected,
    /// The row was loaded with the named field set to NULL.
    FieldNulled,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::RowRejected => "row_rejected",
            Disposition::FieldNulled => "field_nulled",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Reject {
    pub line: u64,
    pub disposition: Disposition,
    pub problem: Problem,
    pub raw_line: String,
}

#[derive(Debug, Default)]
pub struct ParseReport {
    pub rows_read: u64,
    pub rows_staged: u64,
    pub rows_rejected: u64,
    pub rejects: Vec<Reject>,
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("reading line {line}: {source}")]
    Read { line: u64, source: csv::Error },
    #[error("the database side stopped taking rows")]
    Closed,
}

/// Counts the line breaks the CSV reader has been given, to number records by the line they start
/// on. (csv's own record positions lag behind CRLF terminators and skipped blank lines.)
struct LineCounter<R> {
    inner: R,
    offset: u64,
    /// Offsets of `\n` bytes read but not yet counted by [`Self::newlines_before`].
    pending: VecDeque<u64>,
    counted: u64,
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        let start = self.offset;
        self.pending.extend(
            buf[..read]
                .iter()
                .enumerate()
                .filter(|(_, byte)| **byte == b'\n')
                .map(|(index, _)| start + index as u64),
        );
        self.offset += read as u64;
        Ok(read)
    }
}

impl<R> LineCounter<R> {
    /// Line breaks before byte `offset`; offsets must not decrease between calls.
    fn newlines_before(&mut self, offset: u64) -> u64 {
        while self.pending.front().is_some_and(|&at| at < offset) {
            self.pending.pop_front();
            self.counted += 1;
        }
        self.counted
    }
}

/// The 1-based line on which the record just read starts: the line of its last byte (just before
/// its terminator, or the end of input) less the line breaks inside its quoted fields.
fn start_line<R: Read>(reader: &mut csv::Reader<LineCounter<R>>, record: &ByteRecord) -> u64 {
    let end = reader.position().byte();
    let last_line = 1 + reader.get_mut().newlines_before(end.saturating_sub(1));
    let inside: usize = record
        .iter()
        .map(|field| field.iter().filter(|&&byte| byte == b'\n').count())
        .sum();
    last_line - inside as u64
}

/// Parses `input` (the object `name`), sending staging data to `staging` as it goes. After the
/// header it waits for the database side to choose the rows' `layout` (which depends on the kind).
pub fn parse(
    name: &str,
    input: impl Read,
    staging: mpsc::Sender<Staging>,
    layout: oneshot::Receiver<Layout>,
) -> Result<ParseReport, ParseError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(LineCounter {
            inner: input,
            offset: 0,
            pending: VecDeque::new(),
            counted: 0,
        });
    let mut record = ByteRecord::new();
    let read = |reader: &mut csv::Reader<_>, record: &mut ByteRecord| {
        let line = reader.position().line();
        reader
            .read_byte_record(record)
            .map_err(|source| ParseError::Read { line, source })
    };

    if !read(&mut reader, &mut record)? {
        return Err(HeaderError::Empty.into());
    }
    let fields: Vec<&[u8]> = record.iter().collect();
    let header = map_header(&fields)?;
    if !header.extra.is_empty() {
        tracing::warn!(object = name, columns = ?header.extra, "ignoring columns that are not part of the {} format", header.kind);
    }
    staging
        .blocking_send(Staging::Header(header.clone()))
        .map_err(|_| ParseError::Closed)?;
    let layout = layout.blocking_recv().map_err(|_| ParseError::Closed)?;

    let mut report = ParseReport::default();
    let mut chunk = Vec::with_capacity(CHUNK_BYTES + 4096);
    let started = Instant::now();
    let mut last_progress = started;
    while read(&mut reader, &mut record)? {
        let line = start_line(&mut reader, &record);
        // A blank line is no record; csv skips it, so anything here has at least one field.
        report.rows_read += 1;
        match rows::stage(&header, &record, line, &layout, &mut chunk) {
            Ok(nulled) => {
                report.rows_staged += 1;
                if let Some(problem) = nulled {
                    report.rejects.push(Reject {
                        line,
                        disposition: Disposition::FieldNulled,
                        problem,
                        raw_line: rows::raw_line(&record),
                    });
                }
            }
            Err(problem) => {
                report.rows_rejected += 1;
                report.rejects.push(Reject {
                    line,
                    disposition: Disposition::RowRejected,
                    problem,
                    raw_line: rows::raw_line(&record),
                });
            }
        }
        if chunk.len() >= CHUNK_BYTES {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_BYTES + 4096));
            staging
                .blocking_send(Staging::Rows(full))
                .map_err(|_| ParseError::Closed)?;
            if last_progress.elapsed() >= PROGRESS_EVERY {
                last_progress = Instant::now();
                let rate = report.rows_read as f64 / started.elapsed().as_secs_f64();
                tracing::info!(
                    object = name,
                    rows = report.rows_read,
                    rows_per_s = rate as u64,
                    "loading"
                );
            }
        }
    }
    if !chunk.is_empty() {
        staging
            .blocking_send(Staging::Rows(chunk))
            .map_err(|_| ParseError::Closed)?;
    }
    if report.rows_read == 0 {
        tracing::warn!(object = name, "the object has a header but no rows");
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(input: &[u8]) -> (Result<ParseReport, ParseError>, Vec<u8>) {
        let (sender, mut receiver) = mpsc::channel(1024);
        let (choose, layout) = oneshot::channel();
        choose.send(Layout::Stage).unwrap();
        let result = parse("test.csv", input, sender, layout);
        let mut staged = Vec::new();
        while let Ok(message) = receiver.try_recv() {
            if let Staging::Rows(rows) = message {
                staged.extend(rows);
            }
        }
        (result, staged)
    }

    #[test]
    fn bom_crlf_and_quoted_newlines_are_read_with_true_line_numbers() {
        let input =
            "\u{feff}user_id,gender,education,birth\r\n\"a\r\nb\",male,,1990\r\nc,,\"x, y\",\r\n";
        let (result, staged) = parse_text(input.as_bytes());
        let report = result.unwrap();
        assert_eq!((report.rows_read, report.rows_staged), (2, 2));
        assert_eq!(
            String::from_utf8(staged).unwrap(),
            "2\ta\\r\\nb\tmale\t\\N\t1990\n4\tc\t\\N\tx, y\t\\N\n"
        );
    }

    #[test]
    fn rejects_keep_line_column_reason_and_raw_line() {
        let input = b"user_id,gender,education,birth\nok,,,\n,,,1990\nbad\xff,,,\n";
        let (result, staged) = parse_text(input);
        let report = result.unwrap();
        assert_eq!(
            (report.rows_read, report.rows_staged, report.rows_rejected),
            (3, 1, 2)
        );
        assert_eq!(String::from_utf8(staged).unwrap(), "2\tok\t\\N\t\\N\t\\N\n");
        assert_eq!(report.rejects[0].line, 3);
        assert_eq!(report.rejects[0].problem.column, Some("user_id"));
        assert_eq!(report.rejects[0].raw_line, ",,,1990");
        assert_eq!(report.rejects[1].line, 4);
        assert_eq!(report.rejects[1].raw_line, "bad\\xFF,,,");
        assert_eq!(report.rejects[1].problem.reason, "not valid UTF-8 (byte 3)");
    }

    #[test]
    fn line_numbers_survive_blank_lines_and_crlf() {
        for input in [
            &b"user_id,gender,education,birth\n\n\nu,,,\n"[..],
            b"user_id,gender,education,birth\r\n\r\n\r\nu,,,\r\n",
            b"user_id,gender,education,birth\r\n\r\n\r\nu,,,",
        ] {
            let (result, staged) = parse_text(input);
            assert_eq!(result.unwrap().rows_staged, 1);
            assert!(
                staged.starts_with(b"4\t"),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn an_empty_object_has_no_header() {
        let (result, _) = parse_text(b"");
        assert!(matches!(
            result,
            Err(ParseError::Header(HeaderError::Empty))
        ));
    }

    #[test]
    fn a_header_only_object_has_zero_rows() {
        let (result, staged) = parse_text(b"user_id,gender,education,birth\n");
        assert_eq!(result.unwrap().rows_read, 0);
        assert!(staged.is_empty());
    }

    #[test]
    fn a_truncated_last_line_is_rejected() {
        let (result, _) = parse_text(b"user_id,gender,education,birth\nu1,male,,1990\nu2,fem");
        let report = result.unwrap();
        assert_eq!(report.rows_rejected, 1);
        assert_eq!(report.rejects[0].line, 3);
        assert!(report.rejects[0].problem.reason.contains("truncated"));
    }
}
