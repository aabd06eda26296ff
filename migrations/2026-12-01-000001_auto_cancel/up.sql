-- Auto-cancel of superseded pipelines: a new pipeline on a project's ref cancels what its rule
-- allows of the older, unfinished pipelines of that ref, in the transaction that creates it.
--
-- pipeline_refs has one row per (project, ref) that ever had a pipeline. Creating a pipeline
-- locks its ref's row first (rank 0 of the lock order, before pipelines), so creations on one
-- ref take turns: each sees every older pipeline of its ref committed, and two pipelines
-- created at the same moment cannot both survive as the newest. See docs/locking.md.
CREATE TABLE pipeline_refs (
    id bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects (id),
    ref text NOT NULL CHECK (ref <> ''),
    UNIQUE (project_id, ref)
);

-- Safe to stop when a newer pipeline on the same ref makes it redundant.
ALTER TABLE ci_builds ADD COLUMN interruptible boolean NOT NULL DEFAULT false;

-- The newer pipeline that canceled this one, or some of its builds.
ALTER TABLE pipelines ADD COLUMN auto_canceled_by bigint REFERENCES pipelines (id);

-- What a creation reads under its ref's lock: the ref's pipelines that have not finished.
CREATE INDEX pipelines_unfinished_ref ON pipelines (project_id, ref) WHERE finished_at IS NULL;
