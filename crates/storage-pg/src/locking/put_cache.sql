-- A project's new cache row; nothing when the key has one already (then the caller locks that
-- row, at rank 7, and replaces it: the last writer wins). The caller holds the writing build's
-- lock (rank 3).
INSERT INTO ci_caches (project_id, cache_key, object_key, size_bytes, sha256, build_id, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (project_id, cache_key) DO NOTHING
