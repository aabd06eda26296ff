-- Authenticate: the live runner with token hash $1, noting that it made contact at $2.
--
-- One statement: the lookup runs on every runner request, so it must not cost a second round
-- trip. The UPDATE is a data-modifying CTE, which PostgreSQL runs to completion even though the
-- final SELECT does not read it.
--
-- contacted_at is only written when it is unset or more than 30 seconds old: a runner polling
-- several times a second would otherwise write (and bloat) its row on every request. Two
-- replicas authenticating the same runner at once serialize on the row; the second re-checks
-- the condition against the first one's write and skips. contacted_at never moves backwards,
-- even when replicas' clocks disagree, since a write only happens when $2 is later.
--
-- $1 token hash, $2 now.
WITH found AS (
    SELECT id, name, tags, created_at
    FROM runners
    WHERE token_hash = $1
      AND retired_at IS NULL
),
contacted AS (
    UPDATE runners AS r
    SET contacted_at = $2
    FROM found
    WHERE r.id = found.id
      AND r.retired_at IS NULL
      AND (r.contacted_at IS NULL OR r.contacted_at < $2 - interval '30 seconds')
    RETURNING r.id
)
SELECT id, name, tags, created_at
FROM found
