//! SQL text for staging and merging, built from the column lists in [`super::columns`] so the
//! two formats cannot drift apart. Pure: tested without a database.

use super::columns::InputKind;

pub fn stage_table(kind: InputKind) -> String {
    format!("stage_{}", kind.as_str())
}

/// A temporary table shaped like the target, plus the file line of each row.
pub fn create_stage_sql(kind: InputKind) -> String {
    let (_, columns) = kind.table();
    let columns: Vec<String> = columns
        .iter()
        .map(|(name, sql_type)| format!("{name} {sql_type}"))
        .collect();
    format!(
        "CREATE TEMPORARY TABLE {} (line bigint NOT NULL, {}) ON COMMIT DROP",
        stage_table(kind),
        columns.join(", ")
    )
}

/// The bulk path: rows straight into an empty target, with their source object last.
pub fn copy_into_target_sql(kind: InputKind) -> String {
    let (table, columns) = kind.table();
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    format!(
        "COPY {table} ({}, source_object) FROM STDIN",
        names.join(", ")
    )
}

/// Upserts the staged rows into the target. Within one object, several rows for one key are
/// resolved first: for enrollments the latest `event_time` wins (an undated row loses to a dated
/// one) and, on a tie, the later line; for users the later line. Against the table, a stored
/// enrollment is replaced unless it is strictly newer than the incoming row; identical rows are
/// not rewritten, so the affected-row count is what changed. `$1` is the source object's URI.
pub fn merge_sql(kind: InputKind) -> String {
    let (table, columns) = kind.table();
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let (key, order, newer_guard) = match kind {
        InputKind::Users => ("user_id", "line DESC", String::new()),
        InputKind::Enrollments => (
            "username, course_id",
            "event_time DESC NULLS LAST, line DESC",
            format!(
                "({table}.event_time IS NULL OR excluded.event_time >= {table}.event_time) AND "
            ),
        ),
    };
    let values: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| !key.split(", ").any(|k| k == *name))
        .collect();
    let set: Vec<String> = values
        .iter()
        .map(|name| format!("{name} = excluded.{name}"))
        .collect();
    let qualified = |prefix: &str| -> String {
        values
            .iter()
            .map(|name| format!("{prefix}.{name}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "INSERT INTO {table} ({cols}, source_object, loaded_at) \
         SELECT DISTINCT ON ({key}) {cols}, $1, now() FROM {stage} ORDER BY {key}, {order} \
         ON CONFLICT ({key}) DO UPDATE SET {set}, source_object = excluded.source_object, \
         loaded_at = excluded.loaded_at \
         WHERE {newer_guard}({old}) IS DISTINCT FROM ({new})",
        cols = names.join(", "),
        stage = stage_table(kind),
        set = set.join(", "),
        old = qualified(table),
        new = qualified("excluded"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_merge_by_line_and_skip_unchanged_rows() {
        assert_eq!(
            merge_sql(InputKind::Users),
            "INSERT INTO users (user_id, gender, education, birth, source_object, loaded_at) \
             SELECT DISTINCT ON (user_id) user_id, gender, education, birth, $1, now() FROM stage_users \
             ORDER BY user_id, line DESC \
             ON CONFLICT (user_id) DO UPDATE SET gender = excluded.gender, education = excluded.education, \
             birth = excluded.birth, source_object = excluded.source_object, loaded_at = excluded.loaded_at \
             WHERE (users.gender, users.education, users.birth) IS DISTINCT FROM \
             (excluded.gender, excluded.education, excluded.birth)"
        );
    }

    #[test]
    fn enrollments_merge_latest_event_time_first() {
        let sql = merge_sql(InputKind::Enrollments);
        assert!(
            sql.contains("ORDER BY username, course_id, event_time DESC NULLS LAST, line DESC")
        );
        assert!(sql.contains(
            "WHERE (enrollments.event_time IS NULL OR excluded.event_time >= enrollments.event_time) AND"
        ));
        assert!(sql.contains("action_stop_video = excluded.action_stop_video"));
        assert!(!sql.contains("username = excluded"));
    }

    #[test]
    fn the_bulk_copy_names_every_column_and_the_source() {
        assert_eq!(
            copy_into_target_sql(InputKind::Users),
            "COPY users (user_id, gender, education, birth, source_object) FROM STDIN"
        );
    }

    #[test]
    fn the_stage_table_mirrors_the_target() {
        assert_eq!(
            create_stage_sql(InputKind::Users),
            "CREATE TEMPORARY TABLE stage_users (line bigint NOT NULL, user_id text COLLATE \"C\", \
             gender text, education text, birth smallint) ON COMMIT DROP"
        );
        assert!(create_stage_sql(InputKind::Enrollments).contains("event_time timestamptz)"));
    }
}
