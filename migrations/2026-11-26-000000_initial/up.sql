-- Lockstep's schema.
--
-- Array columns never hold NULL elements (checked below), which lets crates/storage-pg/schema.patch
-- declare them as Array<Text>.
--
-- Tables appear in the canonical lock order (see docs/locking.md): a transaction that locks rows
-- of two of these tables locks them top to bottom, never back up. `projects` and `runners` are
-- only ever referenced (foreign-key checks take FOR KEY SHARE, which conflicts with nothing we
-- take), `pipelines` -> `ci_builds` -> `environments` -> `deployments` are locked in that order.
--
-- No foreign key has an ON DELETE or ON UPDATE action, and nothing here is deleted by a
-- transition: a cascade would lock rows behind the lock order's back.

CREATE TABLE projects (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (name <> '' AND char_length(name) <= 255),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE runners (
    id bigserial PRIMARY KEY,
    name text NOT NULL CHECK (name <> '' AND char_length(name) <= 255),
    tags text[] NOT NULL DEFAULT '{}' CHECK (array_position(tags, NULL) IS NULL),
    -- Only a hash of the token is kept; the token itself is shown once, at registration.
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    contacted_at timestamptz,
    -- Runners are retired, never deleted, so that builds keep pointing at who ran them.
    retired_at timestamptz
);

CREATE TABLE pipelines (
    id bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects (id),
    ref text NOT NULL CHECK (ref <> ''),
    sha text,
    status text NOT NULL CHECK (status IN (
        'created', 'pending', 'running', 'success', 'failed', 'canceling', 'canceled', 'skipped')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CHECK ((finished_at IS NOT NULL) = (status IN ('success', 'failed', 'canceled', 'skipped')))
);

CREATE INDEX pipelines_project_id_id ON pipelines (project_id, id DESC);

-- One row per attempt of a job. A retry inserts a new row with a higher attempt; a finished row
-- never changes again.
CREATE TABLE ci_builds (
    id bigserial PRIMARY KEY,
    pipeline_id bigint NOT NULL REFERENCES pipelines (id),
    name text NOT NULL,
    stage text NOT NULL,
    stage_idx integer NOT NULL CHECK (stage_idx >= 0),
    -- NULL: the job needs every job of earlier stages. An empty array: it needs nothing.
    needs text[] CHECK (array_position(needs, NULL) IS NULL),
    run_when text NOT NULL CHECK (run_when IN ('on_success', 'on_failure', 'always', 'manual')),
    allow_failure boolean NOT NULL DEFAULT false,
    script text[] NOT NULL CHECK (cardinality(script) > 0 AND array_position(script, NULL) IS NULL),
    tags text[] NOT NULL DEFAULT '{}' CHECK (array_position(tags, NULL) IS NULL),
    environment text,
    timeout_seconds integer NOT NULL CHECK (timeout_seconds > 0),
    retry_limit integer NOT NULL DEFAULT 0 CHECK (retry_limit >= 0),
    attempt integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    status text NOT NULL CHECK (status IN (
        'created', 'pending', 'running', 'success', 'failed', 'canceling', 'canceled', 'skipped',
        'manual')),
    runner_id bigint REFERENCES runners (id),
    lease_expires_at timestamptz,
    failure_reason text CHECK (failure_reason IN (
        'script_failure', 'runner_lost', 'job_timeout', 'runner_system_failure')),
    exit_code integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    queued_at timestamptz,
    started_at timestamptz,
    finished_at timestamptz,
    UNIQUE (pipeline_id, name, attempt),
    -- A build a runner holds always says which runner, since when and until when.
    CHECK (status NOT IN ('running', 'canceling')
        OR (runner_id IS NOT NULL AND lease_expires_at IS NOT NULL AND started_at IS NOT NULL)),
    CHECK ((finished_at IS NOT NULL) = (status IN ('success', 'failed', 'canceled', 'skipped'))),
    CHECK (failure_reason IS NULL OR status = 'failed')
);

-- The acquire path reads only this index: pending builds in id order.
CREATE INDEX ci_builds_pending ON ci_builds (id) WHERE status = 'pending';
-- The lease reaper reads only this index.
CREATE INDEX ci_builds_leased ON ci_builds (lease_expires_at) WHERE status IN ('running', 'canceling');
CREATE INDEX ci_builds_runner_id ON ci_builds (runner_id) WHERE runner_id IS NOT NULL;

CREATE TABLE environments (
    id bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects (id),
    name text NOT NULL CHECK (name <> '' AND char_length(name) <= 255),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);

-- One deployment per build that has an environment; its status always mirrors its build's.
CREATE TABLE deployments (
    id bigserial PRIMARY KEY,
    build_id bigint NOT NULL UNIQUE REFERENCES ci_builds (id),
    environment_id bigint NOT NULL REFERENCES environments (id),
    status text NOT NULL CHECK (status IN (
        'created', 'running', 'success', 'failed', 'canceled', 'skipped', 'blocked')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CHECK ((finished_at IS NOT NULL) = (status IN ('success', 'failed', 'canceled', 'skipped')))
);

CREATE INDEX deployments_environment_id_id ON deployments (environment_id, id DESC);

-- A build's log as appended chunks; a chunk starts where the previous one ended.
CREATE TABLE build_log_chunks (
    build_id bigint NOT NULL REFERENCES ci_builds (id),
    byte_offset bigint NOT NULL CHECK (byte_offset >= 0),
    data bytea NOT NULL CHECK (length(data) > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (build_id, byte_offset)
);
