-- Whether build $3 is the latest attempt of one of the jobs $2 of pipeline $1: the only
-- archives a runner may fetch for its job (the same rule as the claim's list).
SELECT latest.id
FROM unnest($2::text[]) AS dep (name)
CROSS JOIN LATERAL (
    SELECT b.id
    FROM ci_builds AS b
    WHERE b.pipeline_id = $1 AND b.name = dep.name
    ORDER BY b.attempt DESC
    LIMIT 1
) AS latest
WHERE latest.id = $3
