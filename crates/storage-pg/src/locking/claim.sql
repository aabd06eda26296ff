-- Acquire: claims up to $2 pending builds for runner $3 and returns everything the runner needs.
--
-- Statuses are literals, not parameters, so that the planner can match them against the partial
-- indexes (ci_builds_pending) even in a cached generic plan. A unit test checks them against the
-- domain's names.
--
-- One statement, so one snapshot: the build, its pipeline, its job's definition, its
-- deployment and the artifacts it fetches are read together. The artifacts belong to the
-- latest attempts of the jobs it depends on, which ended before it became pending, and a
-- build's artifacts are only written while it runs: what this sees is final.
-- (The Coder incident was a claim followed by a separate lookup that could not see the build.)
--
-- Locks, in the canonical order: ci_builds rows with SKIP LOCKED (so acquire never waits on a
-- build another transaction holds), then the claimed builds' deployments in ascending id. It
-- never locks pipelines; the pipeline's status catches up in a follow-up transaction.
--
-- $1 the runner's tags, $2 how many, $3 runner id, $4 now, $5 lease expiry.
WITH candidates AS (
    SELECT id
    FROM ci_builds
    WHERE status = 'pending'
      AND tags <@ $1
    ORDER BY id
    LIMIT $2
    FOR NO KEY UPDATE SKIP LOCKED
),
claimed AS (
    UPDATE ci_builds AS b
    SET status = 'running', runner_id = $3, started_at = $4, lease_expires_at = $5
    FROM candidates AS c
    -- The full pending predicate again: the row is re-checked here after it was locked, so a
    -- build that stopped being pending in between is never claimed.
    WHERE b.id = c.id
      AND b.status = 'pending'
      AND b.tags <@ $1
    RETURNING b.id, b.pipeline_id, b.name, b.stage, b.script, b.environment, b.timeout_seconds,
              b.attempt, b.started_at, b.lease_expires_at
),
deployments_to_start AS (
    SELECT d.id
    FROM deployments AS d
    JOIN claimed ON d.build_id = claimed.id
    ORDER BY d.id
    FOR NO KEY UPDATE OF d
),
started_deployments AS (
    UPDATE deployments AS d
    SET status = 'running', updated_at = $4
    FROM deployments_to_start AS s
    WHERE d.id = s.id
    RETURNING d.id, d.build_id, d.environment_id, d.status
)
-- LEFT JOINs on purpose: a missing pipeline or deployment must surface as an error that rolls
-- the claim back, never as a claimed build silently dropped from the result.
SELECT claimed.id, claimed.pipeline_id, claimed.name, claimed.stage, claimed.script,
       claimed.environment, claimed.timeout_seconds, claimed.attempt, claimed.started_at,
       claimed.lease_expires_at,
       p.project_id, p.ref AS git_ref, p.sha, p.status AS pipeline_status,
       sd.id AS deployment_id, sd.status AS deployment_status, e.name AS deployment_environment,
       -- A job without a definition row has none of these (job_definitions.rs).
       COALESCE(jd.before_script, '{}') AS before_script,
       COALESCE(jd.after_script, '{}') AS after_script,
       COALESCE(jd.variables, '{}')::text AS variables,
       COALESCE(jd.environment_action, 'start') AS environment_action,
       jd.artifacts::text AS artifacts,
       COALESCE(jd.caches, '[]')::text AS caches,
       COALESCE(jd.dependencies, '{}') AS dependencies,
       COALESCE(dependency_archives.archives, '[]') AS fetch_artifacts
FROM claimed
LEFT JOIN pipelines AS p ON p.id = claimed.pipeline_id
LEFT JOIN ci_job_definitions AS jd
    ON jd.pipeline_id = claimed.pipeline_id AND jd.name = claimed.name
-- The archives of the latest attempt of each job it depends on, in the order of its
-- dependencies (a job without a definition row depends on nothing: no lookup at all).
LEFT JOIN LATERAL (
    SELECT json_agg(json_build_object(
               'build_id', a.build_id, 'job', a.job_name, 'file_name', a.file_name,
               'size', a.size_bytes, 'sha256', encode(a.sha256, 'hex'))
           ORDER BY dep.position)::text AS archives
    FROM unnest(jd.dependencies) WITH ORDINALITY AS dep (name, position)
    CROSS JOIN LATERAL (
        SELECT b.id
        FROM ci_builds AS b
        WHERE b.pipeline_id = claimed.pipeline_id AND b.name = dep.name
        ORDER BY b.attempt DESC
        LIMIT 1
    ) AS latest
    JOIN ci_job_artifacts AS a ON a.build_id = latest.id
) AS dependency_archives ON true
LEFT JOIN started_deployments AS sd ON sd.build_id = claimed.id
LEFT JOIN environments AS e ON e.id = sd.environment_id
ORDER BY claimed.id
