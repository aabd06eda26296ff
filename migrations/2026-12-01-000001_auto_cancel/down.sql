DROP INDEX pipelines_unfinished_ref;
ALTER TABLE pipelines DROP COLUMN auto_canceled_by;
ALTER TABLE ci_builds DROP COLUMN interruptible;
DROP TABLE pipeline_refs;
