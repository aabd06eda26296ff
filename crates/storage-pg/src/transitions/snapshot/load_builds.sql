-- Every build row (all attempts) of some pipelines, each with its deployment, in id order: what
-- a transition plans on. $1 the pipeline ids.
--
-- The deployment comes from a LATERAL lookup with LIMIT 1 (a build has at most one), which the
-- planner cannot turn into a hash join. As a plain LEFT JOIN it read the whole deployments table
-- on every transition whenever that table looked small to it (2,000 rows in the benchmark), at
-- about three times the cost of one index probe per build, which suits every table size.
SELECT b.id, b.pipeline_id, b.name, b.stage_idx, b.needs, b.run_when, b.allow_failure, b.status,
       b.attempt, b.retry_limit, b.retry_when, b.retry_exit_codes, b.allow_failure_exit_codes,
       b.exit_code, b.runner_id, b.lease_expires_at, b.failure_reason, b.environment,
       b.resource_group_id, b.interruptible, b.acknowledged_at IS NOT NULL AS acknowledged,
       b.canceling_since,
       d.id AS deployment_id, d.environment_id AS deployment_environment_id,
       d.status AS deployment_status
FROM ci_builds AS b
LEFT JOIN LATERAL (
    SELECT id, environment_id, status
    FROM deployments
    WHERE build_id = b.id
    LIMIT 1
) AS d ON true
WHERE b.pipeline_id = ANY($1)
ORDER BY b.id
