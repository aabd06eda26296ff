-- Read: bytes [$2, $3) of build $1's log, with the build's status and where the log ends.
--
-- One statement, so the status, the end and the bytes come from one snapshot: a reader that is
-- told the log is complete has seen all of it. It returns no row when the build does not exist,
-- and otherwise one row per chunk overlapping the window (one row of NULL chunk columns when
-- none does), each cut down to the window so that no byte outside it leaves the server.
--
-- $1 build id, $2 first byte wanted, $3 first byte not wanted ($2 <= $3).
WITH build AS (
    SELECT status
    FROM ci_builds
    WHERE id = $1
),
tail AS (
    SELECT COALESCE((
        SELECT byte_offset + length(data)
        FROM build_log_chunks
        WHERE build_id = $1
        ORDER BY byte_offset DESC
        LIMIT 1
    ), 0) AS log_end
),
first_chunk AS (
    -- The chunk holding byte $2 is the last one starting at or before it. Starting the range
    -- scan there keeps the scan on the primary key instead of testing every earlier chunk.
    SELECT COALESCE((
        SELECT byte_offset
        FROM build_log_chunks
        WHERE build_id = $1
          AND byte_offset <= $2
        ORDER BY byte_offset DESC
        LIMIT 1
    ), 0) AS byte_offset
)
SELECT build.status, tail.log_end, slice.byte_offset AS slice_offset, slice.data
FROM build
CROSS JOIN tail
LEFT JOIN (
    SELECT greatest(c.byte_offset, $2) AS byte_offset,
           substring(c.data
                     FROM (greatest($2 - c.byte_offset, 0) + 1)::integer
                     FOR (least($3, c.byte_offset + length(c.data))
                          - greatest($2, c.byte_offset))::integer) AS data
    FROM build_log_chunks AS c
    CROSS JOIN first_chunk
    WHERE c.build_id = $1
      AND c.byte_offset >= first_chunk.byte_offset
      AND c.byte_offset < $3
      AND c.byte_offset + length(c.data) > $2
) AS slice ON true
ORDER BY slice.byte_offset
