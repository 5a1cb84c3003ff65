//! One CSV record → one row of the staging table in PostgreSQL's COPY text format, or the reason
//! it cannot be loaded. Pure: no I/O, so every bad-input kind is unit-tested here.

use csv::ByteRecord;

use super::columns::{HeaderMap, InputKind};
use super::copy_text::CopyRow;
use super::fields::{self, Birth};

/// What is wrong with a row (or with one field of it), and where.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub column: Option<&'static str>,
    pub reason: String,
}

/// A row that was staged, possibly with one field set to NULL (and why).
pub type Staged = Option<Problem>;

/// Where the COPY rows go, which decides their first and last columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Into the stage table: the file line first, to resolve duplicate keys by it.
    Stage,
    /// Straight into the (empty) target: the source object's URI last, as `source_object`.
    Target { source: String },
}

/// Appends `record` (at file `line`) to `out` as a COPY text row in `layout`, or returns why it
/// was rejected; on rejection `out` is left as it was.
pub fn stage(
    header: &HeaderMap,
    record: &ByteRecord,
    line: u64,
    layout: &Layout,
    out: &mut Vec<u8>,
) -> Result<Staged, Problem> {
    if record.len() != header.width {
        return Err(Problem {
            column: None,
            reason: format!(
                "expected {} fields as in the header, found {}{}",
                header.width,
                record.len(),
                if record.len() < header.width {
                    " (truncated line?)"
                } else {
                    ""
                }
            ),
        });
    }
    let start = out.len();
    let mut row = CopyRow::new(out);
    if *layout == Layout::Stage {
        row.push_display(line);
    }
    let result = match header.kind {
        InputKind::Users => stage_user(header, record, &mut row),
        InputKind::Enrollments => stage_enrollment(header, record, &mut row),
    };
    match result {
        Ok(staged) => {
            if let Layout::Target { source } = layout {
                row.push_text(Some(source));
            }
            row.end();
            Ok(staged)
        }
        Err(problem) => {
            out.truncate(start);
            Err(problem)
        }
    }
}

/// The fields of `record` in the format's column order, each with its column name.
fn fields<'r>(
    header: &HeaderMap,
    record: &'r ByteRecord,
) -> impl Iterator<Item = (&'static str, &'r [u8])> {
    header
        .columns
        .iter()
        .zip(&header.positions)
        .map(|(column, &position)| (*column, &record[position]))
}

fn at<T>(column: &'static str, result: fields::FieldResult<T>) -> Result<T, Problem> {
    result.map_err(|reason| Problem {
        column: Some(column),
        reason,
    })
}

fn stage_user(
    header: &HeaderMap,
    record: &ByteRecord,
    row: &mut CopyRow,
) -> Result<Staged, Problem> {
    let mut nulled = None;
    for (column, value) in fields(header, record) {
        match column {
            "user_id" => row.push_text(Some(at(column, fields::id(value))?)),
            "birth" => match at(column, fields::birth(value))? {
                Birth::Year(year) => row.push_display(year),
                Birth::Unknown => row.push_null(),
                Birth::Implausible(reason) => {
                    row.push_null();
                    nulled = Some(Problem {
                        column: Some(column),
                        reason,
                    });
                }
            },
            _ => row.push_text(at(column, fields::text(value))?),
        }
    }
    Ok(nulled)
}

fn stage_enrollment(
    header: &HeaderMap,
    record: &ByteRecord,
    row: &mut CopyRow,
) -> Result<Staged, Problem> {
    for (column, value) in fields(header, record) {
        match column {
            "username" | "course_id" => row.push_text(Some(at(column, fields::id(value))?)),
            // Validated numbers are passed on as written: PostgreSQL reads the same text, and
            // formatting them again is the parser's largest cost.
            "truth" => row.push_verbatim(at(column, fields::label(value))?.map(|_| value)),
            "avg_nactions_per_session" => {
                row.push_verbatim(at(column, fields::ratio(value))?.map(|_| value))
            }
            "timestamp" => row.push_option(
                at(column, fields::timestamp(value))?
                    .map(|time| time.format("%Y-%m-%d %H:%M:%S+00")),
            ),
            _ => row.push_verbatim(at(column, fields::count(value))?.map(|_| value)),
        }
    }
    Ok(None)
}

/// The record as a CSV line again (quoted where needed), for the rejects table: invalid UTF-8
/// bytes become `\xNN`, and lines over 64 KiB are cut (the object and line number locate the rest).
pub fn raw_line(record: &ByteRecord) -> String {
    const LIMIT: usize = 64 * 1024;
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    writer
        .write_byte_record(record)
        .expect("writing to a Vec cannot fail");
    let mut bytes = writer.into_inner().expect("writing to a Vec cannot fail");
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    let total = bytes.len();
    bytes.truncate(LIMIT);
    let mut line = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        // PostgreSQL text cannot hold NUL, so it is escaped like an invalid byte.
        line.push_str(&chunk.valid().replace('\0', "\\x00"));
        for byte in chunk.invalid() {
            line.push_str(&format!("\\x{byte:02X}"));
        }
    }
    if total > LIMIT {
        line.push_str(&format!(" … [cut at {LIMIT} of {total} bytes]"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etl::columns::{enrollment_columns, map_header};

    fn header_of(line: &str) -> HeaderMap {
        let fields: Vec<&[u8]> = line.split(',').map(str::as_bytes).collect();
        map_header(&fields).unwrap()
    }

    fn record(line: &str) -> ByteRecord {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(line.as_bytes());
        let mut record = ByteRecord::new();
        reader.read_byte_record(&mut record).unwrap();
        record
    }

    fn stage_line(header: &HeaderMap, line: &str) -> (Result<Staged, Problem>, String) {
        let mut out = Vec::new();
        let result = stage(header, &record(line), 7, &Layout::Stage, &mut out);
        (result, String::from_utf8(out).unwrap())
    }

    fn train_header() -> HeaderMap {
        header_of(&enrollment_columns().join(","))
    }

    fn train_line(username: &str, truth: &str, count: &str, timestamp: &str) -> String {
        format!(
            "{username},course-v1:A+B+C,{truth},{count}{},3,2.5,{timestamp}",
            ",0".repeat(21)
        )
    }

    #[test]
    fn a_user_row_is_staged_with_escapes() {
        let header = header_of("user_id,gender,education,birth");
        let (result, out) = stage_line(&header, "\"u\\1\",female,\"Bachelor's\",1990.0");
        assert_eq!(result, Ok(None));
        assert_eq!(out, "7\tu\\\\1\tfemale\tBachelor's\t1990\n");
    }

    #[test]
    fn the_target_layout_has_no_line_and_ends_with_the_source() {
        let header = header_of("user_id,gender,education,birth");
        let layout = Layout::Target {
            source: "s3://b/u.csv".into(),
        };
        let mut out = Vec::new();
        stage(&header, &record("u1,male,,1990"), 7, &layout, &mut out).unwrap();
        assert_eq!(out, b"u1\tmale\t\\N\t1990\ts3://b/u.csv\n");
    }

    #[test]
    fn an_implausible_birth_year_is_staged_as_null_with_a_reason() {
        let header = header_of("user_id,gender,education,birth");
        let (result, out) = stage_line(&header, "42,,,1850");
        assert_eq!(out, "7\t42\t\\N\t\\N\t\\N\n");
        let problem = result.unwrap().unwrap();
        assert_eq!(problem.column, Some("birth"));
        assert!(problem.reason.contains("1850"));
    }

    #[test]
    fn an_enrollment_row_is_staged_in_table_order() {
        let (result, out) = stage_line(&train_header(), &train_line("u1", "1", "5", "1404345600"));
        assert_eq!(result, Ok(None));
        let expected = format!(
            "7\tu1\tcourse-v1:A+B+C\t1\t5{}\t3\t2.5\t2014-07-03 00:00:00+00\n",
            "\t0".repeat(21)
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn empty_counts_and_label_are_null_not_zero() {
        let line = format!("U_24,mcx-6{}", ",".repeat(26));
        let (result, out) = stage_line(&train_header(), &line);
        assert_eq!(result, Ok(None));
        assert_eq!(out, format!("7\tU_24\tmcx-6{}\n", "\t\\N".repeat(26)));
    }

    #[test]
    fn bad_values_reject_the_row_naming_the_column() {
        let cases = [
            (
                train_line("u", "1", "many", "0"),
                "action_click_about",
                "\"many\"",
            ),
            (
                train_line("u", "1", "-2", "0"),
                "action_click_about",
                "negative count -2",
            ),
            (train_line("u", "yes", "1", "0"), "truth", "\"yes\""),
            (train_line("", "1", "1", "0"), "username", "empty id"),
            (train_line("u", "1", "1", "soon"), "timestamp", "\"soon\""),
        ];
        for (line, column, reason) in cases {
            let (result, out) = stage_line(&train_header(), &line);
            let problem = result.unwrap_err();
            assert_eq!(problem.column, Some(column), "{line}");
            assert!(problem.reason.contains(reason), "{problem:?}");
            assert!(out.is_empty(), "a rejected row leaves nothing staged");
        }
    }

    #[test]
    fn a_short_record_is_rejected_as_truncated() {
        let (result, _) = stage_line(&train_header(), "u1,course,1,0,0");
        assert_eq!(
            result.unwrap_err(),
            Problem {
                column: None,
                reason: "expected 28 fields as in the header, found 5 (truncated line?)".into()
            }
        );
    }

    #[test]
    fn raw_lines_are_requoted_escaped_and_cut() {
        let mut record = ByteRecord::new();
        record.push_field(b"a,b");
        record.push_field(b"line\none");
        record.push_field(b"\xffx\0");
        assert_eq!(raw_line(&record), "\"a,b\",\"line\none\",\\xFFx\\x00");
        let mut huge = ByteRecord::new();
        huge.push_field(&vec![b'z'; 70_000]);
        let line = raw_line(&huge);
        assert!(line.ends_with(" … [cut at 65536 of 70000 bytes]"));
        assert_eq!(
            line.len(),
            65_536 + " … [cut at 65536 of 70000 bytes]".len()
        );
    }
}
