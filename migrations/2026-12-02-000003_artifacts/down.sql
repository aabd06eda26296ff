DROP TABLE ci_caches;
DROP TABLE ci_job_artifacts;
ALTER TABLE projects DROP COLUMN keep_latest_artifacts;
ALTER TABLE ci_job_definitions DROP COLUMN dependencies, DROP COLUMN caches, DROP COLUMN artifacts;
