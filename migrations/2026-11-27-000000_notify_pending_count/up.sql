-- Wake-up calls say how many builds became pending, so that a server wakes that many waiting
-- runners instead of all of them (crates/api-http/src/wake.rs).
--
-- The payload is the count as decimal text. PostgreSQL folds identical notifications within a
-- transaction, so two statements of one transaction that each make one build pending deliver a
-- single '1': the count is a lower bound, a hint for how many runners to wake at once. The server
-- never relies on it being exact: a woken runner that claims a build passes the wake on to
-- another one, until a claim finds nothing.
--
-- Same triggers, same conditions as in notify_pending; only the functions' bodies change.

CREATE OR REPLACE FUNCTION lockstep_notify_inserted_pending() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    builds bigint;
BEGIN
    SELECT count(*) INTO builds FROM inserted_builds WHERE status = 'pending';
    IF builds > 0 THEN
        PERFORM pg_notify('lockstep_builds_pending', builds::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION lockstep_notify_updated_pending() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    builds bigint;
BEGIN
    -- Only rows that became pending: a row already pending before the update woke runners then.
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
