-- The pending builds by whether some online runner (not retired, in contact since $1) has all
-- their tags, and when the longest-waiting one became pending. Reads the partial index of
-- pending builds, and the online runners (few) once per pending build.
WITH online AS (
    SELECT tags
    FROM runners
    WHERE retired_at IS NULL AND contacted_at >= $1
),
pending AS (
    SELECT b.queued_at, EXISTS (SELECT 1 FROM online WHERE b.tags <@ online.tags) AS takeable
    FROM ci_builds AS b
    WHERE b.status = 'pending'
)
SELECT count(*) FILTER (WHERE takeable) AS queued,
       count(*) FILTER (WHERE NOT takeable) AS no_runner,
       min(queued_at) AS oldest_queued_at
FROM pending
