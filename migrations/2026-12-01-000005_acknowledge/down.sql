ALTER TABLE ci_builds DROP COLUMN acknowledged_at;
