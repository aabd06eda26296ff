-- Artifacts and caches: files that pass from one job to the next. The bytes live in an object
-- store (the filesystem or S3, behind the object_store crate); these tables keep one row per
-- stored object, so a row is the object's only reference and the sweeper's to-do list.

-- What a job keeps, fetches and caches (its definition, as written): read by the runner from
-- the claim, never by a transition.
ALTER TABLE ci_job_definitions
    -- The job's `artifacts` as a JSON object (the domain's Artifacts); NULL: it keeps none.
    ADD COLUMN artifacts jsonb CHECK (artifacts IS NULL OR jsonb_typeof(artifacts) = 'object'),
    -- The job's caches, a JSON array of the domain's Cache.
    ADD COLUMN caches jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(caches) = 'array'),
    -- The jobs whose artifacts the job fetches, resolved when the pipeline was created (only
    -- jobs that keep artifacts are listed).
    ADD COLUMN dependencies text[] NOT NULL DEFAULT '{}'
        CHECK (array_position(dependencies, NULL) IS NULL);

-- GitLab's "keep the latest artifacts": the artifacts of the latest successful pipeline of
-- each ref outlive their expire_in.
ALTER TABLE projects ADD COLUMN keep_latest_artifacts boolean NOT NULL DEFAULT true;

-- One archive per build. Inserted by the upload transition while the runner holds the build
-- (ci_builds locked first), replaced by a retried upload, deleted by the sweeper or a person.
CREATE TABLE ci_job_artifacts (
    build_id bigint PRIMARY KEY REFERENCES ci_builds (id),
    -- Denormalised from ci_builds and pipelines, which never change them: the claim finds a
    -- dependency's archive by pipeline and job name, the sweeper by project and ref.
    pipeline_id bigint NOT NULL REFERENCES pipelines (id),
    job_name text NOT NULL,
    -- The file name people download, from `artifacts: name` (`artifacts.zip` by default).
    file_name text NOT NULL CHECK (file_name <> '' AND char_length(file_name) <= 260),
    object_key text NOT NULL UNIQUE,
    size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
    sha256 bytea NOT NULL CHECK (length(sha256) = 32),
    -- The archive's entries, [{path, size, kind}], read from it when it was uploaded: the
    -- listing people see, and the check that a file asked for exists.
    entries jsonb NOT NULL CHECK (jsonb_typeof(entries) = 'array'),
    entry_count integer NOT NULL CHECK (entry_count >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- NULL: kept until deleted.
    expires_at timestamptz
);

CREATE INDEX ci_job_artifacts_by_job ON ci_job_artifacts (pipeline_id, job_name, build_id);
CREATE INDEX ci_job_artifacts_expiring ON ci_job_artifacts (expires_at)
    WHERE expires_at IS NOT NULL;

-- One cache per project and key; an upload replaces the row (the last successful writer wins)
-- and the replaced object is deleted after the commit.
CREATE TABLE ci_caches (
    id bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects (id),
    cache_key text NOT NULL CHECK (cache_key <> '' AND char_length(cache_key) <= 255),
    object_key text NOT NULL UNIQUE,
    size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
    sha256 bytea NOT NULL CHECK (length(sha256) = 32),
    -- The build that wrote it last; kept for people, not a foreign key so that nothing about a
    -- build's lifetime waits on its caches.
    build_id bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, cache_key)
);
