-- An environment's newest deployments, newest first; the same columns as list.sql.
--
-- The environment is the driving row, as the project is in list.sql: an unknown environment
-- returns no row, an environment without deployments one row whose deployment columns are NULL.
-- The LATERAL subquery reads deployments_environment_id_id backwards, $2 rows at most.
--
-- $1 environment id, $2 how many.
SELECT e.project_id,
       e.id AS environment_id, e.name AS environment, e.created_at AS environment_created_at,
       d.id AS deployment_id, d.build_id, d.pipeline_id, d.status AS deployment_status,
       d.created_at AS deployment_created_at, d.finished_at AS deployment_finished_at
FROM environments AS e
LEFT JOIN LATERAL (
    SELECT d.id, d.build_id, b.pipeline_id, d.status, d.created_at, d.finished_at
    FROM deployments AS d
    JOIN ci_builds AS b ON b.id = d.build_id
    WHERE d.environment_id = e.id
    ORDER BY d.id DESC
    LIMIT $2
) AS d ON true
WHERE e.id = $1
ORDER BY d.id DESC
