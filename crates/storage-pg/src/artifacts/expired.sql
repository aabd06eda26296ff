-- The sweeper's batch: up to $3 artifacts whose expires_at has passed at $1, oldest first,
-- except those of the latest pipeline with status $2 (success) of their ref when the project
-- keeps them (GitLab's "keep the latest artifacts"). Those are looked at again on every sweep,
-- and go once a newer pipeline of the ref succeeds.
SELECT a.build_id, a.object_key
FROM ci_job_artifacts AS a
JOIN pipelines AS p ON p.id = a.pipeline_id
JOIN projects AS pr ON pr.id = p.project_id
WHERE a.expires_at <= $1
  AND NOT (
      pr.keep_latest_artifacts
      AND p.id = (
          SELECT l.id
          FROM pipelines AS l
          WHERE l.project_id = p.project_id AND l.ref = p.ref AND l.status = $2
          ORDER BY l.id DESC
          LIMIT 1
      )
  )
ORDER BY a.expires_at
LIMIT $3
