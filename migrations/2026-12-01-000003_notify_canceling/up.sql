-- Cancel push: NOTIFY lockstep_builds_canceling whenever running builds are asked to stop.
--
-- A runner watching its builds (POST /jobs/watch) is answered the moment one of them turns
-- canceling, on whichever server replica holds its watch: every replica LISTENs on this channel
-- beside lockstep_builds_pending, on the same connection (crates/api-http/src/watch.rs).
--
-- The payload is the ids of the builds that turned canceling, comma-separated, so that a replica
-- wakes only the watches that hold them. NOTIFY payloads stop at 8000 bytes: past 7000 characters
-- (several hundred builds canceled by one statement) the payload is empty, which tells every
-- watch to look again. Notifications arrive only after commit, so a watch that reads its builds
-- after one always sees them canceling.
--
-- The same statement-level trigger as for pending builds, on the same transition tables: one
-- function compares old and new rows once for both channels, so an UPDATE of ci_builds still
-- costs one trigger call. The channel names are PENDING_CHANNEL and CANCELING_CHANNEL in
-- crates/storage-pg/src/notify.rs; a test checks them.

CREATE FUNCTION lockstep_notify_updated_builds() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    builds bigint;
    canceling text;
BEGIN
    -- Only rows that changed status: a row already pending or canceling before was announced then.
    SELECT count(*) FILTER (WHERE n.status = 'pending'),
           string_agg(n.id::text, ',' ORDER BY n.id) FILTER (WHERE n.status = 'canceling')
    INTO builds, canceling
    FROM new_builds AS n
    JOIN old_builds AS o ON o.id = n.id
    WHERE n.status <> o.status AND n.status IN ('pending', 'canceling');
    IF builds > 0 THEN
        PERFORM pg_notify('lockstep_builds_pending', builds::text);
    END IF;
    IF canceling IS NOT NULL THEN
        IF length(canceling) > 7000 THEN
            canceling := '';
        END IF;
        PERFORM pg_notify('lockstep_builds_canceling', canceling);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER ci_builds_notify_updated_pending ON ci_builds;
DROP FUNCTION lockstep_notify_updated_pending();

CREATE TRIGGER ci_builds_notify_updated
AFTER UPDATE ON ci_builds
REFERENCING OLD TABLE AS old_builds NEW TABLE AS new_builds
FOR EACH STATEMENT EXECUTE FUNCTION lockstep_notify_updated_builds();
