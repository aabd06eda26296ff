-- A build's archive row: inserted, or replacing the row of an earlier upload of the same build
-- (locked just before, at rank 6). The caller holds the build's lock (rank 3).
INSERT INTO ci_job_artifacts (
    build_id, pipeline_id, job_name, file_name, object_key, size_bytes, sha256, entries,
    entry_count, created_at, expires_at
)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11)
ON CONFLICT (build_id) DO UPDATE
SET file_name = EXCLUDED.file_name, object_key = EXCLUDED.object_key,
    size_bytes = EXCLUDED.size_bytes, sha256 = EXCLUDED.sha256, entries = EXCLUDED.entries,
    entry_count = EXCLUDED.entry_count, created_at = EXCLUDED.created_at,
    expires_at = EXCLUDED.expires_at
