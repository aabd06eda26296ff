-- Back to wake-ups without a payload, as notify_pending created them.

CREATE OR REPLACE FUNCTION lockstep_notify_inserted_pending() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted_builds WHERE status = 'pending') THEN
        PERFORM pg_notify('lockstep_builds_pending', '');
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION lockstep_notify_updated_pending() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
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
