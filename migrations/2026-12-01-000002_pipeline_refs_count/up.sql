-- How many pipelines a ref has had. Creating a pipeline locks its ref with one upsert that
-- counts it (locking.rs, lock_ref): an update of a column outside any key takes the row lock at
-- FOR NO KEY UPDATE strength, in the same statement that creates the row on first use.
ALTER TABLE pipeline_refs ADD COLUMN pipelines bigint NOT NULL DEFAULT 1 CHECK (pipelines >= 1);
