//! The factors of a version in PostgreSQL (`als_user_factors`, `als_course_factors`), written
//! with `COPY` inside the caller's transaction, which also records the version: readers see all
//! of a version or nothing.

use anyhow::Context;
use sqlx::PgConnection;

use super::solver::Factors;
use crate::etl::copy_text::CopyRow;

/// One side's rows: ids with their factors and, for courses, enrollment counts.
pub struct Side<'a> {
    pub ids: &'a [String],
    pub factors: &'a Factors,
    pub enrollments: Option<&'a [u64]>,
}

/// Rows sent per COPY message.
const SEND_BYTES: usize = 4 << 20;

/// Deletes the rows of `model`'s versions other than `version` and the active one, then writes
/// `version`'s rows.
pub async fn replace(
    tx: &mut PgConnection,
    model: &str,
    version: &str,
    users: Side<'_>,
    courses: Side<'_>,
) -> anyhow::Result<()> {
    for table in ["als_user_factors", "als_course_factors"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} t WHERE t.model = $1 AND t.version <> $2
               AND NOT EXISTS (SELECT 1 FROM model_registry r
                               WHERE r.model = t.model AND r.version = t.version AND r.is_active)"
        )))
        .bind(model)
        .bind(version)
        .execute(&mut *tx)
        .await
        .with_context(|| format!("deleting older versions of {model} from {table}"))?;
    }
    copy_side(
        tx,
        "als_user_factors (model, version, user_id, factors)",
        model,
        version,
        &users,
    )
    .await?;
    copy_side(
        tx,
        "als_course_factors (model, version, course_id, factors, enrollments)",
        model,
        version,
        &courses,
    )
    .await
}

async fn copy_side(
    tx: &mut PgConnection,
    target: &str,
    model: &str,
    version: &str,
    side: &Side<'_>,
) -> anyhow::Result<()> {
    let context = || format!("writing version {version} of {model} into {target}");
    let mut copy = tx
        .copy_in_raw(&format!("COPY {target} FROM STDIN"))
        .await
        .with_context(context)?;
    let mut buffer = Vec::with_capacity(SEND_BYTES + 4096);
    for (row, id) in side.ids.iter().enumerate() {
        row_text(
            &mut buffer,
            model,
            version,
            id,
            side.factors.row(row),
            side.enrollments.map(|e| e[row]),
        );
        if buffer.len() >= SEND_BYTES {
            copy.send(std::mem::take(&mut buffer))
                .await
                .with_context(context)?;
        }
    }
    if !buffer.is_empty() {
        copy.send(buffer).await.with_context(context)?;
    }
    copy.finish().await.with_context(context)?;
    Ok(())
}

/// One COPY text row; factors as a `real[]` literal, each in shortest round-trip form.
fn row_text(
    out: &mut Vec<u8>,
    model: &str,
    version: &str,
    id: &str,
    factors: &[f32],
    enrollments: Option<u64>,
) {
    use std::fmt::Write;
    let mut array = String::with_capacity(factors.len() * 14 + 2);
    array.push('{');
    for (i, value) in factors.iter().enumerate() {
        if i > 0 {
            array.push(',');
        }
        write!(array, "{value:e}").expect("writing to a String cannot fail");
    }
    array.push('}');
    let mut row = CopyRow::new(out);
    row.push_text(Some(model));
    row.push_text(Some(version));
    row.push_text(Some(id));
    row.push_text(Some(&array));
    if let Some(enrollments) = enrollments {
        row.push_display(enrollments);
    }
    row.end();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_copy_text_with_escaped_ids_and_an_array_literal() {
        let mut out = Vec::new();
        row_text(
            &mut out,
            "s3://m/als/",
            "v1",
            "u\t1",
            &[0.5, -1.25e-7],
            Some(3),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "s3://m/als/\tv1\tu\\t1\t{5e-1,-1.25e-7}\t3\n"
        );
    }
}
