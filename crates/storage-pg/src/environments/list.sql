-- A project's environments in name order, each with its newest deployment.
--
-- One statement, so one snapshot and one round trip. The LATERAL subquery reads
-- deployments_environment_id_id backwards and stops after one row, so the cost does not grow
-- with an environment's history (diesel has no LATERAL, hence this file).
--
-- The project is the driving row: an unknown project returns no row at all, while a project
-- without environments returns one row whose environment columns are NULL. So "not found" needs
-- no second query.
--
-- $1 project id.
SELECT p.id AS project_id,
       e.id AS environment_id, e.name AS environment, e.created_at AS environment_created_at,
       d.id AS deployment_id, d.build_id, d.pipeline_id, d.status AS deployment_status,
       d.created_at AS deployment_created_at, d.finished_at AS deployment_finished_at
FROM projects AS p
LEFT JOIN environments AS e ON e.project_id = p.id
LEFT JOIN LATERAL (
    SELECT d.id, d.build_id, b.pipeline_id, d.status, d.created_at, d.finished_at
    FROM deployments AS d
    JOIN ci_builds AS b ON b.id = d.build_id
    WHERE d.environment_id = e.id
    ORDER BY d.id DESC
    LIMIT 1
) AS d ON true
WHERE p.id = $1
ORDER BY e.name
