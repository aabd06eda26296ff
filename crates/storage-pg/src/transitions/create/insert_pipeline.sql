-- Create: inserts a new pipeline and all of its builds in one statement, and returns each
-- build's id with its job's name and the pipeline's id.
--
-- One array parameter per build column, element i for job i, turned back into rows by unnest.
-- The statement text and its parameters are the same whatever the number of jobs, so PostgreSQL
-- parses and plans a few lines, where diesel's multi-row insert sent a 1,000-row VALUES list with
-- 16,000 parameters that took about as long to parse and plan as to insert.
--
-- needs, script and tags are text[] per job, and unnest cannot take a ragged two-dimensional
-- array, so each job's array arrives as one array literal such as {"make","make test"} (written
-- by array_literal in create.rs: every element quoted and escaped) and the casts below parse it.
-- A NULL literal stays a NULL needs (the job needs every job of earlier stages); {} is an empty
-- array (it needs nothing).
--
-- The unnest calls sit in the select list rather than in FROM (unnest ... WITH ORDINALITY): they
-- run in lockstep, one row per job in array order, without first copying each array into a
-- tuplestore, which measured about 1.5 ms less server time per 1,000 builds. ORDER BY ordinality
-- makes rows, and so ids drawn from the sequence, follow job order (claims take pending builds in
-- id order); the sort of rows already in order costs too little to measure. The caller still
-- matches ids to jobs by name (unique within a pipeline: the domain checks it, as does UNIQUE
-- (pipeline_id, name, attempt)) rather than by position, since the order of RETURNING is not
-- promised.
--
-- The builds' foreign key to the pipeline is checked at the end of the statement, when the
-- pipeline row inserted by the CTE is visible. A missing project fails the pipeline's own
-- foreign key, pipelines_project_id_fkey, which the caller reports as not found.
--
-- $1 project id, $2 ref, $3 sha, $4 the pipeline's status, $5 now, $6 whether the pipeline is
-- finished (sets finished_at); then one array per build column: $7 name, $8 stage, $9 stage_idx,
-- $10 needs (array literals or NULL), $11 run_when, $12 allow_failure, $13 script and $14 tags
-- (array literals), $15 environment, $16 timeout_seconds, $17 retry_limit, $18 status, $19 queued
-- (sets queued_at), $20 finished (sets finished_at), $21 resource_group_id, $22 interruptible,
-- $23 retry_when and $24 retry_exit_codes (array literals), $25 allow_failure_exit_codes (array
-- literals or NULL).
WITH pipeline AS (
    INSERT INTO pipelines (project_id, ref, sha, status, created_at, updated_at, finished_at)
    VALUES ($1, $2, $3, $4, $5, $5, CASE WHEN $6 THEN $5 END)
    RETURNING id
)
INSERT INTO ci_builds (
    pipeline_id, name, stage, stage_idx, needs, run_when, allow_failure, script, tags,
    environment, timeout_seconds, retry_limit, status, created_at, queued_at, finished_at,
    resource_group_id, interruptible, retry_when, retry_exit_codes, allow_failure_exit_codes
)
SELECT (SELECT id FROM pipeline), j.name, j.stage, j.stage_idx, j.needs::text[], j.run_when,
       j.allow_failure, j.script::text[], j.tags::text[], j.environment, j.timeout_seconds,
       j.retry_limit, j.status, $5,
       -- A build of a group takes the database's clock (write.rs, queued_at).
       CASE WHEN j.queued AND j.resource_group_id IS NOT NULL THEN clock_timestamp()
            WHEN j.queued THEN $5 END,
       CASE WHEN j.finished THEN $5 END,
       j.resource_group_id, j.interruptible, j.retry_when::text[], j.retry_exit_codes::integer[],
       j.allow_failure_exit_codes::integer[]
FROM (
    SELECT unnest($7::text[]) AS name, unnest($8::text[]) AS stage,
           unnest($9::integer[]) AS stage_idx, unnest($10::text[]) AS needs,
           unnest($11::text[]) AS run_when, unnest($12::boolean[]) AS allow_failure,
           unnest($13::text[]) AS script, unnest($14::text[]) AS tags,
           unnest($15::text[]) AS environment, unnest($16::integer[]) AS timeout_seconds,
           unnest($17::integer[]) AS retry_limit, unnest($18::text[]) AS status,
           unnest($19::boolean[]) AS queued, unnest($20::boolean[]) AS finished,
           unnest($21::bigint[]) AS resource_group_id, unnest($22::boolean[]) AS interruptible,
           unnest($23::text[]) AS retry_when, unnest($24::text[]) AS retry_exit_codes,
           unnest($25::text[]) AS allow_failure_exit_codes,
           generate_series(1, cardinality($7::text[])) AS ordinality
) AS j
ORDER BY j.ordinality
RETURNING pipeline_id, id, name
