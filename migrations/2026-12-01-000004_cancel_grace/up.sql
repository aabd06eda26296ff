-- Forced cancel: a build asked to stop whose runner never confirms is canceled after a grace
-- period (a server setting), even while its runner keeps heartbeating.
--
-- canceling_since is when the build turned canceling; the lease reaper cancels canceling builds
-- whose canceling_since is older than the grace, through the ordinary lock-ordered transition.
-- Builds already canceling when this runs start their grace now.

ALTER TABLE ci_builds ADD COLUMN canceling_since timestamptz;

UPDATE ci_builds SET canceling_since = now() WHERE status = 'canceling';

ALTER TABLE ci_builds ADD CONSTRAINT ci_builds_canceling_since
    CHECK (status <> 'canceling' OR canceling_since IS NOT NULL);

-- The reaper reads only this index for forced cancels.
CREATE INDEX ci_builds_canceling ON ci_builds (canceling_since) WHERE status = 'canceling';
