-- The stored log of build $1: its length and SHA-256, in one pass over its chunks in order.
-- A plain read, before the finish transition, so that hashing a long log holds no lock.
SELECT coalesce(sum(length(data)), 0)::bigint AS bytes,
       sha256(coalesce(string_agg(data, ''::bytea ORDER BY byte_offset), ''::bytea)) AS sha256
FROM build_log_chunks
WHERE build_id = $1
