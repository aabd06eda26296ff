-- GitLab's retry and allow_failure rules.
--
-- retry_limit stays the most automatic retries (`retry: max`); retry_when names the failures
-- that retry (crates/domain/src/retry.rs, RetryWhen) and retry_exit_codes the exit codes that
-- retry whatever the reason. allow_failure_exit_codes, when set, narrows allow_failure to
-- failures with one of those exit codes.
--
-- retry_of is the attempt a new attempt copies, automatic_retry whether the job's retry rule made
-- it (rather than a person): with them a user follows a job's chain of attempts, and why.

ALTER TABLE ci_builds
    ADD COLUMN retry_when text[] NOT NULL DEFAULT '{}'
        CHECK (array_position(retry_when, NULL) IS NULL
            AND retry_when <@ ARRAY['always', 'unknown_failure', 'script_failure',
                'runner_system_failure', 'runner_lost', 'job_timeout']),
    ADD COLUMN retry_exit_codes integer[] NOT NULL DEFAULT '{}'
        CHECK (array_position(retry_exit_codes, NULL) IS NULL),
    ADD COLUMN allow_failure_exit_codes integer[]
        CHECK (array_position(allow_failure_exit_codes, NULL) IS NULL),
    ADD COLUMN retry_of bigint REFERENCES ci_builds (id),
    ADD COLUMN automatic_retry boolean NOT NULL DEFAULT false;

ALTER TABLE ci_builds ADD CONSTRAINT ci_builds_allow_failure_exit_codes
    CHECK (allow_failure_exit_codes IS NULL OR allow_failure);

-- Builds from before this migration: `retry: N` meant N retries of a lost runner only.
UPDATE ci_builds SET retry_when = '{runner_lost}' WHERE retry_limit > 0;

-- Their chains of attempts, as the new columns would have recorded them. Which retries were
-- automatic cannot be told afterwards: lost runners' retries are, if the attempt before ended
-- runner_lost within its job's retry.
UPDATE ci_builds AS n
SET retry_of = o.id,
    -- IS NOT DISTINCT FROM: an attempt that did not fail has no failure_reason, and NULL would
    -- break the column's NOT NULL.
    automatic_retry = (o.failure_reason IS NOT DISTINCT FROM 'runner_lost'
        AND o.attempt <= o.retry_limit)
FROM ci_builds AS o
WHERE o.pipeline_id = n.pipeline_id AND o.name = n.name AND o.attempt = n.attempt - 1;

-- "Which attempt retried this one": the build page's one lookup.
CREATE INDEX ci_builds_retry_of ON ci_builds (retry_of) WHERE retry_of IS NOT NULL;
