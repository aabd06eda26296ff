DROP INDEX ci_builds_canceling;
ALTER TABLE ci_builds DROP CONSTRAINT ci_builds_canceling_since;
ALTER TABLE ci_builds DROP COLUMN canceling_since;
