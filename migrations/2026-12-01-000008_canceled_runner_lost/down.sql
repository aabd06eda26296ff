UPDATE ci_builds SET failure_reason = NULL WHERE status = 'canceled';
ALTER TABLE ci_builds DROP CONSTRAINT ci_builds_failure_reason_status;
ALTER TABLE ci_builds ADD CHECK (failure_reason IS NULL OR status = 'failed');
