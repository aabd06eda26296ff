-- A build the reaper canceled (its runner never confirmed the cancel, or lost its lease while
-- canceling) carries failure_reason 'runner_lost', as a build the reaper failed does: it says
-- why to whoever reads the build, and makes a late report from that runner a lost lease (410)
-- rather than a conflicting result (409).
--
-- The initial schema's CHECK (failure_reason IS NULL OR status = 'failed') had no name of its
-- own; it is found by its definition.

DO $$
DECLARE
    old_check text;
BEGIN
    SELECT conname INTO STRICT old_check
    FROM pg_constraint
    WHERE conrelid = 'ci_builds'::regclass
      AND contype = 'c'
      AND pg_get_constraintdef(oid) = 'CHECK (((failure_reason IS NULL) OR (status = ''failed''::text)))';
    EXECUTE format('ALTER TABLE ci_builds DROP CONSTRAINT %I', old_check);
END
$$;

ALTER TABLE ci_builds ADD CONSTRAINT ci_builds_failure_reason_status CHECK (
    failure_reason IS NULL
    OR status = 'failed'
    OR (status = 'canceled' AND failure_reason = 'runner_lost'));
