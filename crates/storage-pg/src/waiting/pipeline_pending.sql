-- pending.sql for every pending build of pipeline $1 at once (runners online since $2): for
-- each, how many online runners have all its tags, and how many pending builds one of those
-- would take first. One round trip for the pipeline page, however many builds wait.
WITH online AS (
    SELECT tags
    FROM runners
    WHERE retired_at IS NULL AND contacted_at >= $2
),
mine AS (
    SELECT id, tags
    FROM ci_builds
    WHERE pipeline_id = $1 AND status = 'pending'
)
SELECT m.id,
       (SELECT count(*) FROM online WHERE m.tags <@ online.tags) AS runners,
       (SELECT count(*)
        FROM ci_builds AS o
        WHERE o.status = 'pending' AND o.id < m.id
          AND EXISTS (SELECT 1 FROM online WHERE m.tags <@ online.tags AND o.tags <@ online.tags)
       ) AS ahead
FROM mine AS m
