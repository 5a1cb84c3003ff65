-- Inputs loaded by `mooc-worker etl` (DataLoad). Ids are opaque UTF-8 text compared byte by byte
-- (COLLATE "C": no locale rules for hashes and course keys, and much faster keys to index and sort);
-- empty inputs are NULL, never a made-up zero.

CREATE TABLE users (
    user_id       text COLLATE "C" PRIMARY KEY,
    gender        text,
    education     text,
    birth         smallint,
    source_object text NOT NULL,
    loaded_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE enrollments (
    username                       text COLLATE "C" NOT NULL,
    course_id                      text COLLATE "C" NOT NULL,
    truth                          smallint CHECK (truth IN (0, 1)),  -- 1 = dropout, NULL = unknown
    action_click_about             integer CHECK (action_click_about >= 0),
    action_click_courseware        integer CHECK (action_click_courseware >= 0),
    action_click_forum             integer CHECK (action_click_forum >= 0),
    action_click_info              integer CHECK (action_click_info >= 0),
    action_click_progress          integer CHECK (action_click_progress >= 0),
    action_close_courseware        integer CHECK (action_close_courseware >= 0),
    action_close_forum             integer CHECK (action_close_forum >= 0),
    action_create_comment          integer CHECK (action_create_comment >= 0),
    action_create_thread           integer CHECK (action_create_thread >= 0),
    action_delete_comment          integer CHECK (action_delete_comment >= 0),
    action_delete_thread           integer CHECK (action_delete_thread >= 0),
    action_load_video              integer CHECK (action_load_video >= 0),
    action_pause_video             integer CHECK (action_pause_video >= 0),
    action_play_video              integer CHECK (action_play_video >= 0),
    action_problem_check           integer CHECK (action_problem_check >= 0),
    action_problem_check_correct   integer CHECK (action_problem_check_correct >= 0),
    action_problem_check_incorrect integer CHECK (action_problem_check_incorrect >= 0),
    action_problem_get             integer CHECK (action_problem_get >= 0),
    action_problem_save            integer CHECK (action_problem_save >= 0),
    action_reset_problem           integer CHECK (action_reset_problem >= 0),
    action_seek_video              integer CHECK (action_seek_video >= 0),
    action_stop_video              integer CHECK (action_stop_video >= 0),
    unique_session_count           integer CHECK (unique_session_count >= 0),
    avg_nactions_per_session       double precision CHECK (avg_nactions_per_session >= 0),
    event_time                     timestamptz,
    source_object                  text NOT NULL,
    loaded_at                      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (username, course_id)
);

-- One row per object loaded: a re-run skips an object whose ETag is unchanged.
CREATE TABLE load_ledger (
    bucket         text NOT NULL,
    object_key     text NOT NULL,
    etag           text NOT NULL,
    input_kind     text NOT NULL CHECK (input_kind IN ('users', 'enrollments')),
    rows_read      bigint NOT NULL,
    rows_merged    bigint NOT NULL,
    rows_rejected  bigint NOT NULL,
    loaded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bucket, object_key)
);

-- Every row not loaded as written, with where and why. `row_rejected`: the row was not loaded;
-- `field_nulled`: the row was loaded with this one field set to NULL (e.g. an implausible birth year).
CREATE TABLE load_rejects (
    id          bigserial PRIMARY KEY,
    bucket      text NOT NULL,
    object_key  text NOT NULL,
    etag        text NOT NULL,
    line        bigint NOT NULL,
    column_name text,
    disposition text NOT NULL CHECK (disposition IN ('row_rejected', 'field_nulled')),
    reason      text NOT NULL,
    raw_line    text NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX load_rejects_object ON load_rejects (bucket, object_key);
