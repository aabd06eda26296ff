-- Why pending build $1 (tags $2) waits: how many online runners (not retired, in contact since
-- $3) have all its tags, and how many pending builds one of those runners would take first.
--
-- Claims take pending builds in id order among those whose tags the runner has, so a build is
-- behind every older pending build that some runner able to take it could take instead. The
-- count reads the partial index of pending builds; the status is a literal for that (checked
-- against the domain's name by a unit test in waiting.rs).
WITH able AS (
    SELECT tags
    FROM runners
    WHERE retired_at IS NULL AND contacted_at >= $3 AND $2 <@ tags
)
SELECT (SELECT count(*) FROM able) AS runners,
       (SELECT count(*)
        FROM ci_builds AS o
        WHERE o.status = 'pending' AND o.id < $1
          AND EXISTS (SELECT 1 FROM able WHERE o.tags <@ able.tags)) AS ahead
