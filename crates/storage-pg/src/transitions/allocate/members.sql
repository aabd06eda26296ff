-- The builds of some resource groups that hold a slot or stand in line for one: what a grant
-- decides on. $1 the group ids.
--
-- Read under the groups' locks (locking.rs), which every transition that changes a build of a
-- group takes first, so the answer stands still until commit; only acquire moves a member
-- without them, from pending to running, which changes neither the holders nor the line.
--
-- Statuses are literals so that the partial index ci_builds_resource_group serves the read; a
-- unit test checks them against the domain (created and waiting stand in line, the rest hold
-- a slot).
SELECT id, pipeline_id, resource_group_id, status, queued_at
FROM ci_builds
WHERE resource_group_id = ANY($1)
  AND status IN ('created', 'waiting_for_resource', 'pending', 'running', 'canceling')
ORDER BY id
