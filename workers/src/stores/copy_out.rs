//! Reading PostgreSQL's `COPY … TO STDOUT` text format: rows streamed without per-row protocol
//! round trips, fields split without allocating, escapes undone only where present.

use std::borrow::Cow;

use anyhow::{Context, bail};
use futures::TryStreamExt;
use sqlx::PgConnection;

/// Runs `statement` (a `COPY (…) TO STDOUT`) and hands every row, without its newline, to `row`.
/// An error names the row's number. Returns the number of rows.
pub async fn rows(
    conn: &mut PgConnection,
    statement: &str,
    mut row: impl FnMut(&str) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let mut pending: Vec<u8> = Vec::new();
    let mut line_number = 0u64;
    let mut stream = conn
        .copy_out_raw(statement)
        .await
        .context("starting COPY … TO STDOUT")?;
    while let Some(chunk) = stream.try_next().await.context("reading the COPY stream")? {
        pending.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|b| *b == b'\n') {
            line_number += 1;
            let line = &pending[start..start + end];
            std::str::from_utf8(line)
                .context("not UTF-8")
                .and_then(&mut row)
                .with_context(|| format!("COPY row {line_number}"))?;
            start += end + 1;
        }
        pending.drain(..start);
    }
    if !pending.is_empty() {
        bail!("the COPY stream ended inside a row");
    }
    Ok(line_number)
}

/// The `N` tab-separated fields of a row, still escaped.
pub fn fields<const N: usize>(line: &str) -> anyhow::Result<[&str; N]> {
    let mut raw = [""; N];
    let mut count = 0;
    for field in line.split('\t') {
        if let Some(slot) = raw.get_mut(count) {
            *slot = field;
        }
        count += 1;
    }
    if count != N {
        bail!("{count} columns, expected {N}");
    }
    Ok(raw)
}

/// A text field: `\N` is NULL; backslash escapes are undone.
pub fn text(raw: &str) -> Option<Cow<'_, str>> {
    if raw == "\\N" {
        return None;
    }
    if !raw.contains('\\') {
        return Some(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('v') => out.push('\u{b}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    Some(Cow::Owned(out))
}

/// A number field: `\N` is `None`.
pub fn number<T: std::str::FromStr>(raw: &str) -> anyhow::Result<Option<T>> {
    match raw {
        "\\N" => Ok(None),
        v => v
            .parse::<T>()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("not a number: {v:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_undo_postgres_escapes() {
        assert_eq!(text("\\N"), None);
        assert_eq!(text("plain").as_deref(), Some("plain"));
        assert_eq!(text("a\\tb\\\\c\\nd").as_deref(), Some("a\tb\\c\nd"));
        assert_eq!(text("课程").as_deref(), Some("课程"));
    }

    #[test]
    fn rows_split_into_exactly_their_fields() {
        assert_eq!(fields::<3>("a\t\\N\t3").unwrap(), ["a", "\\N", "3"]);
        assert!(
            fields::<3>("a\tb")
                .unwrap_err()
                .to_string()
                .contains("2 columns")
        );
        assert!(fields::<2>("a\tb\tc").is_err());
        assert_eq!(number::<f64>("2.5").unwrap(), Some(2.5));
        assert_eq!(number::<i64>("\\N").unwrap(), None);
        assert!(number::<i64>("x").is_err());
    }
}
