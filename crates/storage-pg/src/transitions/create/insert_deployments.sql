-- Create: inserts the deployments of a new pipeline's builds in one statement, whatever their
-- number: one array parameter per column, element i for deployment i, unnested as in
-- insert_pipeline.sql, and inserted in that order.
--
-- The environments were ensured just before (locking.rs, rank 3) and the builds were inserted by
-- this transaction, so nothing here waits on another transaction: the foreign-key checks take
-- key-share locks, which conflict with nothing Lockstep takes (docs/locking.md).
--
-- $1 now; then one array each: $2 build_id, $3 environment_id, $4 status, $5 finished (whether
-- finished_at is set: the deployment of a build created skipped is created skipped).
INSERT INTO deployments (build_id, environment_id, status, created_at, updated_at, finished_at)
SELECT d.build_id, d.environment_id, d.status, $1, $1, CASE WHEN d.finished THEN $1 END
FROM (
    SELECT unnest($2::bigint[]) AS build_id, unnest($3::bigint[]) AS environment_id,
           unnest($4::text[]) AS status, unnest($5::boolean[]) AS finished,
           generate_series(1, cardinality($2::bigint[])) AS ordinality
) AS d
ORDER BY d.ordinality
