-- Create: the definitions of a new pipeline's jobs that have any (see the migration
-- job_definitions), in one statement: one array per column, element i for job i, as in
-- insert_pipeline.sql. The scripts arrive as array literals (array_literal in create.rs) and the
-- variables as JSON objects, both parsed by the casts below.
--
-- $1 pipeline id; $2 name, $3 before_script and $4 after_script (array literals), $5 variables
-- (JSON objects), $6 environment_action.
INSERT INTO ci_job_definitions (
    pipeline_id, name, before_script, after_script, variables, environment_action
)
SELECT $1, j.name, j.before_script::text[], j.after_script::text[], j.variables::jsonb,
       j.environment_action
FROM (
    SELECT unnest($2::text[]) AS name, unnest($3::text[]) AS before_script,
           unnest($4::text[]) AS after_script, unnest($5::text[]) AS variables,
           unnest($6::text[]) AS environment_action
) AS j
