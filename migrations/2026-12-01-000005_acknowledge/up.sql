-- The acknowledgement lease: a freshly claimed build is held only briefly (a server setting,
-- 10 s by default) until its runner first heartbeats, appends to its log or reports. Until then
-- acknowledged_at is NULL; a build whose short lease passes unacknowledged goes back to pending
-- (its attempt not spent) instead of failing as runner_lost, since its runner may never have
-- received it.
--
-- Builds held when this runs were claimed under the old protocol: they count as acknowledged.

ALTER TABLE ci_builds ADD COLUMN acknowledged_at timestamptz;

UPDATE ci_builds SET acknowledged_at = started_at WHERE status IN ('running', 'canceling');
