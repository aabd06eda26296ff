-- Create: the definitions of a new pipeline's jobs that have any (see the migrations
-- job_definitions and artifacts), in one statement: one array per column, element i for job i,
-- as in insert_pipeline.sql. The scripts and dependencies arrive as array literals
-- (array_literal in create.rs) and the rest as JSON, both parsed by the casts below.
--
-- $1 pipeline id; $2 name, $3 before_script and $4 after_script (array literals), $5 variables
-- (JSON objects), $6 environment_action, $7 artifacts (JSON objects or NULL), $8 caches (JSON
-- arrays), $9 dependencies (array literals).
INSERT INTO ci_job_definitions (
    pipeline_id, name, before_script, after_script, variables, environment_action, artifacts,
    caches, dependencies
)
SELECT $1, j.name, j.before_script::text[], j.after_script::text[], j.variables::jsonb,
       j.environment_action, j.artifacts::jsonb, j.caches::jsonb, j.dependencies::text[]
FROM (
    SELECT unnest($2::text[]) AS name, unnest($3::text[]) AS before_script,
           unnest($4::text[]) AS after_script, unnest($5::text[]) AS variables,
           unnest($6::text[]) AS environment_action, unnest($7::text[]) AS artifacts,
           unnest($8::text[]) AS caches, unnest($9::text[]) AS dependencies
) AS j
