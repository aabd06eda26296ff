-- What a job runs besides its script, and what it does to its environment: the parts of a job's
-- definition only its runner and its readers need.
--
-- A table of its own rather than columns of ci_builds, for two reasons. ci_builds is the table
-- every transition locks and rewrites: each UPDATE copies the whole row, so lines of shell and
-- variables that no transition reads would be copied by every status change. And the row is
-- keyed by the job (pipeline and name), not the build: every attempt of a job runs the same
-- lines, so a retry copies nothing (GitLab keeps these in ci_job_definitions for the same
-- reasons).
--
-- Rows are only ever inserted, by the transaction that creates the pipeline, and only for jobs
-- that have something here: a job with none of it reads as the defaults below. Nothing locks
-- or updates them, so they take no place in the canonical lock order (the foreign key's
-- FOR KEY SHARE on the pipeline conflicts with nothing a transition takes).

CREATE TABLE ci_job_definitions (
    pipeline_id bigint NOT NULL REFERENCES pipelines (id),
    name text NOT NULL,
    before_script text[] NOT NULL DEFAULT '{}' CHECK (array_position(before_script, NULL) IS NULL),
    after_script text[] NOT NULL DEFAULT '{}' CHECK (array_position(after_script, NULL) IS NULL),
    -- A JSON object of strings: the job's own variables, beside the CI_* ones the server adds.
    variables jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(variables) = 'object'),
    -- GitLab's environment:action. Only `start` creates a deployment.
    environment_action text NOT NULL DEFAULT 'start'
        CHECK (environment_action IN ('start', 'prepare', 'stop')),
    PRIMARY KEY (pipeline_id, name)
);
