-- `pipeline replay` and `pipeline rebuild`: each run's plan (what it reads and filters) and, per
-- partition, the next raw-topic offset it will read, so an interrupted run resumes where it was.

CREATE TABLE replay_runs (
    run_id      text        PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('replay', 'rebuild')),
    plan        jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

CREATE TABLE replay_checkpoints (
    run_id      text        NOT NULL REFERENCES replay_runs (run_id) ON DELETE CASCADE,
    partition   integer     NOT NULL,
    next_offset bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, partition)
);
