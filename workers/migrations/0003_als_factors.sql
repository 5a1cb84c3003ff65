-- ALS factors for the serving side and SQL users: one row per user and per course of a version.
-- A version's rows are written in the transaction that records it in model_registry, so a reader
-- that picks a version from the registry finds all of its rows or none. Each model keeps the rows
-- of its newest and its active version; every version's bundle stays in S3.
CREATE TABLE als_user_factors (
    model    text NOT NULL,
    version  text NOT NULL,
    user_id  text COLLATE "C" NOT NULL,
    factors  real[] NOT NULL,
    PRIMARY KEY (model, version, user_id)
);

CREATE TABLE als_course_factors (
    model       text NOT NULL,
    version     text NOT NULL,
    course_id   text COLLATE "C" NOT NULL,
    enrollments bigint NOT NULL,   -- training enrollments: the popularity fallback
    factors     real[] NOT NULL,
    PRIMARY KEY (model, version, course_id)
);
