-- Every model version trained (TrainingRun and ALSJob runs): the seed's model_training_history,
-- keyed by the model's artifact location so that several resources can share one database.
CREATE TABLE model_registry (
    id                 bigserial PRIMARY KEY,
    kind               text NOT NULL CHECK (kind IN ('dropout', 'als')),
    model              text NOT NULL,   -- the artifacts URI, s3://<bucket>/<prefix>/
    version            text NOT NULL,
    run_id             text NOT NULL,
    artifact_uri       text NOT NULL,
    data_fingerprint   text,
    training_samples   bigint NOT NULL,
    validation_samples bigint NOT NULL,
    test_samples       bigint NOT NULL,
    metrics            jsonb NOT NULL,
    hyperparameters    jsonb NOT NULL,
    duration_seconds   double precision NOT NULL,
    notes              text,
    is_active          boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (model, version)
);
-- At most one active version per model, whoever sets the flag.
CREATE UNIQUE INDEX model_registry_one_active ON model_registry (model) WHERE is_active;
