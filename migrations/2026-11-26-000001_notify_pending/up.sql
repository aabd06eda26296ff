-- Wake-up calls for runners: NOTIFY lockstep_builds_pending whenever a build becomes pending.
--
-- Runners long-poll for work, and each server replica that holds such a poll LISTENs on this
-- channel, so a new pending build wakes the waiting runners on every replica at once instead of
-- at their next poll. The notification carries no payload: it only says "look again", and the
-- claim statement decides who gets what.
--
-- Triggers rather than a call in each transition, because builds become pending on many paths
-- (pipeline creation, play, retry, a stage or need finishing, a lease expiring into an automatic
-- retry) and a trigger covers every one of them, including paths added later: none can forget.
--
-- Statement-level with transition tables, so a statement that touches many builds costs one
-- check and at most one notification. PostgreSQL also folds identical notifications within a
-- transaction, and delivers them only when it commits (never for a rollback). Transition tables
-- cannot be combined with a column list, hence a plain AFTER UPDATE rather than UPDATE OF status;
-- the UPDATE function compares old and new rows itself, so that a heartbeat or a claim (which
-- never make a build pending) stays silent.
--
-- The channel name is PENDING_CHANNEL in crates/storage-pg/src/notify.rs; a test checks both.

CREATE FUNCTION lockstep_notify_inserted_pending() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted_builds WHERE status = 'pending') THEN
        PERFORM pg_notify('lockstep_builds_pending', '');
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION lockstep_notify_updated_pending() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Only rows that became pending: a row already pending before the update woke runners then.
    IF EXISTS (
        SELECT 1
        FROM new_builds AS n
        JOIN old_builds AS o ON o.id = n.id
        WHERE n.status = 'pending' AND o.status <> 'pending'
    ) THEN
        PERFORM pg_notify('lockstep_builds_pending', '');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER ci_builds_notify_inserted_pending
AFTER INSERT ON ci_builds
REFERENCING NEW TABLE AS inserted_builds
FOR EACH STATEMENT EXECUTE FUNCTION lockstep_notify_inserted_pending();

CREATE TRIGGER ci_builds_notify_updated_pending
AFTER UPDATE ON ci_builds
REFERENCING OLD TABLE AS old_builds NEW TABLE AS new_builds
FOR EACH STATEMENT EXECUTE FUNCTION lockstep_notify_updated_pending();
