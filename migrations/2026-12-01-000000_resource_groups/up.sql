-- Resource groups: a project's named limit on how many of its builds may hold a slot at once
-- (one deploy at a time per environment, by default), and the order in which waiting builds get
-- one (crates/domain/src/resource.rs).
--
-- In the canonical lock order a group sits between pipelines and ci_builds: a transition that
-- changes a build of a group locks its pipeline, then the group, then the builds (the group's
-- waiting builds of other pipelines among them, when it grants them a slot). See
-- docs/locking.md.
CREATE TABLE resource_groups (
    id bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects (id),
    name text NOT NULL CHECK (name <> '' AND char_length(name) <= 255),
    process_mode text NOT NULL DEFAULT 'oldest_first' CHECK (process_mode IN (
        'oldest_first', 'newest_first', 'newest_ready_first', 'unordered')),
    -- `limit` is a keyword; the API calls it `limit`.
    slot_limit integer NOT NULL DEFAULT 1 CHECK (slot_limit BETWEEN 1 AND 100),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);

-- A build never changes group (a retry copies it), so planning may read it without a lock.
ALTER TABLE ci_builds ADD COLUMN resource_group_id bigint REFERENCES resource_groups (id);

ALTER TABLE ci_builds DROP CONSTRAINT ci_builds_status_check;
ALTER TABLE ci_builds ADD CONSTRAINT ci_builds_status_check CHECK (status IN (
    'created', 'pending', 'running', 'success', 'failed', 'canceling', 'canceled', 'skipped',
    'manual', 'waiting_for_resource'));

-- What a grant reads: the builds of a group that hold a slot or stand in line for one.
CREATE INDEX ci_builds_resource_group ON ci_builds (resource_group_id)
    WHERE resource_group_id IS NOT NULL
      AND status IN ('created', 'waiting_for_resource', 'pending', 'running', 'canceling');
