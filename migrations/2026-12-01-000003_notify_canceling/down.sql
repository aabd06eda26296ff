-- Back to the pending-only trigger of notify_pending_count.

DROP TRIGGER ci_builds_notify_updated ON ci_builds;
DROP FUNCTION lockstep_notify_updated_builds();

CREATE FUNCTION lockstep_notify_updated_pending() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    builds bigint;
BEGIN
    SELECT count(*) INTO builds
    FROM new_builds AS n
    JOIN old_builds AS o ON o.id = n.id
    WHERE n.status = 'pending' AND o.status <> 'pending';
    IF builds > 0 THEN
        PERFORM pg_notify('lockstep_builds_pending', builds::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER ci_builds_notify_updated_pending
AFTER UPDATE ON ci_builds
REFERENCING OLD TABLE AS old_builds NEW TABLE AS new_builds
FOR EACH STATEMENT EXECUTE FUNCTION lockstep_notify_updated_pending();
