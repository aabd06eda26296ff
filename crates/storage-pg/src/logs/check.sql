-- Log check: records what the runner said of build $1's log ($2 bytes, SHA-256 $3) beside what
-- the server stored ($4 bytes, SHA-256 $5), read just before (stored_digest.sql).
--
-- Runs inside the finish transition, after the report was accepted: whoever sees the build
-- finished sees the check, and a refused report writes none. It comes last in the lock order:
-- the one row it upserts is only ever written here, after the transition's other locks. A
-- repeated report rewrites it (a runner resending a report it is unsure arrived sends the same
-- figures).
INSERT INTO build_log_checks AS c (
    build_id, reported_bytes, reported_sha256, stored_bytes, stored_sha256, complete, checked_at
)
VALUES ($1, $2, $3, $4, $5, ($2 = $4 AND $3 = $5), now())
ON CONFLICT (build_id) DO UPDATE
SET reported_bytes = excluded.reported_bytes, reported_sha256 = excluded.reported_sha256,
    stored_bytes = excluded.stored_bytes, stored_sha256 = excluded.stored_sha256,
    complete = excluded.complete, checked_at = excluded.checked_at
