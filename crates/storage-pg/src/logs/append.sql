-- Append: adds $4 to build $1's log at byte $3, for runner $2, if that is exactly where the log
-- ends, and returns what decided the outcome.
--
-- One statement for the whole happy path: the checks, the insert and the answer. It always
-- returns one row while the build exists (none when it does not) with the build's runner and
-- status, the log's end as this statement saw it, and the new end when it appended; the caller
-- tells every refusal apart from that row alone. It also says whether the runner has
-- acknowledged the build yet. With $6 it appends only to an acknowledged build: the runner
-- protocol's append (Transitions::append_log) acknowledges first, through the lock order, as a
-- heartbeat would, and appends after, so that no chunk lands on a claim the reaper is handing
-- back to the queue.
--
-- Chunks stay contiguous without locking anything. An insert only happens at the end this
-- statement saw, so two appends racing at the same offset both aim at the same primary key
-- (build_id, byte_offset): the second waits for the first to commit, then ON CONFLICT skips it
-- (new_end is NULL although every check passed), and the caller reads the end again to report.
-- DO NOTHING rather than a unique violation: the loser learns the same thing without an error
-- that would abort a surrounding transaction.
--
-- Known gap, accepted: the status check reads the build without locking it, so an append racing
-- with the reaper failing the build (lease expiry) can land just after the build turned
-- terminal. Closing it would need a share lock on the build row, taken through locking.rs.
--
-- Statuses are literals, as in claim.sql: the ones that hold a lease, in which the domain's
-- check_holder lets a runner work, as a unit test checks.
--
-- $1 build id, $2 runner id, $3 offset, $4 data, $5 the largest log allowed, in bytes, $6
-- whether to append only once the build is acknowledged.
-- created_at takes the column default, the server's clock: the signature has no `now`.
WITH build AS (
    SELECT runner_id, status, acknowledged_at IS NOT NULL AS acknowledged
    FROM ci_builds
    WHERE id = $1
),
tail AS (
    -- The last chunk ends the log: one step down the primary key, however long the log.
    SELECT COALESCE((
        SELECT byte_offset + length(data)
        FROM build_log_chunks
        WHERE build_id = $1
        ORDER BY byte_offset DESC
        LIMIT 1
    ), 0) AS log_end
),
appended AS (
    INSERT INTO build_log_chunks (build_id, byte_offset, data)
    SELECT $1, $3, $4
    FROM build CROSS JOIN tail
    WHERE build.runner_id = $2
      AND build.status IN ('running', 'canceling')
      AND tail.log_end = $3
      AND length($4) > 0
      AND (build.acknowledged OR NOT $6)
      -- Written as a difference so that no offset, however large, overflows bigint.
      AND length($4) <= $5 - $3
    ON CONFLICT (build_id, byte_offset) DO NOTHING
    RETURNING byte_offset + length(data) AS new_end
)
SELECT build.runner_id, build.status, build.acknowledged, tail.log_end,
       (SELECT new_end FROM appended) AS new_end
FROM build CROSS JOIN tail
