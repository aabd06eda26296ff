ALTER TABLE pipeline_refs DROP COLUMN pipelines;
