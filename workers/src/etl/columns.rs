//! The two input formats and how a file's header maps onto them. Columns are matched by name,
//! case-insensitively, in any order; a leading byte-order mark and surrounding spaces are ignored.

use std::fmt;

/// The 22 activity counts of an enrollment, in table order.
pub const ACTION_COLUMNS: [&str; 22] = [
    "action_click_about",
    "action_click_courseware",
    "action_click_forum",
    "action_click_info",
    "action_click_progress",
    "action_close_courseware",
    "action_close_forum",
    "action_create_comment",
    "action_create_thread",
    "action_delete_comment",
    "action_delete_thread",
    "action_load_video",
    "action_pause_video",
    "action_play_video",
    "action_problem_check",
    "action_problem_check_correct",
    "action_problem_check_incorrect",
    "action_problem_get",
    "action_problem_save",
    "action_reset_problem",
    "action_seek_video",
    "action_stop_video",
];

const USER_COLUMNS: [&str; 4] = ["user_id", "gender", "education", "birth"];

/// `train.csv`'s columns in table order: ids, label, the 22 counts, the two session aggregates,
/// the event time (`timestamp` in the file, `event_time` in the table).
pub fn enrollment_columns() -> Vec<&'static str> {
    let mut columns = vec!["username", "course_id", "truth"];
    columns.extend(ACTION_COLUMNS);
    columns.extend([
        "unique_session_count",
        "avg_nactions_per_session",
        "timestamp",
    ]);
    columns
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// `user_info.csv`: one row per learner.
    Users,
    /// `train.csv`: one row per learner × course.
    Enrollments,
}

impl InputKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InputKind::Users => "users",
            InputKind::Enrollments => "enrollments",
        }
    }

    /// Required columns, in the order rows are staged.
    pub fn columns(self) -> Vec<&'static str> {
        match self {
            InputKind::Users => USER_COLUMNS.to_vec(),
            InputKind::Enrollments => enrollment_columns(),
        }
    }

    /// The target table's name and, for each of [`Self::columns`], its column name and SQL type.
    pub fn table(self) -> (&'static str, Vec<(&'static str, &'static str)>) {
        let columns = self.columns().into_iter().map(|column| match column {
            "user_id" | "username" | "course_id" => (column, "text COLLATE \"C\""),
            "gender" | "education" => (column, "text"),
            "birth" | "truth" => (column, "smallint"),
            "avg_nactions_per_session" => (column, "double precision"),
            "timestamp" => ("event_time", "timestamptz"),
            count => (count, "integer"),
        });
        match self {
            InputKind::Users => ("users", columns.collect()),
            InputKind::Enrollments => ("enrollments", columns.collect()),
        }
    }
}

impl fmt::Display for InputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where each required column sits in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderMap {
    pub kind: InputKind,
    /// The format's columns, `kind.columns()`, kept to avoid rebuilding them per row.
    pub columns: Vec<&'static str>,
    /// `positions[i]` is the file column of `columns[i]`.
    pub positions: Vec<usize>,
    /// Columns of the file that are not part of the format; they are ignored.
    pub extra: Vec<String>,
    /// Fields per row, as the header has them.
    pub width: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    #[error("the object is empty: no header line")]
    Empty,
    #[error("the header line is not valid UTF-8")]
    NotUtf8,
    #[error(
        "the header ({header}) is neither user_info (user_id, gender, education, birth) nor \
         train (username, course_id, truth, action_*, …)"
    )]
    Unrecognised { header: String },
    #[error("missing required column(s) for {kind} input: {}", missing.join(", "))]
    Missing {
        kind: InputKind,
        missing: Vec<&'static str>,
    },
    #[error("column {0} appears more than once in the header")]
    Duplicate(String),
}

fn normalise(name: &str) -> String {
    name.trim_start_matches('\u{feff}').trim().to_lowercase()
}

/// Recognises the format from the header's column names and locates every required column.
pub fn map_header(fields: &[&[u8]]) -> Result<HeaderMap, HeaderError> {
    if fields.is_empty() || (fields.len() == 1 && fields[0].is_empty()) {
        return Err(HeaderError::Empty);
    }
    let names = fields
        .iter()
        .map(|field| std::str::from_utf8(field).map(normalise))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| HeaderError::NotUtf8)?;
    for (index, name) in names.iter().enumerate() {
        if names[..index].contains(name) {
            return Err(HeaderError::Duplicate(name.clone()));
        }
    }
    let has = |column: &str| names.iter().any(|name| name == column);
    let kind = if has("username") || has("course_id") {
        InputKind::Enrollments
    } else if has("user_id") {
        InputKind::Users
    } else {
        return Err(HeaderError::Unrecognised {
            header: names.join(","),
        });
    };
    let required = kind.columns();
    let missing: Vec<&'static str> = required.iter().copied().filter(|c| !has(c)).collect();
    if !missing.is_empty() {
        return Err(HeaderError::Missing { kind, missing });
    }
    let positions = required
        .iter()
        .map(|column| names.iter().position(|name| name == column).unwrap())
        .collect();
    let extra = names
        .iter()
        .filter(|name| !required.contains(&name.as_str()))
        .cloned()
        .collect();
    Ok(HeaderMap {
        kind,
        columns: required,
        positions,
        extra,
        width: names.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(line: &str) -> Result<HeaderMap, HeaderError> {
        let fields: Vec<&[u8]> = line.split(',').map(str::as_bytes).collect();
        map_header(&fields)
    }

    #[test]
    fn user_info_is_recognised_in_any_order_and_case() {
        let map = header("\u{feff}Birth, User_ID ,EDUCATION,gender").unwrap();
        assert_eq!(map.kind, InputKind::Users);
        assert_eq!(map.positions, vec![1, 3, 2, 0]);
        assert!(map.extra.is_empty());
    }

    #[test]
    fn train_with_an_extra_column_maps_past_it() {
        let line = format!("enroll_id,{}", enrollment_columns().join(","));
        let map = header(&line).unwrap();
        assert_eq!(map.kind, InputKind::Enrollments);
        assert_eq!(map.positions[0], 1);
        assert_eq!(map.positions.len(), 28);
        assert_eq!(map.extra, vec!["enroll_id"]);
        assert_eq!(map.width, 29);
    }

    #[test]
    fn missing_columns_are_all_named() {
        let error = header("username,course_id,truth").unwrap_err();
        let HeaderError::Missing { kind, missing } = &error else {
            panic!("{error:?}")
        };
        assert_eq!(*kind, InputKind::Enrollments);
        assert_eq!(missing.len(), 25);
        assert!(
            error
                .to_string()
                .contains("action_click_about, action_click_courseware")
        );
        assert_eq!(
            header("user_id,gender").unwrap_err().to_string(),
            "missing required column(s) for users input: education, birth"
        );
    }

    #[test]
    fn unrecognised_empty_and_duplicate_headers_are_errors() {
        assert!(matches!(
            header("a,b"),
            Err(HeaderError::Unrecognised { .. })
        ));
        assert_eq!(header(""), Err(HeaderError::Empty));
        assert_eq!(
            header("user_id,gender,User_Id,education,birth"),
            Err(HeaderError::Duplicate("user_id".into()))
        );
        assert_eq!(map_header(&[b"user_id\xff"]), Err(HeaderError::NotUtf8));
    }
}
