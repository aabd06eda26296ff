DROP INDEX ci_builds_retry_of;
ALTER TABLE ci_builds DROP CONSTRAINT ci_builds_allow_failure_exit_codes;
ALTER TABLE ci_builds
    DROP COLUMN automatic_retry,
    DROP COLUMN retry_of,
    DROP COLUMN allow_failure_exit_codes,
    DROP COLUMN retry_exit_codes,
    DROP COLUMN retry_when;
