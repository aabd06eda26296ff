DROP INDEX ci_builds_resource_group;
ALTER TABLE ci_builds DROP CONSTRAINT ci_builds_status_check;
ALTER TABLE ci_builds ADD CONSTRAINT ci_builds_status_check CHECK (status IN (
    'created', 'pending', 'running', 'success', 'failed', 'canceling', 'canceled', 'skipped',
    'manual'));
ALTER TABLE ci_builds DROP COLUMN resource_group_id;
DROP TABLE resource_groups;
